"""Fixtures for service tests: contracts deployed on the session's real anvil, the service's
state (ledger, relay queue with its worker, IPFS store) and a TestClient over the app."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from api.app import build_state, create_app

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

    from api.state import AppState
    from ledger.core.config import Settings


@pytest.fixture(scope="session")
def api_settings(deployed_settings: Callable[..., Settings]) -> Settings:
    return deployed_settings("api-data", batch_delay=0.05)


@pytest.fixture(scope="session")
def app_state(api_settings: Settings) -> Iterator[AppState]:
    state = build_state(api_settings, start_workers=True)
    try:
        yield state
    finally:
        state.queue.close()
        if state.indexer is not None:
            state.indexer.stop()


@pytest.fixture(scope="session")
def client(app_state: AppState) -> Iterator[TestClient]:
    from fastapi.testclient import TestClient

    with TestClient(create_app(state=app_state), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture(scope="session")
def admin(api_settings: Settings) -> Any:
    from eth_account import Account

    return Account.from_key(api_settings.relayer_private_key())


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    del items  # nothing to reorder; hook kept for symmetry with other suites


_ = Path
