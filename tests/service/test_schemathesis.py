"""schemathesis over the service's OpenAPI schema, against the real app on real nodes: no request
a caller can send may produce a 5xx, and every response must match the schema the route declares.
schemathesis needs a newer hypothesis than brownie pins, so it runs from its own virtualenv
(.venv-schemathesis, installed by scripts/bootstrap.sh) as a CLI, once per session; each test
reads its own check from that run's report.

``MEDLEDGER_SCHEMATHESIS_EXAMPLES`` sets the examples per operation (default below)."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from api.app import create_app
from ledger.devstack.nodes import free_port

ROOT = Path(__file__).resolve().parents[2]
SCHEMATHESIS = ROOT / ".venv-schemathesis" / "bin" / "schemathesis"
# 200 examples per operation (fuzzing phase; the examples and coverage phases add their own cases)
EXAMPLES = os.environ.get("MEDLEDGER_SCHEMATHESIS_EXAMPLES", "200")
CHECKS = ("not_a_server_error", "response_schema_conformance", "content_type_conformance")
METHODS = ("get", "put", "post", "delete", "patch")


@pytest.fixture(scope="module")
def live_url(app_state: Any) -> Iterator[str]:
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(state=app_state), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.05)
    yield url
    server.should_exit = True
    thread.join(10)


@dataclass
class FuzzRun:
    returncode: int
    output: str
    #: check name -> "METHOD /path" of each operation it failed on, with schemathesis's message
    failures: dict[str, dict[str, str]]
    operations: int
    #: check name -> how many responses it judged (a report format change must not pass silently)
    checked: dict[str, int]
    #: "METHOD /path (phase)" -> status, for scenarios that ended in an error instead of a verdict
    errors: dict[str, str]


def _failures(events_file: Path) -> tuple[dict[str, dict[str, str]], int, dict[str, int], dict[str, str]]:
    """Failed checks per operation (and the number of operations run) from schemathesis's ndjson
    event stream: one ``ScenarioFinished`` event per operation and phase, with each case's checks."""
    failures: dict[str, dict[str, str]] = {name: {} for name in CHECKS}
    operations: set[str] = set()
    checked = dict.fromkeys(CHECKS, 0)
    errors: dict[str, str] = {}
    for line in events_file.read_text().splitlines():
        event = json.loads(line)
        finished = event.get("ScenarioFinished")
        if not finished:
            continue
        label = str(finished.get("recorder", {}).get("label", ""))
        operations.add(label)
        if finished.get("status") in ("error", "interrupted"):
            errors[f"{label} ({finished.get('phase')})"] = str(finished.get("status"))
        for case in (finished.get("recorder", {}).get("checks") or {}).values():
            for check in case:
                if check.get("name") in checked:
                    checked[check["name"]] += 1
                if check.get("status") not in ("success", "skip") and check.get("name") in failures:
                    details = {k: v for k, v in check.items() if k not in ("name", "status")}
                    failures[check["name"]].setdefault(label, json.dumps(details, default=str)[:500])
    return failures, len(operations - {""}), checked, errors


@pytest.fixture(scope="module")
def fuzz_run(live_url: str, tmp_path_factory: pytest.TempPathFactory) -> FuzzRun:
    assert SCHEMATHESIS.exists(), "run scripts/bootstrap.sh: it installs .venv-schemathesis"
    out = tmp_path_factory.mktemp("schemathesis")
    cmd = [
        str(SCHEMATHESIS),
        "run",
        f"{live_url}/openapi.json",
        "--checks",
        ",".join(CHECKS),
        "--max-examples",
        EXAMPLES,
        "--phases",
        "examples,coverage,fuzzing",
        "--workers",
        "1",  # CPython 3.11.7's ast module is not thread-safe ("recursion depth mismatch")
        "--seed",
        "20261123",
        "--request-timeout",
        "30",
        "--suppress-health-check",
        "all",
        "--continue-on-failure",  # every operation and check is reported, not only the first failure
        "--report",
        "junit,ndjson",
        "--report-dir",
        str(out),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=3600, cwd=out)
    output = proc.stdout[-20000:] + proc.stderr[-5000:]
    events = sorted(out.glob("ndjson-*.ndjson"))  # the file name carries the run's time
    assert len(events) == 1, output
    return FuzzRun(proc.returncode, output, *_failures(events[0]))


def test_openapi_documents_problem_responses(live_url: str) -> None:
    schema = httpx.get(live_url + "/openapi.json").json()
    op = schema["paths"]["/access-requests"]["post"]
    assert "application/problem+json" in op["responses"]["403"]["content"]
    assert "Problem" in schema["components"]["schemas"]


def test_the_run_covers_every_operation(live_url: str, fuzz_run: FuzzRun) -> None:
    schema = httpx.get(live_url + "/openapi.json").json()
    declared = sum(1 for item in schema["paths"].values() for method in item if method in METHODS)
    assert fuzz_run.operations == declared, fuzz_run.output
    assert fuzz_run.errors == {}, fuzz_run.output
    for check, responses in fuzz_run.checked.items():
        assert responses >= declared, (check, responses)  # every operation judged at least once


def test_no_request_yields_a_server_error(fuzz_run: FuzzRun) -> None:
    assert fuzz_run.failures["not_a_server_error"] == {}, fuzz_run.output


def test_responses_conform_to_the_declared_schema(fuzz_run: FuzzRun) -> None:
    bad = {**fuzz_run.failures["response_schema_conformance"], **fuzz_run.failures["content_type_conformance"]}
    assert bad == {}, json.dumps(bad, indent=1)


def test_every_operation_declares_its_response_schema(live_url: str) -> None:
    """A route without a response model documents its success as ``{}``, which conformance cannot
    check: each operation's success response must name a schema."""
    schema = httpx.get(live_url + "/openapi.json").json()
    undeclared = []
    for path, item in schema["paths"].items():
        for method, op in item.items():
            if method not in METHODS:
                continue
            for status, response in op["responses"].items():
                if not status.startswith("2") or status == "204":
                    continue
                media = response.get("content", {})
                if not media or any(not body.get("schema") for body in media.values()):
                    undeclared.append(f"{method.upper()} {path} {status}")
    assert undeclared == [], undeclared
