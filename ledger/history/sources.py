"""The registries' history as typed events, read from the chain or from the index.

:class:`EventSource` is what the services read history through; :class:`LogEventSource` answers it
straight from the chain with ``eth_getLogs`` (no index needed), the SQLite index
(:mod:`ledger.history.index`) answers it from its database. Both give the same events in chain order.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from eth_utils.address import to_checksum_address
from web3.contract.contract import ContractEvent
from web3.types import EventData

from ledger.chain.client import ChainClient
from ledger.core.errors import InvalidInput, LedgerError
from ledger.core.records import ZERO_ADDRESS, ScopeKind, hex32
from ledger.history.events import checksum
from ledger.rules import datause


def scope_json(kind: int, scope: bytes | str) -> dict[str, Any]:
    """A consent scope as JSON: a holder's datasets or one dataset. ``scope`` is its 32 bytes, or
    their lower-case 0x hex (as the index stores them)."""
    text = scope if isinstance(scope, str) else hex32(scope)
    if kind == ScopeKind.HOLDER:
        return {"kind": "holder", "holder": checksum("0x" + text[-40:])}
    return {"kind": "dataset", "dataset": text}


class ConsentEventKind(StrEnum):
    GIVEN = "given"
    RENEWED = "renewed"
    WITHDRAWN = "withdrawn"
    DELEGATE_APPOINTED = "delegate-appointed"
    DELEGATE_REVOKED = "delegate-revoked"


@dataclass(frozen=True)
class ConsentEvent:
    """One event of the consent registry. Fields an event does not carry are None: Renewed and
    Withdrawn name only the consent id (its scope is that of the Given event with the same id);
    delegate events have ``delegate`` and no consent id."""

    kind: ConsentEventKind
    block: int
    log_index: int
    tx_hash: str
    subject: str
    consent_id: bytes | None = None
    scope_kind: ScopeKind | None = None
    scope: bytes | None = None
    grantee: str | None = None
    purposes: int | None = None
    disease: int | None = None
    expiry: int | None = None
    actor: str | None = None
    delegate: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind.value,
            "block": self.block,
            "log_index": self.log_index,
            "tx_hash": self.tx_hash,
            "subject": self.subject,
        }
        if self.consent_id is not None:
            out["consent_id"] = hex32(self.consent_id)
        if self.scope_kind is not None and self.scope is not None:
            out["scope"] = scope_json(self.scope_kind, self.scope)
        if self.grantee is not None:
            out["grantee"] = None if self.grantee == ZERO_ADDRESS else self.grantee
        if self.purposes is not None:
            out["purposes"] = self.purposes
            out["purpose_terms"] = datause.describe(self.purposes)
        if self.disease is not None:
            out["disease"] = datause.disease_label(self.disease)
        if self.expiry is not None:
            out["expiry"] = self.expiry
        if self.actor is not None:
            out["actor"] = self.actor
        if self.delegate is not None:
            out["delegate"] = self.delegate
        return out


@dataclass(frozen=True)
class ApprovalEvent:
    """An AccessApproved event joined with its request (AccessRequested: dataset, requester, purpose)."""

    request_id: int
    dataset: bytes
    requester: str
    reviewer: str
    purpose: int
    disease: int
    expiry: int
    conditions_digest: bytes
    block: int
    tx_hash: str

    def to_json(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "dataset": hex32(self.dataset),
            "requester": self.requester,
            "reviewer": self.reviewer,
            "purpose": self.purpose,
            "purpose_terms": datause.describe(self.purpose),
            "disease": datause.disease_label(self.disease),
            "expiry": self.expiry,
            "conditions_digest": hex32(self.conditions_digest),
            "block": self.block,
            "tx_hash": self.tx_hash,
        }


@dataclass(frozen=True)
class UseEvent:
    """A UseRecorded event."""

    dataset: bytes
    user: str
    request_id: int
    purpose: int
    disease: int
    result_digest: bytes
    use_number: int
    block: int
    tx_hash: str

    def to_json(self) -> dict[str, Any]:
        return {
            "dataset": hex32(self.dataset),
            "user": self.user,
            "request_id": self.request_id,
            "purpose": self.purpose,
            "purpose_terms": datause.describe(self.purpose),
            "disease": datause.disease_label(self.disease),
            "result_digest": hex32(self.result_digest),
            "use_number": self.use_number,
            "block": self.block,
            "tx_hash": self.tx_hash,
        }


@runtime_checkable
class EventSource(Protocol):
    """The history this module reads. :class:`LogEventSource` implements it from ``eth_getLogs``;
    an event indexer can implement it from its database."""

    def consent_events_until(self, block: int, subjects: Collection[str] | None = None) -> Sequence[ConsentEvent]:
        """Every consent-registry event (given, renewed, withdrawn, delegate appointed and revoked)
        up to and including ``block``, of ``subjects`` only (all when None), in chain order."""
        ...

    def withdrawals_of(self, subject: str) -> Sequence[ConsentEvent]:
        """The subject's ConsentWithdrawn events, in chain order."""
        ...

    def children_of(self, root: bytes) -> Sequence[bytes]:
        """Content roots of the datasets registered with ``root`` as a parent (DerivedFrom)."""
        ...

    def approvals_for(self, dataset: bytes, from_block: int = 0) -> Sequence[ApprovalEvent]:
        """Approvals of access requests for ``dataset`` made at ``from_block`` or later."""
        ...

    def uses_of(self, dataset: bytes, from_block: int = 0) -> Sequence[UseEvent]:
        """Uses of ``dataset`` recorded at ``from_block`` or later."""
        ...


def _order(ev: EventData) -> tuple[int, int]:
    return int(ev["blockNumber"]), int(ev["logIndex"])


def _tx(ev: EventData) -> str:
    return "0x" + bytes(ev["transactionHash"]).hex()


class LogEventSource:
    """:class:`EventSource` read straight from the chain with ``eth_getLogs`` (no index needed).

    Queries start at the deployment block and are split into windows of ``max_range`` blocks
    (public and consortium nodes cap the range of one query); topic filters with many values are
    split into groups of ``topic_chunk``. Results are not cached: every call reads the chain.
    """

    def __init__(
        self,
        client: ChainClient,
        *,
        from_block: int | None = None,
        max_range: int = 50_000,
        topic_chunk: int = 100,
        bulk_topics: int = 1000,
    ) -> None:
        if max_range < 1 or topic_chunk < 1:
            raise InvalidInput("max_range and topic_chunk must be positive")
        self.client = client
        self.consents = client.contract("ConsentRegistry")
        self.datasets = client.contract("DatasetRegistry")
        self.access = client.contract("AccessRegistry")
        self.usage = client.contract("UsageRegistry")
        record = client.record
        self.from_block = from_block if from_block is not None else (record.deploy_block if record else 0)
        self.max_range = max_range
        self.topic_chunk = topic_chunk
        self.bulk_topics = bulk_topics

    # -- plumbing ------------------------------------------------------------------------------

    def head(self) -> int:
        return int(self.client.w3.eth.block_number)

    def _logs(
        self,
        event: ContractEvent,
        start: int,
        end: int,
        filters: Mapping[str, Any] | None = None,
    ) -> list[EventData]:
        out: list[EventData] = []
        lo = max(start, self.from_block)
        while lo <= end:
            hi = min(end, lo + self.max_range - 1)
            try:
                out += list(event.get_logs(argument_filters=dict(filters or {}), from_block=lo, to_block=hi))
            except OSError as exc:
                raise LedgerError(f"reading {event.event_name} logs failed: {exc}") from exc
            lo = hi + 1
        return out

    def _logs_any(
        self,
        event: ContractEvent,
        start: int,
        end: int,
        name: str,
        values: Sequence[Any] | None,
    ) -> list[EventData]:
        """Logs whose indexed argument ``name`` is one of ``values`` (all when None). Beyond
        ``bulk_topics`` values, all logs are read once and filtered here instead."""
        if values is None:
            return self._logs(event, start, end)
        if len(values) > self.bulk_topics:
            keep = set(values)
            return [ev for ev in self._logs(event, start, end) if ev["args"][name] in keep]
        out: list[EventData] = []
        unique = list(dict.fromkeys(values))
        for i in range(0, len(unique), self.topic_chunk):
            out += self._logs(event, start, end, {name: unique[i : i + self.topic_chunk]})
        return out

    # -- EventSource ---------------------------------------------------------------------------

    def consent_events_until(self, block: int, subjects: Collection[str] | None = None) -> list[ConsentEvent]:
        events = self.consents.events
        wanted = None if subjects is None else [to_checksum_address(s) for s in subjects]
        if wanted is not None and not wanted:
            return []
        raw: list[tuple[ConsentEventKind, EventData]] = []
        for kind, event in (
            (ConsentEventKind.GIVEN, events.ConsentGiven),
            (ConsentEventKind.RENEWED, events.ConsentRenewed),
            (ConsentEventKind.WITHDRAWN, events.ConsentWithdrawn),
            (ConsentEventKind.DELEGATE_APPOINTED, events.DelegateAppointed),
            (ConsentEventKind.DELEGATE_REVOKED, events.DelegateRevoked),
        ):
            raw += [(kind, ev) for ev in self._logs_any(event, 0, block, "subject", wanted)]
        raw.sort(key=lambda item: _order(item[1]))
        return [_consent_event(kind, ev) for kind, ev in raw]

    def withdrawals_of(self, subject: str) -> list[ConsentEvent]:
        logs = self._logs(
            self.consents.events.ConsentWithdrawn,
            0,
            self.head(),
            {"subject": to_checksum_address(subject)},
        )
        logs.sort(key=_order)
        return [_consent_event(ConsentEventKind.WITHDRAWN, ev) for ev in logs]

    def children_of(self, root: bytes) -> list[bytes]:
        logs = self._logs(self.datasets.events.DerivedFrom, 0, self.head(), {"parent": root})
        logs.sort(key=_order)
        return list(dict.fromkeys(bytes(ev["args"]["child"]) for ev in logs))

    def approvals_for(self, dataset: bytes, from_block: int = 0) -> list[ApprovalEvent]:
        head = self.head()
        access = self.access.events
        requests = {
            int(ev["args"]["requestId"]): ev["args"]
            for ev in self._logs(access.AccessRequested, 0, head, {"dataset": dataset})
        }
        if not requests:
            return []
        logs = self._logs_any(access.AccessApproved, from_block, head, "requestId", sorted(requests))
        logs.sort(key=_order)
        out: list[ApprovalEvent] = []
        for ev in logs:
            args = ev["args"]
            req = requests[int(args["requestId"])]
            out.append(
                ApprovalEvent(
                    request_id=int(args["requestId"]),
                    dataset=dataset,
                    requester=to_checksum_address(req["requester"]),
                    reviewer=to_checksum_address(args["reviewer"]),
                    purpose=int(req["purpose"]),
                    disease=int(req["diseaseCode"]),
                    expiry=int(args["expiry"]),
                    conditions_digest=bytes(args["conditionsDigest"]),
                    block=int(ev["blockNumber"]),
                    tx_hash=_tx(ev),
                )
            )
        return out

    def uses_of(self, dataset: bytes, from_block: int = 0) -> list[UseEvent]:
        logs = self._logs(self.usage.events.UseRecorded, from_block, self.head(), {"dataset": dataset})
        logs.sort(key=_order)
        return [
            UseEvent(
                dataset=bytes(ev["args"]["dataset"]),
                user=to_checksum_address(ev["args"]["user"]),
                request_id=int(ev["args"]["requestId"]),
                purpose=int(ev["args"]["purpose"]),
                disease=int(ev["args"]["diseaseCode"]),
                result_digest=bytes(ev["args"]["resultDigest"]),
                use_number=int(ev["args"]["useNumber"]),
                block=int(ev["blockNumber"]),
                tx_hash=_tx(ev),
            )
            for ev in logs
        ]


def _consent_event(kind: ConsentEventKind, ev: EventData) -> ConsentEvent:
    a = ev["args"]
    common: dict[str, Any] = {
        "kind": kind,
        "block": int(ev["blockNumber"]),
        "log_index": int(ev["logIndex"]),
        "tx_hash": _tx(ev),
        "subject": to_checksum_address(a["subject"]),
    }
    if kind is ConsentEventKind.GIVEN:
        return ConsentEvent(
            **common,
            consent_id=bytes(a["consentId"]),
            scope_kind=ScopeKind(int(a["scopeKind"])),
            scope=bytes(a["scope"]),
            grantee=to_checksum_address(a["grantee"]),
            purposes=int(a["purposes"]),
            disease=int(a["diseaseCode"]),
            expiry=int(a["expiry"]),
            actor=to_checksum_address(a["actor"]),
        )
    if kind is ConsentEventKind.RENEWED:
        return ConsentEvent(
            **common,
            consent_id=bytes(a["consentId"]),
            expiry=int(a["expiry"]),
            actor=to_checksum_address(a["actor"]),
        )
    if kind is ConsentEventKind.WITHDRAWN:
        return ConsentEvent(**common, consent_id=bytes(a["consentId"]), actor=to_checksum_address(a["actor"]))
    if kind is ConsentEventKind.DELEGATE_APPOINTED:
        return ConsentEvent(**common, delegate=to_checksum_address(a["delegate"]), expiry=int(a["expiry"]))
    return ConsentEvent(**common, delegate=to_checksum_address(a["delegate"]))
