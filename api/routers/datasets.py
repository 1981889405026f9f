"""Datasets: register (signed by the holder), read, versions, usage counters, status changes."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path

from api.problems import COMMON, responses
from api.schemas import (
    DatasetOut,
    DatasetPrepared,
    DatasetPrepareIn,
    DatasetRegistered,
    DatasetRegisterIn,
    SignedWrite,
    StatsOut,
    Ticket,
    VersionsOut,
)
from api.state import AppState, get_state
from ledger.core.records import hex32
from ledger.relay.calls import DATASET_STATUS
from ledger.relay.relayer import ForwardRequest
from ledger.services.audit import dataset_versions, dataset_with_metadata
from ledger.services.datasets import (
    RegistrationCall,
    prepare_registration,
    queue_registration,
    registration_from_json,
)

from ._writes import queue_forward

router = APIRouter(prefix="/datasets", tags=["datasets"], responses=COMMON)
ROOT = Path(pattern=r"^0x[0-9a-fA-F]{64}$", description="content root")


def _call(body: DatasetPrepareIn) -> RegistrationCall:
    return registration_from_json(body.metadata, body.subject_root, body.embargo_end)


@router.post(
    "/prepare",
    response_model=DatasetPrepared,
    responses=responses(403, 409),
    summary="Content root, CID and the typed data the holder signs to register a dataset",
)
def prepare(body: DatasetPrepareIn, state: AppState = Depends(get_state)) -> DatasetPrepared:
    prepared = prepare_registration(state.queue, _call(body), deadline=body.deadline)
    return DatasetPrepared(
        content_root=prepared.content_root,
        metadata_cid=prepared.metadata_cid,
        typed_data=dict(prepared.typed_data),
        request=prepared.request,
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
    signed = ForwardRequest.from_json(body.request.as_json())
    ticket = queue_registration(state.queue, state.ipfs, call, signed)
    return DatasetRegistered(
        content_root=hex32(call.content_root), metadata_cid=call.metadata_cid, ticket=Ticket(**ticket.to_json())
    )


@router.get(
    "/{root}",
    response_model=DatasetOut,
    responses=responses(404),
    summary="A dataset's chain record and metadata document",
)
def get_dataset(root: str = ROOT, state: AppState = Depends(get_state)) -> DatasetOut:
    return DatasetOut(**dataset_with_metadata(state.ledger, root))


@router.get(
    "/{root}/versions",
    response_model=VersionsOut,
    responses=responses(404),
    summary="The version chain: successors (deprecate) and the versions it superseded",
)
def versions(root: str = ROOT, state: AppState = Depends(get_state)) -> VersionsOut:
    return VersionsOut(**dataset_versions(state.ledger, state.indexer, root))


@router.get(
    "/{root}/stats",
    response_model=StatsOut,
    responses=responses(404),
    summary="Uses, distinct users and derived datasets",
)
def stats(root: str = ROOT, state: AppState = Depends(get_state)) -> StatsOut:
    return StatsOut(**state.ledger.usage_stats(root))


@router.post(
    "/{root}/status",
    response_model=Ticket,
    status_code=202,
    responses=responses(403, 409),
    summary="Change tier/embargo, deprecate or retract (signed by the holder)",
)
def change_status(body: SignedWrite, root: str = ROOT, state: AppState = Depends(get_state)) -> Ticket:
    return queue_forward(state, body.request, DATASET_STATUS, content_root=root)
