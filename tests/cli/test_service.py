"""The same steps with --service: `medledger serve` runs as a subprocess (the app's real lifespan:
relay queue worker and indexer; the ``service`` fixture) on the session's deployment, with a relayer
key of its own. The CLI asks it for typed data, signs locally, submits and waits for the relayed
outcome."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from .helpers import Cli, write_cohort


def _mined(body: dict[str, Any]) -> dict[str, Any]:
    assert body["status"] == "mined", body
    assert len(body["ticket"]) == 32 and body["block"] > 0
    return body


def test_scenario_through_the_service(cli: Cli, parties: dict[str, str], service: str, tmp_path: Path) -> None:
    s = ("--service", service)
    status = cli.json(*s, "status")
    assert status["status"] == "ready" and status["mode"] == "service"

    # roles: a new user, granted by the admin through the service
    user_address = cli.json("keys", "create", "svc-user")["address"]
    _mined(cli.json(*s, "--key", "admin", "roles", "grant", "user", "svc-user"))
    assert cli.json("roles", "show", "svc-user")["roles"] == ["user"]

    # the hospital registers a cohort through the service (the service pins, the relayer anchors)
    subjects = [parties["alice"], parties["bob"], parties["dan"]]
    subjects_file = tmp_path / "subjects.txt"
    subjects_file.write_text("\n".join(subjects) + "\n")
    folder = tmp_path / "cohort"
    write_cohort(folder, subjects, salt="service")
    registered = _mined(
        cli.json(
            *s,
            "--key",
            "hospital",
            "datasets",
            "register",
            str(folder),
            "--title",
            "Lipid cohort",
            "--description",
            "Synthetic lipid panels",
            "--classification",
            "clinical-routine-care",
            "--licence",
            "CC-BY-4.0",
            "--data-use",
            "HMB",
            "--subjects",
            str(subjects_file),
        )
    )
    root = registered["content_root"]
    shown = cli.json(*s, "datasets", "show", root)
    assert shown["record"]["holder"] == parties["hospital"] and shown["metadata"]["subject_count"] == 3

    # consent grant and withdraw, signed by the subject, relayed by the service
    _mined(cli.json(*s, "--key", "dan", "consent", "grant", "--dataset", root, "--purpose", "HMB"))
    assert cli.json(*s, "consent", "check", "dan", root, "--purpose", "HMB")["in_force"] is True

    # access request -> approval -> use, each signed here
    protocol = tmp_path / "protocol.txt"
    protocol.write_text("Lipid study protocol\n")
    requested = _mined(
        cli.json(*s, "--key", "svc-user", "access", "request", root, "--purpose", "HMB", "--protocol", str(protocol))
    )
    request_id = requested["request_id"]
    assert isinstance(request_id, int)
    assert cli.json("access", "show", str(request_id))["requester"] == user_address
    _mined(cli.json(*s, "--key", "committee", "access", "approve", str(request_id), "--conditions", "as agreed"))
    _mined(cli.json(*s, "--key", "svc-user", "use", "record", root, "--purpose", "HMB", "--request", str(request_id)))
    assert cli.json(*s, "datasets", "stats", root)["uses"] == 1

    # a use the approval does not cover is refused before it is queued: exit 3, the problem's hint kept
    refused = cli.json(
        *s, "--key", "svc-user", "use", "record", root, "--purpose", "POA", "--request", str(request_id), expect=3
    )
    assert refused["error"]["type"] == "use-refused"
    assert "PurposeNotApproved" in refused["error"]["message"]
    assert refused["error"]["hint"] == "record the use under the purpose the approval names"
    assert refused["error"]["problem"]["status"] == 403

    # withdrawal through the service; the check now fails (exit 1)
    _mined(cli.json(*s, "--key", "dan", "consent", "withdraw", "--dataset", root))
    assert cli.json(*s, "consent", "check", "dan", root, "--purpose", "HMB", expect=1)["in_force"] is False

    # reads from the service: lineage verification, PROV, the indexer's trails and consent history
    assert cli.json(*s, "verify", "lineage", root)["ok"] is True
    assert root in " ".join(cli.json(*s, "export", "prov", root)["entity"])
    deadline = time.monotonic() + 20
    while True:  # the service's indexer follows the chain in the background
        history = cli.json(*s, "consent", "list", "dan")
        if history and history[0]["status"] == "withdrawn":
            break
        assert time.monotonic() < deadline, history
        time.sleep(0.2)
    trail = cli.json(*s, "audit", "user-trail", "svc-user")
    assert {"AccessRequested", "UseRecorded"} <= {e["event"] for e in trail["items"]}

    # --no-wait returns the ticket at once; `relay status` follows it
    queued = cli.json(*s, "--no-wait", "--key", "regulator", "audit", "suspend-dataset", root, "--reason", "review")
    assert queued["status"] in ("queued", "submitting", "mined")
    deadline = time.monotonic() + 20
    while cli.json(*s, "relay", "status", queued["ticket"])["status"] != "mined":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    suspended = cli.json(
        *s, "--key", "svc-user", "use", "record", root, "--purpose", "HMB", "--request", str(request_id), expect=3
    )
    assert "DatasetNotUsable" in suspended["error"]["message"]
