"""The relay queue on a real anvil: requests checked on entry, batched, withdrawals first, and
neither lost nor executed twice across restarts (including a crash after a batch was sent)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from ledger.core.errors import SignatureError
from ledger.core.records import ConsentScope
from ledger.relay.queue import RelayQueue
from ledger.rules import datause
from ledger.services.ledger import Ledger, role_id


def _wait(queue: RelayQueue, ids: list[str], timeout: float = 30) -> list[Any]:
    deadline = time.time() + timeout
    while time.time() < deadline:
        tickets = [queue.get(i) for i in ids]
        if all(t.status in ("mined", "failed") for t in tickets):
            return tickets
        time.sleep(0.02)
    raise AssertionError("tickets not settled")


def test_batches_and_dedupes(ledger: Ledger, admin: Any, tmp_path: Path) -> None:
    queue = RelayQueue(ledger.relayer, tmp_path / "q.sqlite3", batch_size=50, batch_delay=0.05)
    targets = [Account.create() for _ in range(5)]
    base = ledger.relayer.chain_nonce(admin.address)
    reqs = [
        ledger.relayer.sign_request(admin, "LedgerRoles", "grantRole", role_id("user"), t.address, nonce=base + i)
        for i, t in enumerate(targets)
    ]
    tickets = [queue.submit_forward(r) for r in reqs]
    assert queue.submit_forward(reqs[0]).id == tickets[0].id  # the same request twice: one ticket
    # a different request with an already queued nonce is refused
    other = ledger.relayer.sign_request(
        admin, "LedgerRoles", "grantRole", role_id("user"), Account.create().address, nonce=base
    )
    with pytest.raises(SignatureError, match="already queued"):
        queue.submit_forward(other)
    assert queue.next_nonce(admin.address) == base + 5
    assert queue.flush() == 5
    settled = [queue.get(t.id) for t in tickets]
    assert {t.status for t in settled} == {"mined"}
    assert len({t.tx_hash for t in settled}) == 1  # one batch transaction
    assert all(ledger.has_role("user", t.address) for t in targets)
    queue.close()


def test_withdrawal_goes_first(ledger: Ledger, make_actor: Any, tmp_path: Path) -> None:
    holder = make_actor("holder")
    subject = Account.create()
    queue = RelayQueue(ledger.relayer, tmp_path / "q.sqlite3", batch_size=50, batch_delay=0.05)
    scope = ConsentScope.holder(holder.address)
    grant = ledger.relayer.sign_consent(
        subject,
        "Grant",
        ledger.consent_message(
            "Grant", subject=subject.address, scope=scope, purposes=datause.HMB, expiry=ledger.now() + 3600
        ),
    )
    ledger.write_consent(grant)
    # queued in this order: a renewal, then a withdrawal; the withdrawal executes first, so the
    # renewal fails (nothing to renew) and the consent ends withdrawn
    renew = ledger.relayer.sign_consent(
        subject,
        "Renew",
        ledger.consent_message("Renew", subject=subject.address, scope=scope, expiry=ledger.now() + 7200),
    )
    withdraw = ledger.relayer.sign_consent(
        subject, "Withdraw", ledger.consent_message("Withdraw", subject=subject.address, scope=scope)
    )
    t_renew = queue.submit_consent(renew)
    t_withdraw = queue.submit_consent(withdraw)
    queue.flush()
    assert queue.get(t_withdraw.id).status == "mined"
    failed = queue.get(t_renew.id)
    assert failed.status == "failed" and failed.error is not None and failed.error["error"] == "ConsentNotRenewable"
    assert ledger.get_consent(subject.address, scope).state.name == "WITHDRAWN"
    queue.close()


def test_restart_loses_nothing_and_runs_nothing_twice(ledger: Ledger, admin: Any, tmp_path: Path) -> None:
    path = tmp_path / "q.sqlite3"
    queue = RelayQueue(ledger.relayer, path, batch_size=50, batch_delay=0.05)
    base = ledger.relayer.chain_nonce(admin.address)
    targets = [Account.create() for _ in range(4)]
    ids = [
        queue.submit_forward(
            ledger.relayer.sign_request(admin, "LedgerRoles", "grantRole", role_id("user"), t.address, nonce=base + i)
        ).id
        for i, t in enumerate(targets[:2])
    ]
    queue.close()  # the process stops with two requests queued

    # a second process queues two more, and stops before its worker ran
    queue = RelayQueue(ledger.relayer, path, batch_size=50, batch_delay=0.05)
    more = [
        ledger.relayer.sign_request(admin, "LedgerRoles", "grantRole", role_id("user"), t.address, nonce=base + 2 + i)
        for i, t in enumerate(targets[2:])
    ]
    ids += [queue.submit_forward(r).id for r in more]
    queue.close()

    restarted = RelayQueue(ledger.relayer, path, batch_size=50, batch_delay=0.05)
    restarted.start()
    tickets = _wait(restarted, ids)
    assert [t.status for t in tickets] == ["mined"] * 4
    assert ledger.relayer.chain_nonce(admin.address) == base + 4  # each executed exactly once
    restarted.close()


def test_crash_after_send_is_settled_from_the_transaction(ledger: Ledger, admin: Any, tmp_path: Path) -> None:
    path = tmp_path / "q.sqlite3"
    queue = RelayQueue(ledger.relayer, path, batch_size=50, batch_delay=0.05)
    base = ledger.relayer.chain_nonce(admin.address)
    target = Account.create()
    req = ledger.relayer.sign_request(admin, "LedgerRoles", "grantRole", role_id("user"), target.address, nonce=base)
    ticket = queue.submit_forward(req)
    # do what flush does up to the point of waiting, then "crash"
    tx_hash = ledger.relayer.send_batch([req])
    queue._mark_submitting([ticket.id], tx_hash)
    queue.close()

    restarted = RelayQueue(ledger.relayer, path, batch_size=50, batch_delay=0.05)
    assert restarted.recover() == 1
    settled = restarted.get(ticket.id)
    assert settled.status == "mined" and settled.tx_hash == tx_hash
    restarted.start()
    time.sleep(0.3)  # the worker must not submit it again
    assert ledger.relayer.chain_nonce(admin.address) == base + 1
    restarted.close()
