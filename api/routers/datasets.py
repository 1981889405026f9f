"""Datasets: register (signed by the holder), read, versions, usage counters, status changes."""

from __future__ import annotations

import contextlib
from typing import Any

from fastapi import APIRouter, Depends, Path
from pydantic import ValidationError

from api.problems import COMMON, responses
from api.schemas import DatasetPrepared, DatasetPrepareIn, DatasetRegistered, DatasetRegisterIn, SignedWrite, Ticket
from api.state import AppState, get_state
from ledger.errors import InvalidInput, LedgerError
from ledger.metadata import DatasetMetadata
from ledger.operations import RegistrationCall, registration_call
from ledger.records import ZERO32, hex32, to_bytes32
from ledger.relay import DEFAULT_DEADLINE_SECONDS, ForwardRequest

from ._writes import queue_forward

router = APIRouter(prefix="/datasets", tags=["datasets"], responses=COMMON)
ROOT = Path(pattern=r"^0x[0-9a-fA-F]{64}$", description="content root")


def _call(body: DatasetPrepareIn) -> RegistrationCall:
    try:
        md = DatasetMetadata.model_validate(body.metadata)
    except ValidationError as exc:
        first = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5])
        raise InvalidInput(f"metadata document is not valid: {first}", hint="see the DatasetMetadata schema") from exc
    subject_root = to_bytes32(body.subject_root, "subject root") if body.subject_root else ZERO32
    return registration_call(md, subject_root, body.embargo_end)


@router.post(
    "/prepare",
    response_model=DatasetPrepared,
    responses=responses(403, 409),
    summary="Content root, CID and the typed data the holder signs to register a dataset",
)
def prepare(body: DatasetPrepareIn, state: AppState = Depends(get_state)) -> DatasetPrepared:
    call = _call(body)
    relayer = state.ledger.relayer
    holder = call.metadata.holder
    to, data = relayer.encode("DatasetRegistry", "register", *call.args)
    nonce = state.queue.next_nonce(holder)
    queued_ahead = nonce != relayer.chain_nonce(holder)
    gas = 1_500_000 if queued_ahead else relayer.estimate_inner_gas(holder, to, data)
    deadline = body.deadline or state.ledger.relayer.now() + DEFAULT_DEADLINE_SECONDS
    req = ForwardRequest(holder, to, 0, gas, nonce, deadline, data, b"")
    unsigned = req.to_json()
    unsigned.pop("signature")
    return DatasetPrepared(
        content_root=hex32(call.content_root),
        metadata_cid=call.metadata_cid,
        typed_data=req.typed(state.ledger.client.chain_id, relayer.forwarder.address),
        request=unsigned,
    )


@router.post(
    "",
    response_model=DatasetRegistered,
    status_code=202,
    responses=responses(403, 409),
    summary="Register a dataset: pins the metadata on IPFS and queues the holder's signed request",
)
def register(body: DatasetRegisterIn, state: AppState = Depends(get_state)) -> DatasetRegistered:
    call = _call(body)
    relayer = state.ledger.relayer
    _, expected = relayer.encode("DatasetRegistry", "register", *call.args)
    signed = ForwardRequest.from_json(body.request.as_json())
    if signed.data != expected:
        raise InvalidInput(
            "the signed request does not register this metadata, subject root and embargo",
            hint="sign the typed data returned by POST /datasets/prepare for the same body",
        )
    pins: list[str] = []
    try:
        for doc in call.documents:
            pins.append(state.ipfs.put(doc))
        ticket = queue_forward(state, body.request, {"registerDataset"}, pins=pins)
    except BaseException:
        for cid in pins:  # nothing stays pinned for a registration that was not queued
            with contextlib.suppress(LedgerError):
                state.ipfs.unpin(cid)
        raise
    return DatasetRegistered(content_root=hex32(call.content_root), metadata_cid=call.metadata_cid, ticket=ticket)


@router.get("/{root}", responses=responses(404), summary="A dataset's chain record and metadata document")
def get_dataset(root: str = ROOT, state: AppState = Depends(get_state)) -> dict[str, Any]:
    rec = state.ledger.get_dataset(root)
    from ledger.ipfs import cid_from_digest

    cid = cid_from_digest(rec.metadata_digest)
    out: dict[str, Any] = {"record": rec.to_json(), "metadata_cid": cid, "metadata": None, "metadata_error": None}
    try:
        out["metadata"] = DatasetMetadata.from_bytes(state.ipfs.get(cid)).model_dump(mode="json", exclude_none=True)
    except LedgerError as exc:
        out["metadata_error"] = {"type": exc.code, "detail": exc.message}
    return out


@router.get(
    "/{root}/versions",
    responses=responses(404),
    summary="The version chain: successors (deprecate) and the versions it superseded",
)
def versions(root: str = ROOT, state: AppState = Depends(get_state)) -> dict[str, Any]:
    rec = state.ledger.get_dataset(root)
    forward: list[str] = []
    seen = {rec.content_root}
    cur = rec
    while cur.successor != ZERO32 and cur.successor not in seen and len(forward) < 1000:
        seen.add(cur.successor)
        forward.append(hex32(cur.successor))
        cur = state.ledger.get_dataset(cur.successor)
    previous: list[str] = []
    if state.indexer is not None:
        from ledger.audit import predecessors_of

        previous = predecessors_of(state.indexer, hex32(rec.content_root))
    return {
        "dataset": hex32(rec.content_root),
        "status": rec.status.name.lower(),
        "successors": forward,
        "predecessors": previous,
        "latest": forward[-1] if forward else hex32(rec.content_root),
    }


@router.get("/{root}/stats", responses=responses(404), summary="Uses, distinct users and derived datasets")
def stats(root: str = ROOT, state: AppState = Depends(get_state)) -> dict[str, int]:
    return state.ledger.usage_stats(root)


@router.post(
    "/{root}/status",
    response_model=Ticket,
    status_code=202,
    responses=responses(403, 409),
    summary="Change tier/embargo, deprecate or retract (signed by the holder)",
)
def change_status(body: SignedWrite, root: str = ROOT, state: AppState = Depends(get_state)) -> Ticket:
    from ledger.calls import decode_call

    _, args = decode_call(state.ledger.relayer, body.request.to, bytes.fromhex(body.request.data[2:]))
    if bytes(args.get("contentRoot", b"")) != to_bytes32(root, "content root"):
        raise InvalidInput("the signed request is for another dataset than the URL names")
    return queue_forward(state, body.request, {"setSharing", "deprecateDataset", "retractDataset"})
