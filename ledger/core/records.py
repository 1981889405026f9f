"""Typed views of what the chain records: datasets, consents, access requests."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from eth_utils.address import to_checksum_address

from ledger.core.classification import DatasetStatus, Tier
from ledger.core.errors import InvalidInput

#: the zero word as the library handles it (records, call arguments); the one definition
ZERO32 = bytes(32)
#: the same word as the index, JSON and the chain's logs spell it
ZERO32_HEX = "0x" + "00" * 32
ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"


def hex32(value: bytes) -> str:
    return "0x" + bytes(value).hex()


def to_bytes32(value: str | bytes, what: str = "value") -> bytes:
    """0x-prefixed 64-hex-digit string (or 32 bytes) -> 32 bytes, with a clear error."""
    if isinstance(value, bytes):
        if len(value) != 32:
            raise InvalidInput(f"{what} must be 32 bytes, got {len(value)}")
        return value
    text = value[2:] if value.startswith(("0x", "0X")) else value
    try:
        raw = bytes.fromhex(text)
    except ValueError as exc:
        raise InvalidInput(f"{what} {value!r} is not hex", hint="give 0x followed by 64 hex digits") from exc
    if len(raw) != 32:
        raise InvalidInput(f"{what} {value!r} is not 32 bytes", hint="give 0x followed by 64 hex digits")
    return raw


@dataclass(frozen=True)
class DatasetRecord:
    """A dataset record as the chain holds it."""

    content_root: bytes
    holder: str
    tier: Tier
    status: DatasetStatus
    classification: int
    embargo_end: int
    registered_block: int
    metadata_digest: bytes
    activity_digest: bytes
    subject_root: bytes
    successor: bytes
    derived_count: int
    parents: tuple[bytes, ...]

    @classmethod
    def from_chain(cls, t: Any) -> DatasetRecord:
        return cls(
            content_root=bytes(t[0]),
            holder=to_checksum_address(t[1]),
            tier=Tier(t[2]),
            status=DatasetStatus(t[3]),
            classification=int(t[4]),
            embargo_end=int(t[5]),
            registered_block=int(t[6]),
            metadata_digest=bytes(t[7]),
            activity_digest=bytes(t[8]),
            subject_root=bytes(t[9]),
            successor=bytes(t[10]),
            derived_count=int(t[11]),
            parents=tuple(bytes(p) for p in t[12]),
        )

    @property
    def exists(self) -> bool:
        return self.status != DatasetStatus.NONE

    def to_json(self) -> dict[str, Any]:
        return {
            "content_root": hex32(self.content_root),
            "holder": self.holder,
            "tier": self.tier.name.lower(),
            "status": self.status.name.lower(),
            "classification": self.classification,
            "embargo_end": self.embargo_end,
            "registered_block": self.registered_block,
            "metadata_digest": hex32(self.metadata_digest),
            "activity_digest": hex32(self.activity_digest),
            "subject_root": hex32(self.subject_root),
            "successor": hex32(self.successor) if self.successor != ZERO32 else None,
            "derived_count": self.derived_count,
            "parents": [hex32(p) for p in self.parents],
        }


class ScopeKind(IntEnum):
    HOLDER = 0
    DATASET = 1


class ConsentState(IntEnum):
    NONE = 0
    GIVEN = 1
    RENEWED = 2
    WITHDRAWN = 3


@dataclass(frozen=True)
class ConsentScope:
    """What a consent applies to: all datasets of a holder, or one dataset."""

    kind: ScopeKind
    value: bytes  # 32 bytes: left-padded holder address or content root

    @classmethod
    def holder(cls, address: str) -> ConsentScope:
        return cls(ScopeKind.HOLDER, b"\x00" * 12 + bytes.fromhex(to_checksum_address(address)[2:]))

    @classmethod
    def dataset(cls, content_root: bytes | str) -> ConsentScope:
        return cls(ScopeKind.DATASET, to_bytes32(content_root, "content root"))

    @property
    def holder_address(self) -> str | None:
        return to_checksum_address(self.value[12:]) if self.kind == ScopeKind.HOLDER else None

    def to_json(self) -> dict[str, Any]:
        if self.kind == ScopeKind.HOLDER:
            return {"kind": "holder", "holder": self.holder_address}
        return {"kind": "dataset", "dataset": hex32(self.value)}


@dataclass(frozen=True)
class ConsentTerms:
    purposes: int
    disease: int
    expiry: int


@dataclass(frozen=True)
class ConsentRecord:
    consent_id: bytes
    subject: str
    scope: ConsentScope
    grantee: str
    purposes: int
    disease: int
    expiry: int
    state: ConsentState
    updated_block: int
    history: list[dict[str, Any]] = field(default_factory=list)

    def in_force_at(self, timestamp: int) -> bool:
        return self.state in (ConsentState.GIVEN, ConsentState.RENEWED) and self.expiry > timestamp

    def status_at(self, timestamp: int) -> str:
        """ISO/IEC TS 27560 status: given, renewed, withdrawn or expired."""
        if self.state == ConsentState.WITHDRAWN:
            return "withdrawn"
        if self.expiry <= timestamp:
            return "expired"
        return self.state.name.lower()


class RequestStatus(IntEnum):
    NONE = 0
    PENDING = 1
    APPROVED = 2
    DENIED = 3
    REVOKED = 4


@dataclass(frozen=True)
class AccessRequestRecord:
    request_id: int
    requester: str
    status: RequestStatus
    expiry: int
    requested_block: int
    dataset: bytes
    purpose: int
    disease: int
    decided_block: int

    @classmethod
    def from_chain(cls, request_id: int, t: Any) -> AccessRequestRecord:
        return cls(
            request_id=request_id,
            requester=to_checksum_address(t[0]),
            status=RequestStatus(t[1]),
            expiry=int(t[2]),
            requested_block=int(t[3]),
            dataset=bytes(t[4]),
            purpose=int(t[5]),
            disease=int(t[6]),
            decided_block=int(t[7]),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "requester": self.requester,
            "status": self.status.name.lower(),
            "expiry": self.expiry,
            "requested_block": self.requested_block,
            "dataset": hex32(self.dataset),
            "purpose": self.purpose,
            "disease": self.disease,
            "decided_block": self.decided_block,
        }


@dataclass(frozen=True)
class TxInfo:
    """Where a write landed."""

    tx_hash: str
    block: int
    result: Any = None
