"""The service end to end over HTTP with real anvil and js-ipfs: every write signed by its actor."""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime
from typing import Any

from eth_account import Account
from fastapi.testclient import TestClient

from api.state import AppState
from ledger.chain import typed_data
from ledger.services.ledger import role_id

from .helpers import consent, do, wait_ticket


def _metadata(
    holder: str,
    content: bytes,
    parents: list[str] | None = None,
    activity: dict[str, Any] | None = None,
    tier: str = "controlled",
) -> dict[str, Any]:
    now = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    md: dict[str, Any] = {
        "title": {"en": "Synthetic cohort", "zh-CN": "合成队列"},
        "description": {"en": "Synthetic records for testing"},
        "classification": "0x0101",
        "tier": tier,
        "licence": {"spdx": "CC-BY-4.0"},
        "data_use": ["DUO:0000006"],
        "files": [{"path": "records.csv", "size": len(content), "sha256": hashlib.sha256(content).hexdigest()}],
        "holder": holder,
        "created": now,
    }
    if parents:
        md["parents"] = parents
        md["activity"] = activity
    return md


def _register(client: TestClient, holder: Any, md: dict[str, Any]) -> str:
    r = client.post("/datasets/prepare", json={"metadata": md})
    assert r.status_code == 200, r.text
    prep = r.json()
    sig = typed_data.sign(prep["typed_data"], holder.key)
    r = client.post("/datasets", json={"metadata": md, "request": {**prep["request"], "signature": "0x" + sig.hex()}})
    assert r.status_code == 202, r.text
    ticket = wait_ticket(client, r.json()["ticket"]["id"])
    assert ticket["status"] == "mined", ticket
    return str(prep["content_root"])


def test_health_and_ready(client: TestClient, app_state: AppState) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    r = client.get("/ready")
    chain = r.json()["chain"]
    assert chain["ok"] is True
    assert r.json()["ipfs"]["ok"] is True
    # the latest block's timestamp: the chain's time, which the CLI uses with --service
    block = app_state.ledger.client.w3.eth.get_block(chain["block"])
    assert chain["timestamp"] == block["timestamp"]
    documented = client.get("/openapi.json").json()["components"]["schemas"]["ChainReadiness"]["properties"]
    assert "timestamp" in documented


def test_register_consent_access_use(client: TestClient, admin: Any) -> None:
    holder, reviewer, user, subject = (Account.create() for _ in range(4))
    for role, acct in (("holder", holder), ("reviewer", reviewer), ("user", user)):
        do(client, "/roles", admin, "grantRole", {"role": _role(role), "account": acct.address})

    content = f"subject,value\n{subject.address},1\n{time.time()}".encode()
    root = _register(client, holder, _metadata(holder.address, content))
    got = client.get(f"/datasets/{root}").json()
    assert got["record"]["holder"] == holder.address
    assert got["metadata"]["title"]["zh-CN"] == "合成队列"

    # registering the same content again is refused and names the existing record
    md = _metadata(holder.address, content)
    r = client.post("/datasets/prepare", json={"metadata": md})
    assert r.status_code == 409, r.text
    assert r.json()["error"] == "DatasetAlreadyRegistered"
    assert r.headers["content-type"].startswith("application/problem+json")

    # consent, holder-wide, for health research
    t = consent(
        client,
        subject,
        {
            "kind": "Grant",
            "subject": subject.address,
            "scope_kind": "holder",
            "scope": holder.address,
            "purposes": ["HMB"],
            "expiry": int(time.time()) + 86400,
        },
    )
    assert t["status"] == "mined", t
    check = client.get("/consents/check", params={"subject": subject.address, "dataset": root, "category": "HMB"})
    assert check.json()["in_force"] is True
    cov = client.post("/consents/coverage", json={"dataset": root, "subjects": [subject.address, user.address]})
    assert cov.status_code == 200, cov.text
    assert cov.json()["covered"] == [subject.address]

    # access request -> approval -> use
    req = do(
        client,
        "/access-requests",
        user,
        "requestAccess",
        {"dataset": root, "purpose": 4, "diseaseCode": 0, "protocolDigest": "0x" + "11" * 32},
    )
    request_id = req["result"]["request_id"]
    got = client.get(f"/access-requests/{request_id}").json()
    assert got["status"] == "pending" and got["requester"] == user.address
    assert client.get(f"/accounts/{user.address}").json() == {
        "address": user.address,
        "roles": ["user"],
        "suspended": False,
    }
    do(
        client,
        "/access-requests/decisions",
        reviewer,
        "approveAccess",
        {"requestId": request_id, "conditionsDigest": "0x" + "22" * 32, "expiry": int(time.time()) + 3600},
    )
    do(
        client,
        "/uses",
        user,
        "recordUse",
        {"dataset": root, "requestId": request_id, "purpose": 4, "diseaseCode": 0, "resultDigest": "0x" + "33" * 32},
    )
    assert client.get(f"/datasets/{root}/stats").json()["uses"] == 1

    # a use for a purpose the approval does not cover is refused before it is queued
    r = client.post(
        "/relay/prepare",
        json={
            "operation": "recordUse",
            "from": user.address,
            "args": {
                "dataset": root,
                "requestId": request_id,
                "purpose": 16,
                "diseaseCode": 0,
                "resultDigest": "0x" + "33" * 32,
            },
        },
    )
    assert r.status_code == 403, r.text
    assert r.json()["error"] == "PurposeNotApproved"


def _role(name: str) -> str:
    return "0x" + role_id(name).hex()
