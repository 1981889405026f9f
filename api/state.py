"""Shared state of the service (one per process), handed to routes as a dependency."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request

from ledger.config import Settings
from ledger.operations import Ledger
from ledger.relay_queue import RelayQueue


@dataclass
class AppState:
    settings: Settings
    ledger: Ledger
    queue: RelayQueue
    ipfs: Any
    indexer: Any = None
    started: float = field(default_factory=time.time)


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.ledger_state
    return state
