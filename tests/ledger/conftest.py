"""Library fixtures: the contracts deployed on the session's real anvil, a Ledger with the real
js-ipfs store, and helpers to make actors and datasets.

A module that moves chain time says so with ``pytestmark = pytest.mark.moves_chain_time``: its
``ledger`` (and so ``admin`` and ``make_actor``) is then on a dedicated anvil of its own
(``isolated_chain``), and ``chain_snapshot`` reverts a single test's writes and clock moves.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from ledger.chain.client import ChainClient
from ledger.core.config import Settings
from ledger.devstack.nodes import IpfsNode
from ledger.services.ledger import Ledger
from ledger.storage.ipfs import IpfsStore

if TYPE_CHECKING:
    from tests.conftest import PrivateChain


@pytest.fixture(scope="session")
def session_ledger(deployed_settings: Callable[..., Settings], ipfs_node: IpfsNode) -> Iterator[Ledger]:
    """The Ledger on the session's anvil (one relayer client for the session: its nonces stay in step)."""
    settings = deployed_settings("ledger-data", ipfs_timeout=2.0)
    with IpfsStore(ipfs_node.api_multiaddr, timeout=2.0) as store:
        yield Ledger(settings, ChainClient(settings), ipfs=store)


@pytest.fixture(scope="module")
def isolated_ledger(isolated_chain: PrivateChain, ipfs_node: IpfsNode) -> Iterator[Ledger]:
    """A Ledger on the module's own anvil (see ``isolated_chain``) and the session's js-ipfs node,
    which is content-addressed and has no clock, so sharing it is safe."""
    settings = dataclasses.replace(isolated_chain.settings, ipfs_api=ipfs_node.api_multiaddr, ipfs_timeout=2.0)
    with IpfsStore(ipfs_node.api_multiaddr, timeout=2.0) as store:
        yield Ledger(settings, ChainClient(settings), ipfs=store)


@pytest.fixture(scope="module")
def ledger(request: pytest.FixtureRequest, ipfs_node: IpfsNode) -> Ledger:
    """The session Ledger, or the module's own when the module is marked ``moves_chain_time``.
    (``ipfs_node`` is named so the fixture closure shows this is a node fixture: the choice below
    is made at run time, out of sight of the tier marking.)"""
    del ipfs_node
    name = "isolated_ledger" if request.node.get_closest_marker("moves_chain_time") else "session_ledger"
    chosen: Ledger = request.getfixturevalue(name)
    return chosen


@pytest.fixture
def chain_snapshot(ledger: Ledger, request: pytest.FixtureRequest) -> Iterator[Ledger]:
    """The module's isolated Ledger, with everything the test does on chain (writes and clock moves)
    reverted afterwards; the Ledger's nonce manager and cached chain time are reset after the revert.
    Only for modules marked ``moves_chain_time``: the session chain is never reverted."""
    if request.node.get_closest_marker("moves_chain_time") is None:
        pytest.fail("chain_snapshot needs a module marked pytest.mark.moves_chain_time")
    chain: PrivateChain = request.getfixturevalue("isolated_chain")
    with chain.snapshot(ledger.client.nonces.reset, ledger.relayer.forget_now):
        yield ledger


@pytest.fixture(scope="module")
def admin(ledger: Ledger) -> LocalAccount:
    account: LocalAccount = Account.from_key(ledger.settings.relayer_private_key())
    return account


@pytest.fixture
def make_actor(ledger: Ledger, admin: LocalAccount) -> Callable[..., LocalAccount]:
    """A fresh key holding the given roles (relayed writes need no ETH)."""

    def make(*roles: str) -> LocalAccount:
        acct: LocalAccount = Account.create()
        for role in roles:
            ledger.grant_role(admin, role, acct.address)
        return acct

    return make
