"""Shared fixtures: real anvil and js-ipfs nodes on free ports in a temporary directory.

Importing this file starts nothing: the node fixtures are session-scoped and start on first use, and
stop at the end of the session (they are also tied to the test process, so a killed run leaks no daemon).

Contract tests (tests/contracts) run under ``brownie test``; library tests run with plain pytest, e.g.
``pytest -p no:pytest-brownie tests/ledger`` (without the flag brownie's plugin also loads the brownie
project and starts its own anvil, which needs the environment of scripts/bootstrap.sh).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from ledger.core.config import Settings
    from ledger.devstack.nodes import AnvilNode, IpfsNode
    from ledger.storage.ipfs import IpfsStore


def pytest_configure(config: pytest.Config) -> None:
    # ipfshttpclient 0.7 passes urllib3 a deprecated argument; ledger.ipfs filters the warning, but
    # pytest resets filters per test
    config.addinivalue_line("filterwarnings", "ignore:The 'strict' parameter is no longer needed:FutureWarning")


@pytest.fixture(scope="session")
def nodes_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One directory for every node of the session (state files, repos, logs, pid files)."""
    return tmp_path_factory.mktemp("nodes")


@pytest.fixture(scope="session")
def anvil_node(nodes_dir: Path) -> Iterator[AnvilNode]:
    """A real anvil (chain id 31337, base fee 0) with a state file, on a free port."""
    from ledger.devstack.nodes import AnvilNode, free_port

    node = AnvilNode(nodes_dir / "anvil", free_port(), nodes_dir / "anvil" / "state.json")
    node.start()
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture(scope="session")
def ipfs_node(nodes_dir: Path) -> Iterator[IpfsNode]:
    """A real js-ipfs daemon (offline, test profile) on free ports."""
    from ledger.devstack.nodes import IpfsNode, free_ports

    api, gateway, rpc = free_ports(3)
    node = IpfsNode(nodes_dir / "ipfs", api, gateway, rpc)
    node.start()
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture
def ipfs_store(ipfs_node: IpfsNode) -> Iterator[IpfsStore]:
    """An IpfsStore on the session's js-ipfs node with a short fetch timeout."""
    from ledger.storage.ipfs import IpfsStore

    with IpfsStore(ipfs_node.api_multiaddr, timeout=3.0) as store:
        yield store


@pytest.fixture(scope="session")
def deployed_settings(
    anvil_node: AnvilNode, ipfs_node: IpfsNode, tmp_path_factory: pytest.TempPathFactory
) -> Callable[..., Settings]:
    """Settings for the session's nodes with the contracts deployed (one deployment per session:
    ``ensure_deployed`` reuses it), each suite with its own data directory named ``tag``."""
    from ledger.chain.deployment import ensure_deployed
    from ledger.core.config import load_settings

    def make(tag: str, **overrides: Any) -> Settings:
        options: dict[str, Any] = {"ipfs_timeout": 3.0, "manage_nodes": False, **overrides}
        settings = load_settings(
            env={},
            rpc_url=anvil_node.url,
            ipfs_api=ipfs_node.api_multiaddr,
            data_dir=str(tmp_path_factory.mktemp(tag)),
            **options,
        )
        ensure_deployed(settings)
        return settings

    return make
