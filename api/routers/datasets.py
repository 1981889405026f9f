"""Datasets: register (signed by the holder), read, versions, usage counters, status changes."""

from __future__ import annotations

import contextlib
from typing import Any

from fastapi import APIRouter, Depends, Path
from pydantic import ValidationError

from api.problems import COMMON, responses
from api.schemas import DatasetPrepared, DatasetPrepareIn, DatasetRegistered, DatasetRegisterIn, SignedWrite, Ticket
from api.state import AppState, get_state
from ledger.content.metadata import DatasetMetadata
from ledger.core.errors import InvalidInput, LedgerError
from ledger.core.records import ZERO32, hex32, to_bytes32
from ledger.relay.relayer import ForwardRequest
from ledger.services.audit import dataset_versions, dataset_with_metadata
from ledger.services.ledger import RegistrationCall, registration_call

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
    to, data = relayer.encode("DatasetRegistry", "register", *call.args)
    req = state.queue.prepare(call.metadata.holder, to, data, deadline=body.deadline, gas_if_pending=1_500_000)
    unsigned = req.unsigned_json()
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
    return dataset_with_metadata(state.ledger, root)


@router.get(
    "/{root}/versions",
    responses=responses(404),
    summary="The version chain: successors (deprecate) and the versions it superseded",
)
def versions(root: str = ROOT, state: AppState = Depends(get_state)) -> dict[str, Any]:
    return dataset_versions(state.ledger, state.indexer, root)


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
    from ledger.relay.calls import decode_call

    _, args = decode_call(state.ledger.relayer, body.request.to, bytes.fromhex(body.request.data[2:]))
    if bytes(args.get("contentRoot", b"")) != to_bytes32(root, "content root"):
        raise InvalidInput("the signed request is for another dataset than the URL names")
    return queue_forward(state, body.request, {"setSharing", "deprecateDataset", "retractDataset"})
