"""Audit queries from the indexer: the full trail of a dataset or a user, and what a subject's
withdrawal affects."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path, Query

from api.problems import COMMON, responses
from api.schemas import DatasetTrail, ImpactIn, ImpactOut, UserTrail
from api.state import AppState, get_state
from ledger.history.index import IndexEventSource
from ledger.services.impact import withdrawal_impact as impact

router = APIRouter(prefix="/audit", tags=["audit"], responses=COMMON)


@router.get(
    "/datasets/{root}",
    response_model=DatasetTrail,
    summary="Every event touching a dataset, in order",
    responses=responses(404),
)
def dataset_trail(
    root: str = Path(pattern=r"^0x[0-9a-fA-F]{64}$"),
    limit: int = Query(500, ge=1, le=10_000),
    after: int | None = Query(None, ge=0, lt=2**62, description="cursor: next_cursor of the previous page"),
    state: AppState = Depends(get_state),
) -> DatasetTrail:
    return DatasetTrail(**state.require_indexer().dataset_trail(root, limit=limit, after=after))


@router.get(
    "/users/{address}",
    response_model=UserTrail,
    summary="A user's requests, approvals, uses, suspensions and datasets",
)
def user_trail(
    address: str = Path(pattern=r"^0x[0-9a-fA-F]{40}$"),
    limit: int = Query(500, ge=1, le=10_000),
    after: int | None = Query(None, ge=0, lt=2**62, description="cursor: next_cursor of the previous page"),
    state: AppState = Depends(get_state),
) -> UserTrail:
    return UserTrail(**state.require_indexer().user_trail(address, limit=limit, after=after))


@router.post(
    "/subjects/{address}/withdrawal-impact",
    response_model=ImpactOut,
    summary="What a subject's withdrawal affects: datasets, descendants, later approvals and uses",
)
def withdrawal_impact(
    body: ImpactIn,
    address: str = Path(pattern=r"^0x[0-9a-fA-F]{40}$"),
    state: AppState = Depends(get_state),
) -> ImpactOut:
    result = impact(state.ledger, IndexEventSource(state.require_indexer()), address, body.subject_lists)
    return ImpactOut(**result.to_json())
