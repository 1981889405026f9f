"""The service's FHIR export of a consent is complete: its dates are the chain's block times."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from eth_account import Account
from fastapi.testclient import TestClient

from ledger.core.records import ConsentScope

from .helpers import consent


def _fhir(client: TestClient, consent_id: str, timeout: float = 30.0) -> dict[str, Any]:
    """The FHIR resource, once the indexer has seen the consent."""
    deadline = time.time() + timeout
    while True:
        r = client.get(f"/consents/{consent_id}/fhir")
        if r.status_code == 200:
            body: dict[str, Any] = r.json()
            return body
        assert r.status_code == 404 and time.time() < deadline, r.text
        time.sleep(0.05)


def _block_time(app_state: Any, block: int) -> datetime:
    stamp = int(app_state.ledger.client.w3.eth.get_block(block)["timestamp"])
    return datetime.fromtimestamp(stamp, UTC)


def test_fhir_date_and_period_start_are_the_grant_block_time(client: TestClient, app_state: Any) -> None:
    holder, subject = Account.create(), Account.create()
    expiry = int(time.time()) + 86400
    grant = consent(
        client,
        subject,
        {
            "kind": "Grant",
            "subject": subject.address,
            "scope_kind": "holder",
            "scope": holder.address,
            "purposes": ["HMB"],
            "expiry": expiry,
        },
    )
    assert grant["status"] == "mined", grant
    consent_id = "0x" + app_state.ledger.consent_id(subject.address, ConsentScope.holder(holder.address)).hex()

    fhir = _fhir(client, consent_id)
    given = _block_time(app_state, int(grant["block"]))
    assert fhir["resourceType"] == "Consent" and fhir["status"] == "active"
    assert fhir["date"] == given.date().isoformat()
    assert fhir["period"]["start"] == given.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert fhir["period"]["end"] == datetime.fromtimestamp(expiry, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
