"""Current-state reads from the chain: access requests and accounts (roles, suspension)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Path

from api.problems import COMMON, responses
from api.state import AppState, get_state

router = APIRouter(responses=COMMON)


@router.get(
    "/access-requests/{request_id}",
    tags=["access"],
    responses=responses(404),
    summary="An access request and its decision",
)
def access_request(request_id: int = Path(ge=1, lt=2**64), state: AppState = Depends(get_state)) -> dict[str, Any]:
    body: dict[str, Any] = state.ledger.get_request(request_id).to_json()
    body["approval_in_force"] = body["status"] == "approved" and body["expiry"] > state.ledger.now()
    return body


@router.get("/accounts/{address}", tags=["roles"], summary="An account's roles and whether it is suspended")
def account(
    address: str = Path(pattern=r"^0x[0-9a-fA-F]{40}$"), state: AppState = Depends(get_state)
) -> dict[str, Any]:
    return {
        "address": address,
        "roles": state.ledger.roles_of(address),
        "suspended": state.ledger.is_user_suspended(address),
    }
