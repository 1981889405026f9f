"""Chain time in isolation: a module marked ``moves_chain_time`` gets a Ledger on an anvil of its
own, a snapshot takes back both the clock and the writes, and the Ledger keeps working after the
revert (its nonce manager and cached chain time are reset). The session anvil never moves."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest
from eth_account.signers.local import LocalAccount

from ledger.devstack.nodes import AnvilNode
from ledger.services.ledger import Ledger

if TYPE_CHECKING:
    from tests.conftest import PrivateChain

pytestmark = pytest.mark.moves_chain_time

DAY = 86400
#: what the tests below leave for the next one to check (pytest runs a module's tests in file order)
moved: dict[str, int] = {}


def test_the_module_ledger_is_on_its_own_anvil(
    ledger: Ledger, isolated_chain: PrivateChain, anvil_node: AnvilNode
) -> None:
    assert ledger.settings.rpc_url == isolated_chain.url
    assert isolated_chain.url != anvil_node.url
    assert ledger.client.w3.eth.chain_id == 31337


def test_a_snapshot_takes_back_the_clock_and_the_writes(
    ledger: Ledger, isolated_chain: PrivateChain, make_actor: Callable[..., LocalAccount]
) -> None:
    start = ledger.now()
    with isolated_chain.snapshot(ledger.client.nonces.reset, ledger.relayer.forget_now):
        holder = make_actor("holder")
        ledger.wait_until(start + 2 * DAY)
        assert ledger.now() >= start + 2 * DAY
        assert ledger.has_role("holder", holder.address)
    assert ledger.now() < start + DAY
    assert not ledger.has_role("holder", holder.address)
    # the relayer and the admin's nonces are back in step with the reverted chain
    again = make_actor("holder", "reviewer")
    assert ledger.has_role("holder", again.address) and ledger.has_role("reviewer", again.address)


def test_chain_snapshot_moves_time_for_one_test(
    chain_snapshot: Ledger, make_actor: Callable[..., LocalAccount]
) -> None:
    ledger = chain_snapshot
    user = make_actor("user")
    moved["to"] = ledger.now() + 3 * DAY
    ledger.wait_until(moved["to"])
    assert ledger.now() == moved["to"]
    moved["user_block"] = int(ledger.client.w3.eth.block_number)
    assert ledger.has_role("user", user.address)


def test_after_chain_snapshot_the_clock_and_writes_are_back(
    ledger: Ledger, make_actor: Callable[..., LocalAccount]
) -> None:
    assert moved, "runs after test_chain_snapshot_moves_time_for_one_test"
    assert ledger.now() < moved["to"] - 2 * DAY
    assert int(ledger.client.w3.eth.block_number) < moved["user_block"]
    assert ledger.has_role("auditor", make_actor("auditor").address)

