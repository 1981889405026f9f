"""Liveness and readiness: the chain, the IPFS node, the indexer's lag and the relay queue."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from api.schemas import Health, Readiness
from api.state import AppState, get_state
from ledger.services.health import readiness

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health, summary="The process is up")
def health() -> Health:
    return Health(status="ok")


@router.get(
    "/ready",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "A dependency is down: which one, and why"}},
    summary="Chain, IPFS node and indexer reachable; 503 otherwise",
)
def ready(state: AppState = Depends(get_state)) -> JSONResponse:
    out = readiness(state.settings, state.ledger, state.ipfs, state.indexer, state.queue, started=state.started)
    return JSONResponse(out, status_code=200 if out["status"] == "ready" else 503)
