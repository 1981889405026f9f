"""Dataset registration: the one statement of its saga (pin, then anchor; unpin on failure), used
by the library's Ledger (signed and submitted at once) and by the service (signed by the client,
queued for the relayer).

Failure semantics (pin, then anchor): the content root and the metadata bytes are computed first
and the ``register`` call is simulated (or, for a client-signed request, checked) before anything
is pinned, so a duplicate, a missing role or an unknown parent fails with nothing pinned. If
anchoring fails after the metadata was pinned, the pins are released and the error raised; a
queued registration that later fails on chain has its pins released by the queue (given
``release_pins`` as its compensation). Nothing stays pinned and unanchored. Retrying is idempotent
by content root: the same files and metadata give the same root and CID, and a root that is
already anchored raises DatasetAlreadyRegistered naming it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from eth_utils.address import to_checksum_address
from pydantic import ValidationError

from ledger.chain import typed_data
from ledger.content.merkle import subject_tree
from ledger.content.metadata import DatasetMetadata
from ledger.core.errors import InvalidInput, LedgerError
from ledger.core.records import ZERO32, TxInfo, hex32, to_bytes32
from ledger.relay.calls import REGISTRATION
from ledger.relay.queue import RelayQueue, Ticket
from ledger.relay.relayer import ForwardRequest
from ledger.services.writes import accept_forward

T = TypeVar("T")

#: gas asked for a registration prepared while earlier requests of its holder are still queued
REGISTRATION_GAS_IF_PENDING = 1_500_000


class PinStore(Protocol):
    """What the saga needs of an IPFS store."""

    def put(self, data: bytes) -> str: ...

    def unpin(self, cid: str) -> None: ...


@dataclass(frozen=True)
class RegistrationCall:
    """Everything a registration anchors and pins, computed before anything is sent."""

    metadata: DatasetMetadata
    content_root: bytes
    metadata_cid: str
    documents: tuple[bytes, ...]  # metadata document, then the activity description if any
    args: tuple[Any, ...]  # DatasetRegistry.register arguments

    @property
    def subject_root(self) -> bytes:
        return bytes(self.args[7])


class Registration:
    """What a registration anchored."""

    def __init__(self, content_root: bytes, metadata_cid: str, info: TxInfo, subject_root: bytes) -> None:
        self.content_root = content_root
        self.metadata_cid = metadata_cid
        self.info = info
        self.subject_root = subject_root

    def to_json(self) -> dict[str, Any]:
        return {
            "content_root": "0x" + self.content_root.hex(),
            "metadata_cid": self.metadata_cid,
            "subject_root": "0x" + self.subject_root.hex(),
            "tx_hash": self.info.tx_hash,
            "block": self.info.block,
        }


def registration_call(
    metadata: DatasetMetadata, subject_root: bytes = ZERO32, embargo_end: int = 0
) -> RegistrationCall:
    """Canonicalise the metadata (parents in the contract's ascending order) and compute the
    content root, CID and ``register`` arguments."""
    parents = tuple(sorted(metadata.parents, key=lambda p: bytes.fromhex(p[2:])))
    if parents != tuple(metadata.parents):
        metadata = metadata.model_copy(update={"parents": parents})
    if not 0 <= embargo_end < 2**32:
        raise InvalidInput(f"embargo end {embargo_end} is out of range", hint="unix time before 2106, or 0")
    root = metadata.content_root()
    docs = [metadata.to_canonical_bytes()]
    if metadata.activity is not None:
        docs.append(metadata.activity.to_canonical_bytes())
    args = (
        root,
        metadata.digest(),
        [bytes.fromhex(p[2:]) for p in parents],
        metadata.activity_digest() or ZERO32,
        int(metadata.tier),
        int(metadata.classification),
        embargo_end,
        subject_root,
    )
    return RegistrationCall(metadata, root, metadata.cid(), tuple(docs), args)


def holder_registration(
    holder: str, metadata: DatasetMetadata, *, subjects: Sequence[str] = (), embargo_end: int = 0
) -> RegistrationCall:
    """A registration by ``holder`` (the account that signs it) of ``metadata`` covering
    ``subjects`` (only their Merkle root goes on chain)."""
    if to_checksum_address(metadata.holder) != to_checksum_address(holder):
        raise InvalidInput(
            f"metadata names holder {metadata.holder} but the registering account is {holder}",
            hint="set the metadata's holder to the signing account",
        )
    if subjects and metadata.subject_count not in (None, len(subjects)):
        raise InvalidInput(f"metadata subject_count {metadata.subject_count} but {len(subjects)} subjects given")
    subject_root = subject_tree(subjects).root if subjects else ZERO32
    return registration_call(metadata, subject_root, embargo_end)


def registration_from_json(
    metadata: Mapping[str, Any], subject_root: str | None = None, embargo_end: int = 0
) -> RegistrationCall:
    """A registration from a client's JSON: the metadata document, subject root and embargo."""
    try:
        md = DatasetMetadata.model_validate(dict(metadata))
    except ValidationError as exc:
        first = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5])
        raise InvalidInput(f"metadata document is not valid: {first}", hint="see the DatasetMetadata schema") from exc
    root = to_bytes32(subject_root, "subject root") if subject_root else ZERO32
    return registration_call(md, root, embargo_end)


def release_pins(store: PinStore, cids: Sequence[str]) -> None:
    """The saga's compensation: unpin what a registration that did not anchor pinned. Best effort:
    the error that made the registration fail is the one that matters."""
    for cid in cids:
        with contextlib.suppress(LedgerError):
            store.unpin(cid)


def pin_then_anchor(store: PinStore, call: RegistrationCall, anchor: Callable[[list[str]], T]) -> T:
    """The registration saga: pin the call's documents, then ``anchor(pins)`` (submit or queue);
    if either step fails, release the pins and raise."""
    pins: list[str] = []
    try:
        for doc in call.documents:
            pins.append(store.put(doc))
        return anchor(pins)
    except BaseException:
        release_pins(store, pins)
        raise


# ------------------------------------------------------------------------- client-signed (service)


@dataclass(frozen=True)
class PreparedRegistration:
    """The unsigned registration a holder signs: content root, CID, typed data and request."""

    content_root: str
    metadata_cid: str
    typed_data: typed_data.TypedData
    request: dict[str, Any]


def prepare_registration(
    queue: RelayQueue, call: RegistrationCall, *, deadline: int | None = None
) -> PreparedRegistration:
    """The forward request registering ``call`` for its holder to sign (simulated unless earlier
    requests of the holder are queued: a duplicate or a missing role is refused here)."""
    relayer = queue.relayer
    to, data = relayer.encode("DatasetRegistry", "register", *call.args)
    req = queue.prepare(call.metadata.holder, to, data, deadline=deadline, gas_if_pending=REGISTRATION_GAS_IF_PENDING)
    return PreparedRegistration(
        content_root=hex32(call.content_root),
        metadata_cid=call.metadata_cid,
        typed_data=req.typed(relayer.client.chain_id, relayer.forwarder.address),
        request=req.unsigned_json(),
    )


def queue_registration(queue: RelayQueue, store: PinStore, call: RegistrationCall, signed: ForwardRequest) -> Ticket:
    """Run the saga for a registration the holder signed: check the request registers exactly this
    call, pin, queue (checked and simulated by the queue). A request that fails later on chain
    has its pins released by the queue."""
    _, expected = queue.relayer.encode("DatasetRegistry", "register", *call.args)
    if signed.data != expected:
        raise InvalidInput(
            "the signed request does not register this metadata, subject root and embargo",
            hint="sign the typed data returned by POST /datasets/prepare for the same body",
        )
    return pin_then_anchor(store, call, lambda pins: accept_forward(queue, signed, REGISTRATION, pins=pins))
