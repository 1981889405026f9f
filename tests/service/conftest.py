"""Fixtures for service tests: contracts deployed on the session's real anvil, the service's
state (ledger, relay queue with its worker, IPFS store) and a TestClient over the app."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

    from api.state import AppState
    from ledger.config import Settings
    from ledger.nodes import AnvilNode, IpfsNode


@pytest.fixture(scope="session")
def api_settings(anvil_node: AnvilNode, ipfs_node: IpfsNode, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    from ledger.config import load_settings
    from ledger.deployment import ensure_deployed

    data = tmp_path_factory.mktemp("api-data")
    settings = load_settings(
        env={},
        rpc_url=anvil_node.url,
        ipfs_api=ipfs_node.api_multiaddr,
        data_dir=str(data),
        batch_delay=0.05,
        ipfs_timeout=3.0,
        manage_nodes=False,
    )
    ensure_deployed(settings)
    return settings


@pytest.fixture(scope="session")
def app_state(api_settings: Settings) -> Iterator[AppState]:
    from api.app import build_state

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

    from api.app import create_app

    with TestClient(create_app(state=app_state), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture(scope="session")
def admin(api_settings: Settings) -> Any:
    from eth_account import Account

    return Account.from_key(api_settings.relayer_private_key())


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    del items  # nothing to reorder; hook kept for symmetry with other suites


_ = Path
