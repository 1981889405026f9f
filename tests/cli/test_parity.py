"""Parity of the front ends: one scenario (a holder registers a dataset, a subject grants consent, a
researcher requests access, a reviewer approves, a use is recorded, the subject withdraws) run three
times, through the CLI's direct backend, the CLI's service backend (``--service``, a real service
process) and the HTTP API (the project's client, keys from the same keystore).

Two checks:

- the same read of the same thing gives the same answer through every front end (dataset record
  and metadata, consent list, check and history, FHIR, access request, lineage graph, verification
  reports), for each of the three runs;
- the three runs end in the same state: their answers are equal once what must differ between runs
  (the dataset, the subject, ids, hashes, blocks and times) is replaced by what it stands for.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import pytest
from eth_account.signers.local import LocalAccount

from ledger.chain.keystore import Keystore
from ledger.cli._backend import with_purpose_terms
from ledger.client.http import ServiceClient
from ledger.content.files import hash_folder
from ledger.content.merkle import subject_tree
from ledger.content.metadata import DatasetMetadata, Licence
from ledger.core.classification import Classification, Tier
from ledger.core.records import ConsentScope, ScopeKind, hex32
from ledger.rules import datause
from ledger.rules.consent import consent_id

from .helpers import PASSWORD, Cli, write_cohort

FRONTS = ("direct", "service", "http")
TITLE = "Parity cohort"
DESCRIPTION = "Synthetic lipid panels for the parity check"
YEAR_DAYS = 365


@dataclass
class Run:
    """What one front end's run created."""

    front: str
    subject: str
    dataset: str = ""
    consent_id: str = ""
    request_id: int = 0
    writes: dict[str, dict[str, Any]] = field(default_factory=dict)


class Front(Protocol):
    """One way into the ledger: the scenario's writes and the reads compared."""

    name: str

    def register(self, folder: Path, subjects: list[str]) -> dict[str, Any]: ...
    def grant(self, subject_alias: str, root: str) -> dict[str, Any]: ...
    def request(self, root: str, protocol: Path) -> dict[str, Any]: ...
    def approve(self, request_id: int) -> dict[str, Any]: ...
    def use(self, root: str, request_id: int) -> dict[str, Any]: ...
    def withdraw(self, subject_alias: str, root: str) -> dict[str, Any]: ...
    def reads(self, run: Run) -> dict[str, Any]: ...


class CliFront:
    """The CLI, directly against the chain or (``service_url``) through the service."""

    def __init__(self, cli: Cli, service_url: str | None) -> None:
        self.cli = cli
        self.name = "service" if service_url else "direct"
        self.prefix = ("--service", service_url) if service_url else ()

    def _json(self, *args: str, expect: int = 0) -> Any:
        return self.cli.json(*self.prefix, *args, expect=expect)

    def register(self, folder: Path, subjects: list[str]) -> dict[str, Any]:
        listed = folder.parent / f"{folder.name}-subjects.txt"
        listed.write_text("\n".join(subjects) + "\n")
        args = ["--key", "hospital", "datasets", "register", str(folder), "--title", TITLE]
        args += ["--description", DESCRIPTION, "--classification", "clinical-research", "--tier", "controlled"]
        args += ["--licence", "CC-BY-4.0", "--data-use", "HMB", "--subjects", str(listed)]
        return dict(self._json(*args))

    def grant(self, subject_alias: str, root: str) -> dict[str, Any]:
        args = ("--key", subject_alias, "consent", "grant", "--dataset", root, "--purpose", "HMB")
        return dict(self._json(*args, "--expiry-days", str(YEAR_DAYS)))

    def request(self, root: str, protocol: Path) -> dict[str, Any]:
        args = ("--key", "researcher", "access", "request", root, "--purpose", "HMB", "--protocol", str(protocol))
        return dict(self._json(*args))

    def approve(self, request_id: int) -> dict[str, Any]:
        args = ("--key", "committee", "access", "approve", str(request_id), "--conditions", "as agreed")
        return dict(self._json(*args, "--expiry-days", str(YEAR_DAYS)))

    def use(self, root: str, request_id: int) -> dict[str, Any]:
        args = ("--key", "researcher", "use", "record", root, "--purpose", "HMB", "--request", str(request_id))
        return dict(self._json(*args, "--result-digest", "0x" + "ab" * 32))

    def withdraw(self, subject_alias: str, root: str) -> dict[str, Any]:
        return dict(self._json("--key", subject_alias, "consent", "withdraw", "--dataset", root))

    def reads(self, run: Run) -> dict[str, Any]:
        report = self._json("verify", "lineage", run.dataset)
        return {
            "dataset": self._json("datasets", "show", run.dataset),
            "consents": self._json("consent", "list", run.subject),
            "check": self._json("consent", "check", run.subject, run.dataset, "--purpose", "HMB", expect=1),
            "fhir": self._json("consent", "fhir", "--subject", run.subject, "--dataset", run.dataset),
            "access": self._json("access", "show", str(run.request_id)),
            "lineage": graph_of(report),
            "verify_dataset": self._json("verify", "dataset", run.dataset),
            "verify_lineage": report,
            "stats": self._json("datasets", "stats", run.dataset),
        }


class HttpFront:
    """The HTTP API through the project's client; keys from the CLI's keystore, signed here."""

    name = "http"

    def __init__(self, client: ServiceClient, keys: Callable[[str], LocalAccount]) -> None:
        self.client = client
        self.keys = keys

    def register(self, folder: Path, subjects: list[str]) -> dict[str, Any]:
        holder = self.keys("hospital")
        entries = hash_folder(folder)
        metadata = DatasetMetadata(
            title={"en": TITLE},
            description={"en": DESCRIPTION},
            classification=Classification.parse("clinical-research"),
            tier=Tier.parse("controlled"),
            licence=Licence(spdx="CC-BY-4.0"),
            data_use=("DUO:0000006",),
            files=tuple(entries),
            subject_count=len(subjects),
            holder=holder.address,
            created=datetime.now(UTC),
        )
        answer = self.client.register_dataset(
            holder, metadata.model_dump(mode="json", exclude_none=True), subject_root=subject_tree(subjects).root_hex
        )
        return {"content_root": answer["content_root"], **answer["ticket"]}

    def _consent(self, subject_alias: str, kind: str, root: str, **terms: Any) -> dict[str, Any]:
        subject = self.keys(subject_alias)
        body = {"kind": kind, "subject": subject.address, "scope_kind": "dataset", "scope": root, **terms}
        return self.client.consent(subject, body)

    def grant(self, subject_alias: str, root: str) -> dict[str, Any]:
        expiry = self.chain_now() + YEAR_DAYS * 86400
        return self._consent(subject_alias, "Grant", root, purposes=["HMB"], expiry=expiry)

    def request(self, root: str, protocol: Path) -> dict[str, Any]:
        purpose = datause.Purpose.of("HMB", ())
        args = {
            "dataset": root,
            "purpose": purpose.mask,
            "diseaseCode": purpose.disease,
            "protocolDigest": "0x" + hashlib.sha256(protocol.read_bytes()).hexdigest(),
        }
        ticket = self.client.write(self.keys("researcher"), "requestAccess", args)
        return {**ticket, "request_id": ticket["result"]["request_id"]}

    def approve(self, request_id: int) -> dict[str, Any]:
        args = {
            "requestId": request_id,
            "conditionsDigest": "0x" + hashlib.sha256(b"as agreed").hexdigest(),
            "expiry": self.chain_now() + YEAR_DAYS * 86400,
        }
        return self.client.write(self.keys("committee"), "approveAccess", args)

    def use(self, root: str, request_id: int) -> dict[str, Any]:
        purpose = datause.Purpose.of("HMB", ())
        args = {
            "dataset": root,
            "requestId": request_id,
            "purpose": purpose.mask,
            "diseaseCode": purpose.disease,
            "resultDigest": "0x" + "ab" * 32,
        }
        return self.client.write(self.keys("researcher"), "recordUse", args)

    def withdraw(self, subject_alias: str, root: str) -> dict[str, Any]:
        return self._consent(subject_alias, "Withdraw", root)

    def chain_now(self) -> int:
        return self.client.chain_time() or int(time.time())

    def reads(self, run: Run) -> dict[str, Any]:
        c = self.client
        check = c.consent_check(run.subject, run.dataset, "HMB")
        return {
            "dataset": c.dataset(run.dataset),
            "consents": c.consents(run.subject),
            "check": check,
            "fhir": c.consent_fhir(run.consent_id),
            "access": with_purpose_terms(c.access_request(run.request_id)),
            "lineage": c.lineage(run.dataset),
            "verify_dataset": c.verify_dataset(run.dataset),
            "verify_lineage": c.lineage_verification(run.dataset),
            "stats": c.stats(run.dataset),
        }


def without_timings(value: Any) -> Any:
    """``value`` without the time a report took to compute (``cost.seconds``): a measurement of the
    call, not an answer."""
    if isinstance(value, Mapping):
        out = {k: without_timings(v) for k, v in value.items()}
        if isinstance(out.get("cost"), dict):
            out["cost"] = {k: v for k, v in out["cost"].items() if k != "seconds"}
        return out
    if isinstance(value, list):
        return [without_timings(v) for v in value]
    return value


def graph_of(report: Mapping[str, Any]) -> dict[str, Any]:
    """The lineage graph (GET /lineage/{root}) a verification report describes."""
    keep = ("content_root", "status", "holder", "parents")
    return {
        "root": report["root"],
        "nodes": [{k: n[k] for k in keep} for n in report["nodes"]],
        "edges": report["edges"],
    }


# ---------------------------------------------------------------------------------------------
# comparing runs: what may differ between them stands for its role


#: fields whose values differ by run and by nothing else (when they are present they are compared
#: as present: same keys, same nesting)
VOLATILE_KEYS = frozenset(
    {
        "tx_hash",
        "transaction_hash",
        "block",
        "block_number",
        "block_timestamp",
        "timestamp",
        "updated_block",
        "requested_block",
        "decided_block",
        "registered_block",
        "registered_at",
        "created",
        "date",
        "start",
        "expiry",
        "end",
        "ticket",
        "id",
        "nonce",
        "lastUpdated",
        "metadata_cid",
        "metadata_digest",
        "cid",
        "sha256",
        "log_index",
        "request_id",
        "requestId",
        "seq",
    }
)


def volatile(key: str) -> bool:
    return key in VOLATILE_KEYS or key.endswith(("_block", "_timestamp", "_hash", "_at"))


def normalised(value: Any, names: Mapping[str, str]) -> Any:
    """``value`` with each run-specific string replaced by its role (``names``, lower-case keys)
    and the volatile fields masked."""
    if isinstance(value, Mapping):
        return {str(k): ("<volatile>" if volatile(str(k)) else normalised(v, names)) for k, v in value.items()}
    if isinstance(value, list):
        return [normalised(v, names) for v in value]
    if isinstance(value, str):
        text = value
        for raw, role in names.items():
            if raw and raw in text.lower():
                low = text.lower()
                at = low.index(raw)
                while at >= 0:
                    text = text[:at] + role + text[at + len(raw) :]
                    low = text.lower()
                    at = low.find(raw)
        return text
    return value


def differences(a: Any, b: Any, path: str = "") -> list[str]:
    """Where two JSON values differ (paths), for a readable failure."""
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        out: list[str] = []
        for key in sorted(set(a) | set(b), key=str):
            if key not in a or key not in b:
                out.append(f"{path}.{key}: only in {'second' if key not in a else 'first'}")
            else:
                out += differences(a[key], b[key], f"{path}.{key}")
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in differences(x, y, f"{path}[{i}]")]
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]


def roles_of(run: Run) -> dict[str, str]:
    names = {
        run.dataset.lower(): "<dataset>",
        run.dataset.lower()[2:]: "<dataset-hex>",
        run.subject.lower(): "<subject>",
        run.subject.lower()[2:]: "<subject-hex>",
        run.consent_id.lower(): "<consent>",
        run.consent_id.lower()[2:]: "<consent-hex>",
        subject_tree([run.subject]).root_hex.lower(): "<subject-root>",
    }
    return dict(sorted(names.items(), key=lambda kv: -len(kv[0])))


# ---------------------------------------------------------------------------------------------
# the test


@pytest.fixture(scope="module")
def http_front(cli: Cli, service: str) -> Any:
    store = Keystore(Path(cli.env["MEDLEDGER_KEYSTORE"]))
    cache: dict[str, LocalAccount] = {}

    def key(alias: str) -> LocalAccount:
        if alias not in cache:
            cache[alias] = store.load(store.resolve(alias).alias, PASSWORD)
        return cache[alias]

    with ServiceClient(service, wait_timeout=60.0) as client:
        yield HttpFront(client, key)


def run_scenario(front: Front, cli: Cli, workdir: Path) -> Run:
    alias = f"parity-{front.name}"
    subject = cli.json("keys", "create", alias)["address"]
    run = Run(front=front.name, subject=subject)
    folder = workdir / f"cohort-{front.name}"
    # files of the same sizes in every run (the salt makes the contents, hence the roots, differ)
    write_cohort(folder, [subject], salt=f"parity-{FRONTS.index(front.name)}")
    run.writes["register"] = front.register(folder, [subject])
    run.dataset = run.writes["register"]["content_root"]
    scope = ConsentScope(ScopeKind.DATASET, bytes.fromhex(run.dataset[2:]))
    run.consent_id = hex32(consent_id(subject, scope.kind, scope.value, None))
    run.writes["grant"] = front.grant(alias, run.dataset)
    protocol = workdir / f"protocol-{front.name}.txt"
    protocol.write_text("Lipid study protocol\n")
    run.writes["request"] = front.request(run.dataset, protocol)
    run.request_id = int(run.writes["request"]["request_id"])
    run.writes["approve"] = front.approve(run.request_id)
    run.writes["use"] = front.use(run.dataset, run.request_id)
    run.writes["withdraw"] = front.withdraw(alias, run.dataset)
    for answer in run.writes.values():
        assert answer["status"] == "mined", (front.name, answer)
    return run


def settled_reads(fronts: Mapping[str, Front], run: Run, timeout: float = 30.0) -> dict[str, dict[str, Any]]:
    """Every front end's reads of ``run``, once they agree or the time is up (the service's indexer
    follows the chain in the background; the direct CLI syncs its own index per command)."""
    deadline = time.monotonic() + timeout
    while True:
        reads = {name: without_timings(front.reads(run)) for name, front in fronts.items()}
        first = reads["direct"]
        if all(r == first for r in reads.values()) or time.monotonic() > deadline:
            return reads
        time.sleep(0.5)


def test_one_scenario_three_front_ends(
    cli: Cli, parties: dict[str, str], roles_granted: None, service: str, http_front: HttpFront, tmp_path: Path
) -> None:
    fronts: dict[str, Front] = {
        "direct": CliFront(cli, None),
        "service": CliFront(cli, service),
        "http": http_front,
    }
    runs = {name: run_scenario(front, cli, tmp_path) for name, front in fronts.items()}

    # the same reads through every front end: equal answers, for each run's objects
    per_run: dict[str, dict[str, Any]] = {}
    for name, run in runs.items():
        reads = settled_reads(fronts, run)
        for other in ("service", "http"):
            for what in reads["direct"]:
                gap = differences(reads[other][what], reads["direct"][what])
                assert reads[other][what] == reads["direct"][what], (name, other, what, gap)
        per_run[name] = reads["direct"]
        # and they say what the scenario did
        answer = reads["direct"]
        assert answer["dataset"]["record"]["holder"] == parties["hospital"]
        assert answer["check"]["in_force"] is False
        assert answer["access"]["status"] == "approved" and answer["access"]["requester"] == parties["researcher"]
        assert answer["stats"]["uses"] == 1
        assert answer["verify_dataset"]["ok"] is True and answer["verify_lineage"]["ok"] is True
        assert answer["fhir"]["resourceType"] == "Consent" and answer["fhir"]["status"] == "inactive"
        assert answer["fhir"].get("date") and answer["fhir"].get("period", {}).get("start")
        history = answer["consents"]["consents"] if isinstance(answer["consents"], dict) else answer["consents"]
        assert [c["status"] for c in history] == ["withdrawn"]

    # the three runs end alike: equal once run-specific values stand for their role
    shapes = {name: normalised(per_run[name], roles_of(run)) for name, run in runs.items()}
    for name in ("service", "http"):
        for what in shapes["direct"]:
            gap = differences(shapes[name][what], shapes["direct"][what])
            assert shapes[name][what] == shapes["direct"][what], (name, what, gap)
    writes = {name: normalised(run.writes, roles_of(run)) for name, run in runs.items()}
    for name in ("service", "http"):
        for step in ("grant", "approve", "use", "withdraw"):
            assert writes[name][step]["status"] == writes["direct"][step]["status"] == "mined"
        assert writes[name]["register"]["content_root"] == "<dataset>"
