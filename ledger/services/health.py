"""Readiness: whether the chain, the IPFS node and the event index answer, and the relay queue's
state; the service's ``/ready`` and the CLI's ``status --service`` report it."""

from __future__ import annotations

import time
from typing import Any

from ledger.core.config import Settings
from ledger.history.index import Indexer
from ledger.relay.queue import RelayQueue
from ledger.services.ledger import Ledger
from ledger.storage.ipfs import IpfsStore


def chain_status(ledger: Ledger, settings: Settings) -> dict[str, Any]:
    """The chain's id, its latest block and that block's timestamp (the contracts' now); ``ok``
    false with the error when the node does not answer."""
    try:
        w3 = ledger.client.w3
        latest = w3.eth.get_block("latest")
        return {
            "ok": True,
            "chain_id": int(w3.eth.chain_id),
            "block": int(latest["number"]),
            "timestamp": int(latest["timestamp"]),
            "rpc_url": settings.rpc_url,
        }
    except Exception as exc:  # any failure means not ready; say which
        return {"ok": False, "error": str(exc)}


def indexer_status(indexer: Indexer | None) -> dict[str, Any]:
    """How many blocks the index is behind the chain, or why it cannot say."""
    if indexer is None:
        return {"ok": False, "error": "not running"}
    try:
        return {"ok": True, "lag_blocks": indexer.lag()}
    except Exception as exc:  # a failing index is reported, not raised
        return {"ok": False, "error": str(exc)}


def readiness(
    settings: Settings,
    ledger: Ledger,
    ipfs: IpfsStore,
    indexer: Indexer | None,
    queue: RelayQueue,
    *,
    started: float,
) -> dict[str, Any]:
    """Each dependency's state and ``status``: ``ready`` when the chain, the IPFS node and the
    index all answer, ``not-ready`` otherwise. ``started`` is when the process started (epoch
    seconds), for ``uptime_s``."""
    out: dict[str, Any] = {"uptime_s": round(time.time() - started, 1)}
    out["chain"] = chain_status(ledger, settings)
    ipfs_ok = bool(ipfs.is_available())
    out["ipfs"] = {"ok": ipfs_ok, "api": settings.ipfs_api}
    out["indexer"] = indexer_status(indexer)
    out["relay_queue"] = queue.counts()
    ok = bool(out["chain"]["ok"]) and ipfs_ok and bool(out["indexer"]["ok"])
    out["status"] = "ready" if ok else "not-ready"
    return out
