"""Signed writes for roles, access requests and decisions, uses and suspensions."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from api.problems import COMMON, responses
from api.schemas import SignedWrite, Ticket
from api.state import AppState, get_state
from ledger.relay import calls

from ._writes import queue_forward

router = APIRouter(responses=COMMON)
ERRORS = responses(403, 409)


@router.post(
    "/roles",
    response_model=Ticket,
    status_code=202,
    responses=ERRORS,
    tags=["roles"],
    summary="Grant or revoke a role (signed by an admin)",
)
def roles(body: SignedWrite, state: AppState = Depends(get_state)) -> Ticket:
    return queue_forward(state, body.request, calls.ROLES)


@router.post(
    "/access-requests",
    response_model=Ticket,
    status_code=202,
    responses=ERRORS,
    tags=["access"],
    summary="File an access request (signed by a user)",
)
def request_access(body: SignedWrite, state: AppState = Depends(get_state)) -> Ticket:
    return queue_forward(state, body.request, calls.ACCESS_REQUESTS)


@router.post(
    "/access-requests/decisions",
    response_model=Ticket,
    status_code=202,
    responses=ERRORS,
    tags=["access"],
    summary="Approve, deny or revoke a request, or override an embargo",
)
def decide(body: SignedWrite, state: AppState = Depends(get_state)) -> Ticket:
    return queue_forward(state, body.request, calls.DECISIONS)


@router.post(
    "/uses",
    response_model=Ticket,
    status_code=202,
    responses=ERRORS,
    tags=["uses"],
    summary="Record a use of a dataset (signed by its user); refused unless allowed",
)
def record_use(body: SignedWrite, state: AppState = Depends(get_state)) -> Ticket:
    return queue_forward(state, body.request, calls.USES)


@router.post(
    "/suspensions",
    response_model=Ticket,
    status_code=202,
    responses=ERRORS,
    tags=["suspensions"],
    summary="Suspend or reinstate a dataset or a user (signed by an auditor)",
)
def suspensions(body: SignedWrite, state: AppState = Depends(get_state)) -> Ticket:
    return queue_forward(state, body.request, calls.SUSPENSIONS)
