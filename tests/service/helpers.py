"""What an HTTP client of the service does, through the project's own client
(:class:`ledger.client.http.ServiceClient` over the test's TestClient): ask for typed data, sign it
locally, post it, and wait for the relayed request's outcome."""

from __future__ import annotations

from typing import Any

from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient

from ledger.client.http import ServiceClient


def service_client(client: TestClient) -> ServiceClient:
    """The project's client over the app the TestClient serves (the TestClient stays the test's)."""
    return ServiceClient(http=client, wait_timeout=30.0, poll_interval=0.02)


def wait_ticket(client: TestClient, ticket_id: str, timeout: float = 30.0) -> dict[str, Any]:
    """The ticket once mined or failed (a failed one is returned, not raised)."""
    return service_client(client).settle([ticket_id], timeout)[ticket_id]


def signed_request(client: TestClient, actor: LocalAccount, operation: str, args: dict[str, Any]) -> dict[str, Any]:
    service = service_client(client)
    return service.sign_prepared(service.prepare(operation, actor.address, args), actor)


def do(client: TestClient, path: str, actor: LocalAccount, operation: str, args: dict[str, Any]) -> dict[str, Any]:
    """Sign and submit one operation at ``path``; wait until mined; return the ticket."""
    r = client.post(path, json={"request": signed_request(client, actor, operation, args)})
    assert r.status_code == 202, r.text
    ticket = wait_ticket(client, r.json()["id"])
    assert ticket["status"] == "mined", ticket
    return ticket


def consent(client: TestClient, signer: LocalAccount, body: dict[str, Any]) -> dict[str, Any]:
    """Sign a consent message here and queue it; the settled ticket (mined or failed)."""
    service = service_client(client)
    queued = service.consent(signer, body, wait=False)
    return wait_ticket(client, str(queued["id"]))
