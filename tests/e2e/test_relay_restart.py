"""The relay queue across restarts of the service: signed requests accepted over HTTP while no
worker runs are neither lost nor executed twice when a new service starts on the same data dir,
including after a worker crashed between sending a batch and recording its outcome."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient

from api.app import build_state, create_app
from ledger.client.http import ServiceClient
from ledger.core.config import Settings
from ledger.core.records import ConsentScope, ConsentState
from ledger.relay.relayer import ForwardRequest, SignedConsent
from ledger.services.ledger import Ledger, role_id

from .helpers import settings_for, wait_until

YEAR = 365 * 86400


@contextlib.contextmanager
def service_state(settings: Settings, *, workers: bool) -> Iterator[tuple[Any, ServiceClient]]:
    """The service's state (api.app.build_state) and an HTTP client of an app over it. Closing it
    is what a service shutdown does: the queue is closed, the indexer stopped."""
    state = build_state(settings, start_workers=workers)
    try:
        with TestClient(create_app(state=state), raise_server_exceptions=False) as http:
            yield state, ServiceClient(http=http)
    finally:
        state.queue.close()
        if state.indexer is not None:
            with contextlib.suppress(Exception):
                state.indexer.stop()
            with contextlib.suppress(Exception):
                state.indexer.close()


def role(name: str) -> str:
    return "0x" + role_id(name).hex()


def executed_nonces(chain: Ledger, signer: str, from_block: int) -> list[int]:
    fwd = chain.relayer.forwarder
    logs = fwd.events.ExecutedForwardRequest().get_logs(from_block=from_block, argument_filters={"signer": signer})
    return sorted(int(ev["args"]["nonce"]) for ev in logs)


def consent_events(chain: Ledger, name: str, subject: str, from_block: int) -> list[Any]:
    event = getattr(chain.consents.events, name)()
    return list(event.get_logs(from_block=from_block, argument_filters={"subject": subject}))


def role_grants(chain: Ledger, account: str, from_block: int) -> list[Any]:
    logs = chain.roles.events.RoleGranted().get_logs(from_block=from_block, argument_filters={"account": account})
    return list(logs)


def settle(queue: Any, ids: list[str], timeout: float = 60.0) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        tickets = {i: queue.get(i) for i in ids}
        return tickets if all(t.status in ("mined", "failed") for t in tickets.values()) else None

    return wait_until(done, timeout, "every queued request settled")


@pytest.fixture
def admin(e2e_settings: Settings) -> LocalAccount:
    return Account.from_key(e2e_settings.relayer_private_key())


@pytest.fixture
def second_admin(chain: Ledger, admin: LocalAccount) -> LocalAccount:
    """Another forward-request signer: an admin whose role was granted beforehand."""
    acct = Account.create()
    chain.grant_role(admin, "admin", acct.address)
    return acct


def queue_mixed_requests(
    client: ServiceClient, chain: Ledger, admin: LocalAccount, second_admin: LocalAccount
) -> tuple[dict[str, str], dict[str, Any]]:
    """Several signers: two admins (forward requests, consecutive nonces each), four subjects
    granting consent, and one subject withdrawing an earlier consent. Returns the ticket ids by
    label, and what to look for on chain."""
    holder = Account.create().address
    scope = ConsentScope.holder(holder)
    withdrawer = Account.create()
    chain.grant_consent(withdrawer, scope, 1 << 2, chain.now() + YEAR)  # HMB, mined before the queueing
    users = [Account.create().address for _ in range(3)]
    subjects = [Account.create() for _ in range(4)]
    tickets: dict[str, str] = {}
    for i, user in enumerate(users):
        tickets[f"admin-grant-{i}"] = client.send(admin, "grantRole", {"role": role("user"), "account": user})["id"]
    for i, user in enumerate(users[:2]):
        tickets[f"admin2-grant-{i}"] = client.send(
            second_admin, "grantRole", {"role": role("reviewer"), "account": user}
        )["id"]
    for i, s in enumerate(subjects):
        tickets[f"consent-{i}"] = client.consent(
            s,
            {
                "kind": "Grant",
                "subject": s.address,
                "scope_kind": "holder",
                "scope": holder,
                "purposes": ["GRU"] if i % 2 else ["HMB", "NCU"],
                "expiry": int(time.time()) + YEAR,
            },
            wait=False,
        )["id"]
    tickets["withdrawal"] = client.consent(
        withdrawer,
        {"kind": "Withdraw", "subject": withdrawer.address, "scope_kind": "holder", "scope": holder},
        wait=False,
    )["id"]
    expect = {"users": users, "subjects": subjects, "withdrawer": withdrawer, "scope": scope}
    return tickets, expect


def check_executed_once(
    chain: Ledger,
    admin: LocalAccount,
    second_admin: LocalAccount,
    start_block: int,
    nonces: dict[str, int],
    expect: dict[str, Any],
) -> None:
    assert chain.relayer.chain_nonce(admin.address) == nonces["admin"] + 3
    assert chain.relayer.chain_nonce(second_admin.address) == nonces["admin2"] + 2
    assert executed_nonces(chain, admin.address, start_block) == [nonces["admin"] + i for i in range(3)]
    assert executed_nonces(chain, second_admin.address, start_block) == [nonces["admin2"], nonces["admin2"] + 1]
    for i, user in enumerate(expect["users"]):
        assert len(role_grants(chain, user, start_block)) == (2 if i < 2 else 1)
        assert chain.has_role("user", user)
    for s in expect["subjects"]:
        assert len(consent_events(chain, "ConsentGiven", s.address, start_block)) == 1
        assert chain.get_consent(s.address, expect["scope"]).state == ConsentState.GIVEN
    w = expect["withdrawer"].address
    assert len(consent_events(chain, "ConsentWithdrawn", w, start_block)) == 1
    assert chain.get_consent(w, expect["scope"]).state == ConsentState.WITHDRAWN


def test_restart_with_queued_requests(
    e2e_settings: Settings, chain: Ledger, admin: LocalAccount, second_admin: LocalAccount, tmp_path: Path
) -> None:
    settings = settings_for(e2e_settings, tmp_path / "service")
    start_block = chain.client.w3.eth.block_number + 1  # events from here on
    nonces = {
        "admin": chain.relayer.chain_nonce(admin.address),
        "admin2": chain.relayer.chain_nonce(second_admin.address),
    }

    # 1. a service without workers accepts signed requests over HTTP and only queues them
    with service_state(settings, workers=False) as (state, client):
        tickets, expect = queue_mixed_requests(client, chain, admin, second_admin)
        assert state.queue.counts() == {"queued": len(tickets)}
        assert {client.get(f"/relay/{t}")["status"] for t in tickets.values()} == {"queued"}
    queued_at = chain.client.w3.eth.block_number
    assert chain.relayer.chain_nonce(admin.address) == nonces["admin"]  # nothing was sent

    # 2. a new service on the same data dir finds them and relays each exactly once
    with service_state(settings, workers=True) as (state, client):
        done = settle(state.queue, list(tickets.values()))
        assert {label: t.status for label, t in done.items() if t.status != "mined"} == {}
        by_label = {label: done[tid] for label, tid in tickets.items()}
        # the signed withdrawal went first, though it was queued last
        assert by_label["withdrawal"].block > queued_at
        withdrawn = consent_events(chain, "ConsentWithdrawn", expect["withdrawer"].address, queued_at + 1)
        given = [e for s in expect["subjects"] for e in consent_events(chain, "ConsentGiven", s.address, queued_at + 1)]
        position = [(e["blockNumber"], e["logIndex"]) for e in given]
        assert (withdrawn[0]["blockNumber"], withdrawn[0]["logIndex"]) < min(position)
        # the new service's indexer saw each grant once
        indexer = state.indexer
        assert indexer is not None
        indexer.sync()
        trail = indexer.user_trail(expect["users"][0], limit=1000)["items"]
        assert [e["event"] for e in trail].count("RoleGranted") == 2
    check_executed_once(chain, admin, second_admin, start_block, nonces, expect)

    # 3. and yet another start executes nothing again
    head = chain.client.w3.eth.block_number
    with service_state(settings, workers=True) as (state, _):
        time.sleep(1.0)
        assert state.queue.pending() == 0
        assert state.queue.counts() == {"mined": len(tickets)}
    assert chain.client.w3.eth.block_number == head
    check_executed_once(chain, admin, second_admin, start_block, nonces, expect)


def test_crash_between_sending_and_settling(
    e2e_settings: Settings, chain: Ledger, admin: LocalAccount, second_admin: LocalAccount, tmp_path: Path
) -> None:
    """A worker died after it sent some batches and before it recorded their outcome: rows are
    left 'submitting' with the transaction hash. One forward batch and one consent batch really
    went out; another forward batch was marked but its transaction never reached the node."""
    settings = settings_for(e2e_settings, tmp_path / "service")
    start_block = chain.client.w3.eth.block_number + 1  # events from here on
    nonces = {
        "admin": chain.relayer.chain_nonce(admin.address),
        "admin2": chain.relayer.chain_nonce(second_admin.address),
    }
    with service_state(settings, workers=False) as (state, client):
        tickets, expect = queue_mixed_requests(client, chain, admin, second_admin)
        queue, relayer = state.queue, state.ledger.relayer
        rows = queue._db.execute(
            "SELECT id, kind, signer, payload FROM relay_requests WHERE status='queued'"
        ).fetchall()
        sent_forwards = [r for r in rows if r[1] == "forward" and r[2] == second_admin.address]
        lost_forwards = [r for r in rows if r[1] == "forward" and r[2] == admin.address]
        consents = [r for r in rows if r[1] == "consent"]
        assert len(sent_forwards) == 2 and len(lost_forwards) == 3 and len(consents) == 5
        reqs = [ForwardRequest.from_json(json.loads(r[3])) for r in sent_forwards]
        forward_tx = relayer.send_batch(reqs)
        queue._mark_submitting([r[0] for r in sent_forwards], forward_tx)
        items = [SignedConsent.from_json(json.loads(r[3])) for r in consents]
        consent_tx = relayer.send_consents(items)
        queue._mark_submitting([r[0] for r in consents], consent_tx)
        queue._mark_submitting([r[0] for r in lost_forwards], "0x" + "ab" * 32)  # never sent
        relayer.client.wait(bytes.fromhex(forward_tx[2:]))
        relayer.client.wait(bytes.fromhex(consent_tx[2:]))
        assert queue.counts() == {"submitting": len(tickets)}
        # the crash: the process ends without settling anything

    with service_state(settings, workers=True) as (state, _):
        done = settle(state.queue, list(tickets.values()))
        assert {label: done[tid].status for label, tid in tickets.items()} == dict.fromkeys(tickets, "mined")
        # the sent batches were settled from their own transactions, not sent again
        assert {done[r[0]].tx_hash for r in sent_forwards} == {forward_tx}
        assert {done[r[0]].tx_hash for r in consents} == {consent_tx}
        # the batch that never landed was queued again and relayed once
        resent = {done[r[0]].tx_hash for r in lost_forwards}
        assert resent.isdisjoint({forward_tx, consent_tx, "0x" + "ab" * 32})
    check_executed_once(chain, admin, second_admin, start_block, nonces, expect)


def test_killed_service_process(
    e2e_settings: Settings, chain: Ledger, admin: LocalAccount, second_admin: LocalAccount, tmp_path: Path
) -> None:
    """The same with real processes: a service whose relayer would wait an hour before sending
    accepts the requests and is killed (SIGKILL, no shutdown); a new service on the same data dir
    relays every one of them exactly once."""
    from dataclasses import replace

    from .helpers import ServiceProcess

    settings = settings_for(e2e_settings, tmp_path / "service")
    start_block = chain.client.w3.eth.block_number + 1  # events from here on
    nonces = {
        "admin": chain.relayer.chain_nonce(admin.address),
        "admin2": chain.relayer.chain_nonce(second_admin.address),
    }
    first = ServiceProcess(replace(settings, batch_delay=3600.0)).start()
    try:
        client = ServiceClient(first.url)
        tickets, expect = queue_mixed_requests(client, chain, admin, second_admin)
        assert {client.get(f"/relay/{t}")["status"] for t in tickets.values()} == {"queued"}
        client.close()
    finally:
        assert first.process is not None
        first.process.kill()
        first.process.wait(10)
        first.process = None
    assert chain.relayer.chain_nonce(admin.address) == nonces["admin"]

    with ServiceProcess(settings) as second:
        client = ServiceClient(second.url)
        done = client.settle(list(tickets.values()), timeout=60)
        client.close()
    assert {label: done[tid]["status"] for label, tid in tickets.items()} == dict.fromkeys(tickets, "mined")
    check_executed_once(chain, admin, second_admin, start_block, nonces, expect)
