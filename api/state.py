"""Shared state of the service (one per process), handed to routes as a dependency."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from fastapi import Request

from ledger.chain.client import AsyncRawCaller
from ledger.core.config import Settings
from ledger.core.errors import NodeUnavailable
from ledger.history.index import Indexer
from ledger.relay.queue import RelayQueue
from ledger.services.ledger import Ledger
from ledger.storage.ipfs import IpfsStore


@dataclass
class AppState:
    settings: Settings
    ledger: Ledger
    queue: RelayQueue
    ipfs: IpfsStore
    indexer: Indexer | None = None
    started: float = field(default_factory=time.time)
    _readers: dict[int, AsyncRawCaller] = field(default_factory=dict)

    def require_indexer(self) -> Indexer:
        """The event indexer; history reads need it running."""
        if self.indexer is None:
            raise NodeUnavailable("the event indexer is not running", hint="start the service with its indexer")
        return self.indexer

    def async_reader(self) -> AsyncRawCaller:
        """The pooled async eth_call client of the running event loop (an HTTP connection pool
        belongs to one loop; tests run several apps over one state)."""
        key = id(asyncio.get_running_loop())
        reader = self._readers.get(key)
        if reader is None:
            reader = AsyncRawCaller(self.settings.rpc_url, self.ledger.client.decoder)
            self._readers[key] = reader
        return reader


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.ledger_state
    return state
