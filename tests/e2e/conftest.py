"""End-to-end fixtures: the contracts deployed on the session's real anvil and js-ipfs, the
service as a uvicorn process with the app's own lifespan, and direct chain reads to check it.

Run: ``.venv/bin/python -m pytest -p no:pytest-brownie tests/e2e -q``
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from .helpers import ServiceProcess

if TYPE_CHECKING:
    from ledger.config import Settings
    from ledger.nodes import AnvilNode, IpfsNode
    from ledger.operations import Ledger


@pytest.fixture(scope="session")
def e2e_settings(anvil_node: AnvilNode, ipfs_node: IpfsNode, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    from ledger.config import load_settings
    from ledger.deployment import ensure_deployed

    data = tmp_path_factory.mktemp("e2e-data")
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
def chain(e2e_settings: Settings) -> Iterator[Ledger]:
    """Direct reads of the chain and IPFS, independent of the service under test."""
    from ledger.chain import ChainClient
    from ledger.ipfs import IpfsStore
    from ledger.operations import Ledger

    with IpfsStore.from_settings(e2e_settings) as store:
        yield Ledger(e2e_settings, ChainClient(e2e_settings), ipfs=store)


@pytest.fixture(scope="session")
def service(e2e_settings: Settings) -> Iterator[ServiceProcess]:
    """The service under test, for the whole session."""
    with ServiceProcess(e2e_settings) as proc:
        yield proc


@pytest.fixture(scope="session")
def admin_key(e2e_settings: Settings) -> str:
    return e2e_settings.relayer_private_key()
