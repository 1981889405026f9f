"""Exit codes and error messages: 2 for bad arguments, 3 when the command cannot run (a stopped
chain, an unreachable service, the contract refusing), never a traceback; and the service client's
mapping of problem details to the library's exceptions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account

from ledger.chain import typed_data
from ledger.client.http import ServiceClient, ServiceError, error_from_problem, problem_of
from ledger.core.errors import AccessDenied, InvalidInput, NodeUnavailable, UseRefused
from ledger.devstack.nodes import AnvilNode, free_port

from .helpers import Cli

ROOT = "0x" + "ab" * 32


def _no_traceback(*texts: str) -> None:
    for text in texts:
        assert "Traceback" not in text


def _bad_checksum(address: str) -> str:
    """The address with one letter's case flipped: a typo the EIP-55 checksum catches."""
    body = address[2:]
    i = next(i for i, c in enumerate(body) if c.isalpha())
    return "0x" + body[:i] + body[i].swapcase() + body[i + 1 :]


def test_bad_arguments_exit_2(cli: Cli, parties: dict[str, str]) -> None:
    bad = cli.run("--key", "admin", "roles", "grant", "holder", "0x1234", expect=2)
    assert "0x1234" in bad.output and "not an Ethereum address" in bad.output
    # a mistyped checksum is caught before anything is signed
    typo = _bad_checksum(parties["alice"])
    assert "checksum" in cli.run("consent", "check", typo, ROOT, expect=2).output
    # not a content root
    cli.run("datasets", "show", "0xnothex", expect=2)
    # neither an address nor a known alias
    unknown = cli.run("roles", "show", "mallory", expect=2)
    assert "neither an Ethereum address" in unknown.output
    # an unknown choice
    cli.run("--key", "admin", "roles", "grant", "superuser", "alice", expect=2)
    # a write without --key
    missing = cli.run("roles", "grant", "user", "alice", expect=2)
    assert "--key" in missing.output
    _no_traceback(bad.output, missing.output)


def test_bad_input_files_exit_2(cli: Cli, parties: dict[str, str], tmp_path: Path) -> None:
    subjects = tmp_path / "subjects.txt"
    subjects.write_text(f"{parties['alice']}\nnot-an-address\n")
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "a.csv").write_text("x\n1\n")
    common = ["--title", "T", "--description", "D", "--classification", "clinical-research", "--licence", "CC0-1.0"]
    result = cli.json(
        "--key",
        "hospital",
        "datasets",
        "register",
        str(folder),
        *common,
        "--data-use",
        "HMB",
        "--subjects",
        str(subjects),
        expect=2,
    )
    assert result["error"]["type"] == "invalid-input"
    assert "subjects.txt:2" in result["error"]["message"]
    # a folder that does not exist; an unknown data-use term; personal data in public metadata
    cli.run("--key", "hospital", "datasets", "register", str(tmp_path / "nope"), *common, "--data-use", "HMB", expect=2)
    cli.run("--key", "hospital", "datasets", "register", str(folder), *common, "--data-use", "XYZ", expect=2)
    leaky = cli.run(
        "--key",
        "hospital",
        "datasets",
        "register",
        str(folder),
        "--title",
        "Contact jane.doe@example.org",
        "--description",
        "D",
        "--classification",
        "clinical-research",
        "--licence",
        "CC0-1.0",
        "--data-use",
        "HMB",
        expect=2,
    )
    assert "personal data" in leaky.stderr


def test_stopped_chain_exit_3(cli: Cli, parties: dict[str, str], tmp_path: Path) -> None:
    node = AnvilNode(tmp_path / "anvil", free_port())
    node.start()
    url = node.url
    node.stop()
    env = {"MEDLEDGER_RPC_URL": url}
    result = cli.json("datasets", "show", ROOT, expect=3, env=env)
    assert result["error"]["type"] == "node-unavailable"
    assert url in result["error"]["message"]
    assert result["error"]["hint"]
    human = cli.run("--key", "hospital", "datasets", "stats", ROOT, expect=3, env=env)
    assert "Error:" in human.stderr and "Hint:" in human.stderr
    _no_traceback(human.stderr, human.stdout)
    status = cli.json("status", expect=3, env=env)
    assert status["status"] == "not-ready" and status["chain"]["ok"] is False
    # the same through the real console script
    spawned = cli.spawn("--json", "verify", "lineage", ROOT, env=env)
    assert spawned.returncode == 3
    assert json.loads(spawned.stdout)["error"]["type"] == "node-unavailable"
    _no_traceback(spawned.stderr)


def test_unreachable_service_exit_3(cli: Cli, parties: dict[str, str]) -> None:
    service = f"http://127.0.0.1:{free_port()}"
    result = cli.json("--service", service, "--key", "admin", "roles", "grant", "user", "alice", expect=3)
    assert result["error"]["type"] == "node-unavailable"
    assert "medledger serve" in result["error"]["hint"]
    # `relay status` needs a service
    cli.run("relay", "status", "0" * 32, expect=2)


def test_verification_of_unknown_dataset_exits_1(cli: Cli) -> None:
    result = cli.json("verify", "dataset", ROOT, expect=1)
    assert result["ok"] is False and result["failures"][0]["reason"] == "not-registered"


def test_help_documents_exit_codes(cli: Cli) -> None:
    text = cli.run("--help").stdout
    for line in ("0: ok", "1: verification failed", "2: usage error", "3: could not run"):
        assert line in text
    assert "own relayer" in text and "anvil" in text
    assert cli.run("--version").stdout.startswith("medledger ")
    # every group answers --help
    for group in ("keys", "nodes", "roles", "datasets", "consent", "access", "use", "audit", "verify", "export"):
        assert "Usage" in cli.run(group, "--help").stdout


# ------------------------------------------------------------------------- service client, offline


def _client(handler: Any) -> ServiceClient:
    return ServiceClient("http://service.test", transport=httpx.MockTransport(handler), poll_interval=0.001)


def test_problem_details_become_ledger_errors() -> None:
    problem = {
        "type": "urn:medledger:problem:access-denied",
        "title": "Access denied",
        "status": 403,
        "detail": "LedgerRoles: MissingRole(role=0x00, account=0x01)",
        "hint": "ask an admin to grant the role",
        "error": "MissingRole",
        "args": {"role": "0x00", "account": "0x01"},
    }
    client = _client(
        lambda request: httpx.Response(403, json=problem, headers={"content-type": "application/problem+json"})
    )
    with pytest.raises(AccessDenied) as caught:
        client.prepare("grantRole", "0x" + "11" * 20, {"role": "0x" + "00" * 32, "account": "0x" + "22" * 20})
    err = caught.value
    assert err.code == "access-denied" and err.name == "MissingRole"
    assert err.message == problem["detail"] and err.hint == problem["hint"]
    assert err.args_ == problem["args"]
    assert problem_of(err) == problem

    invalid = error_from_problem({"type": "urn:medledger:problem:invalid-request", "detail": "from: bad"}, 422)
    assert isinstance(invalid, InvalidInput) and invalid.code == "invalid-request"
    odd = error_from_problem({"type": "urn:medledger:problem:internal", "detail": "boom"}, 500)
    assert isinstance(odd, ServiceError) and odd.code == "internal"


def test_ticket_failure_and_plain_http_errors() -> None:
    failed = {
        "id": "a" * 32,
        "status": "failed",
        "kind": "forward",
        "signer": "0x" + "11" * 20,
        "nonce": "0",
        "error": {
            "type": "use-refused",
            "message": "UsageRegistry: NoApproval()",
            "hint": "request access",
            "error": "NoApproval",
        },
    }

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/relay/"):
            return httpx.Response(200, json=failed)
        return httpx.Response(502, text="<html>bad gateway</html>")

    client = _client(handler)
    with pytest.raises(UseRefused) as caught:
        client.wait_ticket("a" * 32)
    assert caught.value.name == "NoApproval" and caught.value.hint == "request access"
    with pytest.raises(ServiceError) as plain:
        client.health()
    assert plain.value.code == "http-502"

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(NodeUnavailable):
        _client(refuse).ready()


def test_write_signs_locally_and_waits() -> None:
    """prepare -> sign here -> post to the operation's resource -> poll: the key never leaves."""
    actor = Account.create()
    typed = typed_data.forward_request(
        chain_id=31337,
        forwarder="0x" + "33" * 20,
        sender=actor.address,
        to="0x" + "44" * 20,
        data=b"\x01\x02",
        nonce=0,
        deadline=2**40,
        gas=100_000,
    )
    seen: list[tuple[str, Any]] = []
    polls = iter(["queued", "submitting", "mined"])

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        seen.append((request.url.path, body))
        if request.url.path == "/relay/prepare":
            return httpx.Response(
                200,
                json={
                    "operation": "recordUse",
                    "typed_data": typed,
                    "request": {"from": actor.address, "to": "0x" + "44" * 20},
                },
            )
        if request.url.path == "/uses":
            return httpx.Response(202, json={"id": "b" * 32, "status": "queued"})
        status = next(polls)
        return httpx.Response(200, json={"id": "b" * 32, "status": status, "tx_hash": "0x" + "55" * 32, "block": 7})

    ticket = _client(handler).write(actor, "recordUse", {"dataset": ROOT})
    assert ticket["status"] == "mined" and ticket["block"] == 7
    paths = [p for p, _ in seen]
    assert paths[:2] == ["/relay/prepare", "/uses"] and paths.count(f"/relay/{'b' * 32}") == 3
    signed = seen[1][1]["request"]
    assert typed_data.recover(typed, bytes.fromhex(signed["signature"][2:])) == actor.address
    assert bytes(actor.key).hex() not in json.dumps([b for _, b in seen])


def test_up_with_external_nodes(cli: Cli) -> None:
    """With manage_nodes=false `up` only checks the deployment; `nodes` refuses and says why."""
    first = cli.json("deploy")
    up = cli.json("up")
    assert up["nodes"] == {} and up["contracts"] == first["contracts"]
    refused = cli.json("nodes", "status", expect=3)
    assert refused["error"]["type"] == "configuration"
    assert "MEDLEDGER_MANAGE_NODES" in refused["error"]["hint"]
