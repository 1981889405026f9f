"""Current-state reads from the chain: access requests and accounts (roles, suspension)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path

from api.problems import COMMON, responses
from api.schemas import AccessRequestOut, AccountOut
from api.state import AppState, get_state
from ledger.services.audit import access_request_view, account_view

router = APIRouter(responses=COMMON)


@router.get(
    "/access-requests/{request_id}",
    tags=["access"],
    response_model=AccessRequestOut,
    responses=responses(404),
    summary="An access request and its decision",
)
def access_request(request_id: int = Path(ge=1, lt=2**64), state: AppState = Depends(get_state)) -> AccessRequestOut:
    return AccessRequestOut(**access_request_view(state.ledger, request_id))


@router.get(
    "/accounts/{address}",
    tags=["roles"],
    response_model=AccountOut,
    summary="An account's roles and whether it is suspended",
)
def account(address: str = Path(pattern=r"^0x[0-9a-fA-F]{40}$"), state: AppState = Depends(get_state)) -> AccountOut:
    return AccountOut(**account_view(state.ledger, address))
