"""Liveness and readiness: the chain, the IPFS node, the indexer's lag and the relay queue."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from api.schemas import Health, Readiness
from api.state import AppState, get_state

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
    out: dict[str, Any] = {"uptime_s": round(time.time() - state.started, 1)}
    ok = True
    try:
        w3 = state.ledger.client.w3
        out["chain"] = {
            "ok": True,
            "chain_id": w3.eth.chain_id,
            "block": w3.eth.block_number,
            "rpc_url": state.settings.rpc_url,
        }
    except Exception as exc:  # any failure means not ready; say which
        ok = False
        out["chain"] = {"ok": False, "error": str(exc)}
    ipfs_ok = bool(state.ipfs.is_available())
    ok = ok and ipfs_ok
    out["ipfs"] = {"ok": ipfs_ok, "api": state.settings.ipfs_api}
    if state.indexer is not None:
        try:
            lag = state.indexer.lag()
            out["indexer"] = {"ok": True, "lag_blocks": lag}
        except Exception as exc:
            ok = False
            out["indexer"] = {"ok": False, "error": str(exc)}
    else:
        out["indexer"] = {"ok": False, "error": "not running"}
    out["relay_queue"] = state.queue.counts()
    out["status"] = "ready" if ok else "not-ready"
    return JSONResponse(out, status_code=200 if ok else 503)
