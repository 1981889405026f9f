"""What an HTTP client of the service does: ask for typed data, sign it locally, post it, and wait
for the relayed request's outcome."""

from __future__ import annotations

import time
from typing import Any

from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient

from ledger.chain import typed_data


def wait_ticket(client: TestClient, ticket_id: str, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.time() + timeout
    while time.time() < deadline:
        r = client.get(f"/relay/{ticket_id}")
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        if body["status"] in ("mined", "failed"):
            return body
        time.sleep(0.02)
    raise AssertionError(f"ticket {ticket_id} not settled in {timeout} s")


def signed_request(client: TestClient, actor: LocalAccount, operation: str, args: dict[str, Any]) -> dict[str, Any]:
    r = client.post("/relay/prepare", json={"operation": operation, "from": actor.address, "args": args})
    assert r.status_code == 200, r.text
    prepared = r.json()
    sig = typed_data.sign(prepared["typed_data"], actor.key)
    return {**prepared["request"], "signature": "0x" + sig.hex()}


def do(client: TestClient, path: str, actor: LocalAccount, operation: str, args: dict[str, Any]) -> dict[str, Any]:
    """Sign and submit one operation at ``path``; wait until mined; return the ticket."""
    r = client.post(path, json={"request": signed_request(client, actor, operation, args)})
    assert r.status_code == 202, r.text
    ticket = wait_ticket(client, r.json()["id"])
    assert ticket["status"] == "mined", ticket
    return ticket


def consent(client: TestClient, signer: LocalAccount, body: dict[str, Any]) -> dict[str, Any]:
    r = client.post("/consents/prepare", json=body)
    assert r.status_code == 200, r.text
    prepared = r.json()
    sig = typed_data.sign(prepared["typed_data"], signer.key)
    r = client.post(
        "/consents", json={"kind": body["kind"], "message": prepared["message"], "signature": "0x" + sig.hex()}
    )
    assert r.status_code == 202, r.text
    return wait_ticket(client, r.json()["id"])
