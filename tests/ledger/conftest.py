"""Library fixtures: the contracts deployed on the session's real anvil, a Ledger with the real
js-ipfs store, and helpers to make actors and datasets."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

    from ledger.core.config import Settings
    from ledger.devstack.nodes import IpfsNode
    from ledger.services.ledger import Ledger


@pytest.fixture(scope="session")
def ledger(deployed_settings: Callable[..., Settings], ipfs_node: IpfsNode) -> Iterator[Ledger]:
    from ledger.chain.client import ChainClient
    from ledger.services.ledger import Ledger
    from ledger.storage.ipfs import IpfsStore

    settings = deployed_settings("ledger-data", ipfs_timeout=2.0)
    with IpfsStore(ipfs_node.api_multiaddr, timeout=2.0) as store:
        yield Ledger(settings, ChainClient(settings), ipfs=store)


@pytest.fixture(scope="session")
def admin(ledger: Ledger) -> LocalAccount:
    from eth_account import Account

    return Account.from_key(ledger.settings.relayer_private_key())


@pytest.fixture
def make_actor(ledger: Ledger, admin: LocalAccount) -> Callable[..., LocalAccount]:
    """A fresh key holding the given roles (relayed writes need no ETH)."""
    from eth_account import Account

    def make(*roles: str) -> LocalAccount:
        acct = Account.create()
        for role in roles:
            ledger.grant_role(admin, role, acct.address)
        return acct

    return make
