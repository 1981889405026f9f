"""The demo scenario, run against the service over HTTP as its clients would.

Every write is prepared by the service (EIP-712 typed data), signed here with the acting party's
own key and posted back; the service relays it. No party's key is ever sent to the service.

The story, on synthetic data (see ``scripts/demo_data.py``):

 1. the platform admin grants roles: a hospital (holder), a review committee (reviewer), a
    researcher (user) and a regulator (auditor);
 2. the hospital registers a cohort of a few hundred synthetic records and subjects (controlled
    tier; only the Merkle root of the subjects goes on chain);
 3. subjects consent for different DUO purposes, most holder-wide, some for this dataset only, one
    (a minor) through a guardian the subject appointed;
 4. the hospital computes, at block N, which subjects' consent covers "health/medical research,
    ethics approved" and registers that subset as a consent-filtered dataset derived from the cohort;
 5. the researcher requests access to the filtered dataset;  6. the committee approves;
 7. the researcher records a use and  8. registers a de-identified aggregate derived from it;
 9. one subject withdraws (holder-wide) and the researcher records another use afterwards;
10. the withdrawal-impact report names the datasets, approvals and uses affected;
11. the regulator verifies the lineage of the aggregate and 12. exports it as W3C PROV-JSON;
13. the regulator suspends the filtered dataset and 14. a later use is refused (problem details).

Running it again is safe: keys, data and content roots are deterministic, steps already done are
found on chain (or in ``<work dir>/progress.json``) and skipped; when everything is in place the
demo only prints the summary.

    python scripts/demo.py [--url http://127.0.0.1:8000] [--subjects 300] [--work-dir DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import rfc8785
from eth_account.signers.local import LocalAccount

try:
    import demo_data
except ImportError:  # pragma: no cover - imported as scripts.demo
    from scripts import demo_data  # type: ignore[no-redef]

from ledger.chain import typed_data
from ledger.content.files import hash_folder
from ledger.content.merkle import content_root, subject_tree
from ledger.rules import datause

Log = Callable[[str], None]

#: what the researcher does: health/medical research with ethics approval (DUO HMB; the IRB modifier
#: of some consents needs the ethics-approved attribute)
RESEARCH_CATEGORY = "HMB"
RESEARCH_ATTRIBUTES = ("ethics-approved",)
RESEARCH_PURPOSE = datause.Purpose.of(RESEARCH_CATEGORY, RESEARCH_ATTRIBUTES)
YEAR = 365 * 86400
PROGRESS_VERSION = 1


def _role_id(name: str) -> str:
    from eth_utils.crypto import keccak

    return "0x" + keccak(text=name).hex()


ROLE_IDS = {
    "holder": _role_id("HOLDER_ROLE"),
    "reviewer": _role_id("REVIEWER_ROLE"),
    "user": _role_id("USER_ROLE"),
    "auditor": _role_id("AUDITOR_ROLE"),
}


class DemoError(Exception):
    """A step failed; the message says which and why."""


class ServiceProblem(DemoError):
    """The service answered with an error (RFC 9457 problem details)."""

    def __init__(self, method: str, path: str, status: int, body: Any) -> None:
        self.status = status
        self.body = body if isinstance(body, dict) else {"detail": str(body)}
        detail = self.body.get("detail", "")
        extra = f" ({self.body['error']})" if self.body.get("error") else ""
        hint = f"; hint: {self.body['hint']}" if self.body.get("hint") else ""
        super().__init__(f"{method} {path} -> {status}{extra}: {detail}{hint}")

    @property
    def error(self) -> str | None:
        value = self.body.get("error")
        return str(value) if value is not None else None


def _now_iso() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _sha256_json(doc: Any) -> str:
    return "0x" + hashlib.sha256(rfc8785.dumps(doc)).hexdigest()


def _short(value: str, keep: int = 10) -> str:
    return value if len(value) <= 2 * keep + 2 else f"{value[: keep + 2]}…{value[-keep:]}"


# ---------------------------------------------------------------------------------------------
# the HTTP client: prepare, sign locally, submit, wait
# ---------------------------------------------------------------------------------------------


class Service:
    """A thin client of the service's HTTP API that signs locally."""

    def __init__(self, url: str, *, timeout: float = 60.0, ticket_timeout: float = 120.0) -> None:
        self.url = url.rstrip("/")
        self.http = httpx.Client(base_url=self.url, timeout=timeout)
        self.ticket_timeout = ticket_timeout

    def close(self) -> None:
        self.http.close()

    # -- plain requests --------------------------------------------------------------------------

    def request(self, method: str, path: str, *, ok: Iterable[int] = (200,), **kwargs: Any) -> Any:
        try:
            r = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise DemoError(f"{method} {path}: the service at {self.url} did not answer ({exc})") from exc
        if r.status_code not in tuple(ok):
            try:
                body = r.json()
            except ValueError:
                body = r.text
            raise ServiceProblem(method, path, r.status_code, body)
        return r.json() if r.content else None

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, body: Any, *, ok: Iterable[int] = (200, 202)) -> Any:
        return self.request("POST", path, json=body, ok=ok)

    def exists(self, path: str) -> bool:
        try:
            self.get(path)
        except ServiceProblem as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def wait_ready(self, timeout: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                r = self.http.get("/ready")
                if r.status_code == 200:
                    body: dict[str, Any] = r.json()
                    return body
                last = DemoError(f"/ready answered {r.status_code}: {r.text[:300]}")
            except httpx.HTTPError as exc:
                last = exc
            time.sleep(0.3)
        raise DemoError(f"the service at {self.url} is not ready after {timeout:g} s: {last}")

    def head_block(self) -> int:
        return int(self.get("/ready", ok=(200, 503))["chain"]["block"])

    # -- relayed writes ----------------------------------------------------------------------------

    def signed_forward(self, actor: LocalAccount, operation: str, args: Mapping[str, Any]) -> dict[str, Any]:
        prepared = self.post("/relay/prepare", {"operation": operation, "from": actor.address, "args": dict(args)})
        signature = typed_data.sign(prepared["typed_data"], actor.key)
        return {**prepared["request"], "signature": "0x" + signature.hex()}

    def submit(self, path: str, actor: LocalAccount, operation: str, args: Mapping[str, Any]) -> str:
        """Prepare, sign and queue one operation; returns the ticket id. A nonce the service no
        longer expects (another request of the same signer settled meanwhile) is fetched again and
        the request signed again, as the problem's hint says."""
        for attempt in range(20):
            try:
                ticket = self.post(path, {"request": self.signed_forward(actor, operation, args)})
                return str(ticket["id"])
            except ServiceProblem as exc:
                if exc.status != 422 or "nonce" not in str(exc.body.get("detail", "")) or attempt == 19:
                    raise
                time.sleep(0.1)
        raise AssertionError("unreachable")

    def do(self, path: str, actor: LocalAccount, operation: str, args: Mapping[str, Any]) -> dict[str, Any]:
        """Prepare, sign, queue and wait until mined."""
        return self.mined(self.submit(path, actor, operation, args), f"{operation} by {actor.address}")

    def consent(self, signer: LocalAccount, body: Mapping[str, Any]) -> str:
        """Prepare a consent typed message, sign it (subject or delegate) and queue it."""
        prepared = self.post("/consents/prepare", dict(body))
        signature = typed_data.sign(prepared["typed_data"], signer.key)
        ticket = self.post(
            "/consents",
            {"kind": body["kind"], "message": prepared["message"], "signature": "0x" + signature.hex()},
        )
        return str(ticket["id"])

    def register_dataset(
        self, holder: LocalAccount, metadata: Mapping[str, Any], subject_root: str | None = None
    ) -> tuple[str, str, str]:
        """Register a dataset: returns (content root, metadata CID, ticket id)."""
        body: dict[str, Any] = {"metadata": dict(metadata)}
        if subject_root is not None:
            body["subject_root"] = subject_root
        prepared = self.post("/datasets/prepare", body)
        signature = typed_data.sign(prepared["typed_data"], holder.key)
        registered = self.post(
            "/datasets", {**body, "request": {**prepared["request"], "signature": "0x" + signature.hex()}}
        )
        return str(registered["content_root"]), str(registered["metadata_cid"]), str(registered["ticket"]["id"])

    # -- tickets -------------------------------------------------------------------------------------

    def wait(self, ticket_ids: Sequence[str], timeout: float | None = None) -> dict[str, dict[str, Any]]:
        """Poll until every ticket is mined or failed."""
        deadline = time.monotonic() + (timeout or self.ticket_timeout)
        pending = list(dict.fromkeys(ticket_ids))
        done: dict[str, dict[str, Any]] = {}
        delay = 0.05
        while pending:
            still: list[str] = []
            for tid in pending:
                ticket = self.get(f"/relay/{tid}")
                if ticket["status"] in ("mined", "failed"):
                    done[tid] = ticket
                else:
                    still.append(tid)
            pending = still
            if pending:
                if time.monotonic() > deadline:
                    raise DemoError(f"{len(pending)} relayed request(s) still queued after the timeout")
                time.sleep(delay)
                delay = min(delay * 1.5, 0.5)
        return done

    def mined(self, ticket_id: str, what: str) -> dict[str, Any]:
        ticket = self.wait([ticket_id])[ticket_id]
        if ticket["status"] != "mined":
            raise DemoError(f"{what} failed on chain: {json.dumps(ticket.get('error'))}")
        return ticket


# ---------------------------------------------------------------------------------------------
# progress: what an earlier run already did
# ---------------------------------------------------------------------------------------------


class Progress:
    """Step results kept in ``<work dir>/progress.json``, valid for one cohort on one chain."""

    def __init__(self, path: Path, key: str) -> None:
        self.path = path
        self.key = key
        self.steps: dict[str, Any] = {}
        try:
            saved = json.loads(path.read_text())
            if saved.get("version") == PROGRESS_VERSION and saved.get("key") == key:
                self.steps = dict(saved.get("steps", {}))
        except (OSError, ValueError):
            pass

    def get(self, step: str) -> Any:
        return self.steps.get(step)

    def put(self, step: str, value: Any) -> Any:
        self.steps[step] = value
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps({"version": PROGRESS_VERSION, "key": self.key, "steps": self.steps}, indent=2))
        temporary.replace(self.path)
        return value

    def reset(self) -> None:
        self.steps = {}
        self.path.unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------------
# metadata documents
# ---------------------------------------------------------------------------------------------


def _files(folder: Path) -> list[dict[str, Any]]:
    return [e.model_dump() for e in hash_folder(folder)]


def _root_of(folder: Path) -> str:
    return "0x" + content_root(e.leaf() for e in hash_folder(folder)).hex()


def cohort_metadata(holder: str, folder: Path, subjects: int) -> dict[str, Any]:
    now = _now_iso()
    return {
        "title": {"en": "Cardiometabolic outpatient cohort (synthetic)", "zh-CN": "心血管代谢门诊队列（合成数据）"},
        "description": {
            "en": "Synthetic visit records: age band, sex, ICD-10 diagnosis and four lab values per visit, "
            "keyed by pseudonymous subject addresses. Generated for demonstration; no real patient.",
            "zh-CN": "合成的就诊记录：年龄段、性别、ICD-10 诊断和四项检验值，以假名化地址标识受试者。仅用于演示。",
        },
        "keywords": ["cardiometabolic", "cohort", "diabetes", "synthetic"],
        "classification": "0x0101",
        "tier": "controlled",
        "licence": {"spdx": "CC-BY-NC-4.0"},
        "data_use": ["DUO:0000006", "DUO:0000007"],
        "disease_codes": [demo_data.DIABETES_MONDO],
        "files": _files(folder),
        "activity": {"type": "collection", "agent": holder, "started": now, "ended": now},
        "subject_count": subjects,
        "holder": holder,
        "created": now,
    }


def filter_metadata(holder: str, folder: Path, parent: str, covered: int, block: int, started: str) -> dict[str, Any]:
    from ledger.services.coverage import filter_parameters_digest

    now = _now_iso()
    digest = "0x" + filter_parameters_digest(bytes.fromhex(parent[2:]), RESEARCH_PURPOSE, block).hex()
    return {
        "title": {"en": "Cardiometabolic cohort: subjects consenting to ethics-approved health research"},
        "description": {
            "en": "The cohort's records restricted to the subjects whose consent covered health/medical "
            f"research with ethics approval (DUO:0000006) at block {block}.",
        },
        "keywords": ["consent-filtered", "synthetic"],
        "classification": "0x0101",
        "tier": "controlled",
        "licence": {"spdx": "CC-BY-NC-4.0"},
        "data_use": ["DUO:0000006", "DUO:0000021"],
        "files": _files(folder),
        "parents": [parent],
        "activity": {
            "type": "consent-filter",
            "agent": holder,
            "started": started,
            "ended": now,
            "software": {"name": "medledger-demo", "version": "1"},
            "parameters_digest": digest,
            "consent_filter": {"purpose_mask": RESEARCH_PURPOSE.mask, "block_number": block},
        },
        "subject_count": covered,
        "holder": holder,
        "created": now,
    }


AGGREGATION_PARAMETERS = {"min-cell-size": 5, "generalised": "age-band", "minors": "folded-into-18-29"}


def derived_metadata(researcher: str, folder: Path, parent: str) -> dict[str, Any]:
    now = _now_iso()
    return {
        "title": {"en": "Cardiometabolic cohort: de-identified aggregate by age band, sex and diagnosis"},
        "description": {
            "en": "Counts and mean lab values per age band, sex and ICD-10 diagnosis, computed from the "
            "consent-filtered records; cells with fewer than five subjects are suppressed.",
        },
        "keywords": ["aggregate", "de-identified", "synthetic"],
        "classification": "0x0101",
        "tier": "registered",
        "licence": {"spdx": "CC-BY-4.0"},
        "data_use": ["DUO:0000006"],
        "files": _files(folder),
        "parents": [parent],
        "activity": {
            "type": "de-identification",
            "agent": researcher,
            "started": now,
            "ended": now,
            "software": {"name": "medledger-demo-aggregate", "version": "1"},
            "parameters_digest": _sha256_json(AGGREGATION_PARAMETERS),
        },
        "deidentification": {"method": "aggregation", "parameters": dict(AGGREGATION_PARAMETERS)},
        "holder": researcher,
        "created": now,
    }


# ---------------------------------------------------------------------------------------------
# the scenario
# ---------------------------------------------------------------------------------------------


@dataclass
class DemoResult:
    """What the scenario created (or found)."""

    url: str
    already_loaded: bool
    actors: dict[str, str]
    cohort_root: str
    filter_root: str
    derived_root: str
    subjects: int
    records: int
    covered: list[str]
    consents: dict[str, int]
    guardian_subject: str
    withdrawing_subject: str
    filter_block: int | None = None
    request_id: int | None = None
    tickets: dict[str, Any] = field(default_factory=dict)
    impact: dict[str, Any] | None = None
    verification: dict[str, Any] | None = None
    verification_after_suspension: dict[str, Any] | None = None
    prov_file: str | None = None
    refusal: dict[str, Any] | None = None
    #: steps that could not show their result (a read endpoint failing); writes raise instead
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["covered_count"] = len(self.covered)
        out.pop("covered")
        return out


class Scenario:
    def __init__(
        self,
        url: str,
        admin_key: str,
        work_dir: Path,
        *,
        subjects: int = demo_data.DEFAULT_SUBJECTS,
        seed: str = demo_data.SEED,
        rpc_url: str | None = None,
        log: Log = print,
    ) -> None:
        from eth_account import Account

        self.service = Service(url)
        self.admin: LocalAccount = Account.from_key(admin_key)
        self.work_dir = work_dir
        self.rpc_url = rpc_url
        self.log = log
        self.actors = demo_data.Actors.make(seed)
        self.cohort = demo_data.make_cohort(subjects, seed)
        self.folders = demo_data.folders(work_dir / "data")
        self.step_no = 0
        self.total_steps = 14

    # -- output --------------------------------------------------------------------------------

    def step(self, title: str) -> None:
        self.step_no += 1
        self.log(f"\n[{self.step_no:2}/{self.total_steps}] {title}")

    def say(self, text: str) -> None:
        self.log(f"        {text}")

    # -- the run ---------------------------------------------------------------------------------

    def run(self) -> DemoResult:
        started = time.monotonic()
        ready = self.service.wait_ready()
        self.log(f"service {self.service.url}: chain {ready['chain']['chain_id']} at block {ready['chain']['block']}")
        c = self.cohort
        demo_data.write_cohort(c, self.folders.cohort)
        cohort_root = _root_of(self.folders.cohort)
        progress = Progress(self.work_dir / "progress.json", f"{cohort_root}:{self.admin.address}")
        cohort_exists = self.service.exists(f"/datasets/{cohort_root}")
        if not cohort_exists:
            progress.reset()  # a new chain (or a first run): nothing earlier counts
        # the planned subset and its derivative, written now so their roots are known up front
        demo_data.write_filtered(c, c.expected_covered(), self.folders.filtered)
        demo_data.write_aggregate(self.folders.filtered, self.folders.derived)
        filter_root = _root_of(self.folders.filtered)
        derived_root = _root_of(self.folders.derived)
        counts: dict[str, int] = {}
        for s in c.subjects:
            counts[s.consent] = counts.get(s.consent, 0) + 1
        result = DemoResult(
            url=self.service.url,
            already_loaded=False,
            actors={"admin (platform)": self.admin.address, **self.actors.names()},
            cohort_root=cohort_root,
            filter_root=filter_root,
            derived_root=derived_root,
            subjects=len(c.subjects),
            records=len(c.records),
            covered=c.expected_covered(),
            consents=counts,
            guardian_subject=c.minor.address,
            withdrawing_subject=c.withdrawing_subject().address,
        )
        if cohort_exists and (progress.get("refused_use") is not None or self._completed_on_chain(result)):
            result.already_loaded = True
            self._fill_from_progress(result, progress)
            self.log("demo data already loaded: nothing to do (delete the data dir to start over)")
            result.seconds = time.monotonic() - started
            return result

        self._roles(progress, cohort_exists)
        self._register_cohort(progress, result)
        self._consents(progress, result)
        self._consent_filter(progress, result)
        self._access_request(progress, result)
        self._approval(progress, result)
        self._use(progress, result)
        self._derived(progress, result)
        self._withdrawal(progress, result)
        self._impact(progress, result)
        self._verify(progress, result)
        self._prov(progress, result)
        self._suspend(progress, result)
        self._refused_use(progress, result)
        result.seconds = time.monotonic() - started
        (self.work_dir / "summary.json").write_text(json.dumps(result.to_json(), indent=2))
        return result

    def _completed_on_chain(self, result: DemoResult) -> bool:
        """The last write of the scenario (the suspension) is on chain, though this work dir does
        not remember it (another work dir, or its progress file was removed)."""
        try:
            status = self.service.get(f"/datasets/{result.filter_root}")["record"].get("status")
        except ServiceProblem as exc:
            if exc.status == 404:
                return False
            raise
        return status == "suspended" and self.service.exists(f"/datasets/{result.derived_root}")

    def _fill_from_progress(self, result: DemoResult, progress: Progress) -> None:
        result.filter_block = (progress.get("filter") or {}).get("block")
        result.request_id = (progress.get("access_request") or {}).get("request_id")
        if result.request_id is None:
            result.request_id = self._find_request(result.filter_root)
        result.tickets = {k: v for k, v in progress.steps.items() if isinstance(v, dict) and "tx_hash" in v}
        result.refusal = progress.get("refused_use")
        result.impact = progress.get("impact")
        result.prov_file = (progress.get("prov") or {}).get("file")

    # -- 1. roles --------------------------------------------------------------------------------

    def _roles(self, progress: Progress, cohort_exists: bool) -> None:
        self.step("The platform admin grants roles")
        a = self.actors
        grants = (("holder", a.hospital), ("reviewer", a.committee), ("user", a.researcher), ("auditor", a.regulator))
        if progress.get("roles") is not None or cohort_exists:
            self.say("already granted (the cohort is registered)")
            progress.put("roles", progress.get("roles") or {})
            return
        ids = [
            self.service.submit("/roles", self.admin, "grantRole", {"role": ROLE_IDS[role], "account": acct.address})
            for role, acct in grants
        ]
        done = self.service.wait(ids)
        for (role, acct), tid in zip(grants, ids, strict=True):
            if done[tid]["status"] != "mined":
                raise DemoError(f"granting {role} to {acct.address} failed: {done[tid].get('error')}")
            self.say(f"{role:8} -> {acct.address}  (block {done[tid]['block']})")
        progress.put("roles", {role: acct.address for role, acct in grants})

    # -- 2. cohort -------------------------------------------------------------------------------

    def _register_dataset(
        self, holder: LocalAccount, metadata: dict[str, Any], subjects: Sequence[str] | None
    ) -> dict[str, Any]:
        subject_root = subject_tree(subjects).root_hex if subjects else None
        root, cid, tid = self.service.register_dataset(holder, metadata, subject_root)
        ticket = self.service.mined(tid, f"registration of {root}")
        return {"root": root, "metadata_cid": cid, "tx_hash": ticket["tx_hash"], "block": ticket["block"]}

    def _register_cohort(self, progress: Progress, result: DemoResult) -> None:
        c = self.cohort
        self.step(
            f"The hospital registers its cohort: {len(c.records)} synthetic records of {len(c.subjects)} subjects"
        )
        if progress.get("cohort") is None:
            if self.service.exists(f"/datasets/{result.cohort_root}"):
                progress.put("cohort", {"root": result.cohort_root})
            else:
                md = cohort_metadata(self.actors.hospital.address, self.folders.cohort, len(c.subjects))
                progress.put("cohort", self._register_dataset(self.actors.hospital, md, c.addresses))
        got = self.service.get(f"/datasets/{result.cohort_root}")
        rec = got["record"]
        self.say(f"content root {result.cohort_root}")
        self.say(f"metadata     {got['metadata_cid']} (IPFS)")
        self.say(f"subject root {rec.get('subject_root')}  tier {rec.get('tier')}  holder {rec.get('holder')}")
        self.say(f"files        {self.folders.cohort}")

    # -- 3. consents -----------------------------------------------------------------------------

    def _consent_body(self, subject: demo_data.Subject, cohort_root: str, expiry: int) -> dict[str, Any]:
        scope_kind, terms, disease = demo_data.CONSENT_KINDS[subject.consent]
        body: dict[str, Any] = {
            "kind": "Grant",
            "subject": subject.address,
            "scope_kind": scope_kind,
            "scope": self.actors.hospital.address if scope_kind == "holder" else cohort_root,
            "purposes": list(terms),
            "expiry": expiry,
        }
        if disease:
            body["disease"] = disease
        return body

    def _check_purpose(self, subject: demo_data.Subject) -> dict[str, Any]:
        """A use the subject's planned consent covers (to find consents an interrupted run gave)."""
        _, terms, disease = demo_data.CONSENT_KINDS[subject.consent]
        if "DS" in terms:
            return {"category": "DS", "disease": disease}
        if "POA" in terms:
            return {"category": "POA"}
        return {"category": "HMB", "attributes": list(RESEARCH_ATTRIBUTES)}

    def _in_force(self, subject: str, dataset: str, params: Mapping[str, Any]) -> bool:
        query = {"subject": subject, "dataset": dataset, **params}
        return bool(self.service.get("/consents/check", params=query)["in_force"])

    def _consents(self, progress: Progress, result: DemoResult) -> None:
        c = self.cohort
        givers = [s for s in c.subjects if s.consent != "none"]
        self.step(f"Subjects consent: {len(givers)} of {len(c.subjects)}, for different DUO purposes")
        for kind, count in sorted(result.consents.items()):
            scope, terms, disease = demo_data.CONSENT_KINDS[kind]
            what = (
                "no consent" if kind == "none" else f"{'+'.join(terms)}{' ' + disease if disease else ''}, {scope}-wide"
            )
            self.say(f"{count:4} x {what}")
        if progress.get("consents") is None and self.service.exists(f"/datasets/{result.filter_root}"):
            progress.put("consents", {"given": len(givers)})  # the filter was computed from them
        if progress.get("consents") is not None:
            self.say("already given")
            return
        expiry = int(time.time()) + 5 * YEAR
        minor = c.minor
        # the minor's guardian: appointed by the subject's own signature, then consents for them
        # (an interrupted run may have given some consents already: look before signing again)
        fresh = progress.get("consents_started") is None
        progress.put("consents_started", True)
        guardian = self.actors.guardian
        if fresh or not self._in_force(minor.address, result.cohort_root, self._check_purpose(minor)):
            tid = self.service.consent(
                minor.account,
                {"kind": "AppointDelegate", "subject": minor.address, "delegate": guardian.address, "expiry": expiry},
            )
            appointed = self.service.mined(tid, "appointing the guardian")
            self.say(
                f"subject {minor.address} (age {minor.age_band}) appointed guardian {guardian.address}"
                f" (block {appointed['block']})"
            )

        def give(s: demo_data.Subject) -> str | None:
            if not fresh and self._in_force(s.address, result.cohort_root, self._check_purpose(s)):
                return None
            signer = guardian if s.via_guardian else s.account
            return self.service.consent(signer, self._consent_body(s, result.cohort_root, expiry))

        # each subject signs on their own device: the messages arrive concurrently and the relayer
        # batches them
        with ThreadPoolExecutor(max_workers=8) as pool:
            answers = list(pool.map(give, givers))
        tickets = {s.address: t for s, t in zip(givers, answers, strict=True) if t is not None}
        skipped = len(givers) - len(tickets)
        done = self.service.wait(list(tickets.values()))
        failed = {a: done[t] for a, t in tickets.items() if done[t]["status"] != "mined"}
        if failed:
            first = next(iter(failed.items()))
            raise DemoError(f"{len(failed)} consent(s) failed, e.g. {first[0]}: {first[1].get('error')}")
        blocks = sorted({done[t]["block"] for t in tickets.values()})
        self.say(
            f"{len(tickets)} signed consent messages relayed in {len(blocks)} batch transaction(s)"
            + (f"; {skipped} found already given" if skipped else "")
        )
        self.say(f"the guardian {guardian.address} signed the consent of subject {minor.address}")
        progress.put("consents", {"given": len(givers), "batches": len(blocks)})

    # -- 4. consent filter -------------------------------------------------------------------------

    def _consent_filter(self, progress: Progress, result: DemoResult) -> None:
        c = self.cohort
        self.step("The hospital registers the consent-filtered subset for ethics-approved health research")
        saved = progress.get("filter")
        if saved is None and self.service.exists(f"/datasets/{result.filter_root}"):
            saved = progress.put("filter", {"root": result.filter_root, "block": None, "covered": len(result.covered)})
        if saved is None:
            started = _now_iso()
            block = self.service.head_block()
            params = {"category": RESEARCH_CATEGORY, "attributes": list(RESEARCH_ATTRIBUTES)}
            covered = [s for s in c.addresses if self._in_force(s, result.cohort_root, params)]
            if self.service.head_block() != block:
                raise DemoError("the chain moved while coverage was computed; run the demo again")
            expected = c.expected_covered()
            if covered != expected:
                raise DemoError(
                    f"the chain says {len(covered)} subjects are covered, the consent plan says {len(expected)}"
                    " (is another writer changing these consents?)"
                )
            demo_data.write_filtered(c, covered, self.folders.filtered)
            md = filter_metadata(
                self.actors.hospital.address, self.folders.filtered, result.cohort_root, len(covered), block, started
            )
            registered = self._register_dataset(self.actors.hospital, md, covered)
            if registered["root"] != result.filter_root:
                raise DemoError(
                    f"filtered dataset root {registered['root']} differs from the planned {result.filter_root}"
                )
            saved = progress.put("filter", {**registered, "block": block, "covered": len(covered)})
        result.filter_block = saved.get("block")
        self.say(
            f"coverage at block {saved.get('block')}: {saved['covered']} of {len(c.subjects)} subjects "
            f"(purpose {'+'.join(datause.describe(RESEARCH_PURPOSE.mask))})"
        )
        self.say(f"content root {result.filter_root} (derived from the cohort, activity consent-filter)")
        self.say(f"files        {self.folders.filtered}")

    # -- 5-6. access -------------------------------------------------------------------------------

    def _request_id(self, ticket: Mapping[str, Any]) -> int:
        """The id of the access request a mined ticket filed: from the indexer's trail of the
        researcher if it runs, else from the transaction's AccessRequested log."""
        researcher = self.actors.researcher.address
        tx = str(ticket["tx_hash"]).lower()
        deadline = time.monotonic() + 15
        while True:
            try:
                trail = self.service.get(f"/audit/users/{researcher}")
            except ServiceProblem:
                break
            found = _find_request_id(trail, tx)
            if found is not None:
                return found
            if time.monotonic() > deadline:
                break
            time.sleep(0.2)
        return _request_id_from_receipt(self.rpc_url, tx, researcher)

    def _find_request(self, dataset: str) -> int | None:
        """The researcher's access request for ``dataset``, from the indexer's trail (None if the
        indexer does not answer)."""
        try:
            trail = self.service.get(f"/audit/users/{self.actors.researcher.address}", params={"limit": 1000})
        except ServiceProblem:
            return None
        for item in trail.get("items", []):
            args = item.get("args") or {}
            if item.get("event") == "AccessRequested" and str(args.get("dataset", "")).lower() == dataset.lower():
                return int(args["requestId"])
        return None

    def _access_request(self, progress: Progress, result: DemoResult) -> None:
        self.step("The researcher requests access to the filtered dataset")
        saved = progress.get("access_request")
        protocol = {
            "title": "Glycaemic control and kidney function in a cardiometabolic cohort",
            "ethics_approval": "IRB-2025-017 (synthetic)",
            "purpose": datause.describe(RESEARCH_PURPOSE.mask),
            "outputs": ["aggregate tables"],
        }
        protocol_digest = _sha256_json(protocol)
        if saved is None:
            ticket = self.service.do(
                "/access-requests",
                self.actors.researcher,
                "requestAccess",
                {
                    "dataset": result.filter_root,
                    "purpose": RESEARCH_PURPOSE.mask,
                    "diseaseCode": 0,
                    "protocolDigest": protocol_digest,
                },
            )
            request_id = self._request_id(ticket)
            saved = progress.put(
                "access_request", {"request_id": request_id, "tx_hash": ticket["tx_hash"], "block": ticket["block"]}
            )
        result.request_id = int(saved["request_id"])
        result.tickets["access_request"] = saved
        self.say(
            f"request #{result.request_id}: purpose {'+'.join(datause.describe(RESEARCH_PURPOSE.mask))}, "
            f"protocol digest {_short(protocol_digest)} (block {saved['block']})"
        )

    def _approval(self, progress: Progress, result: DemoResult) -> None:
        self.step("The review committee approves the request")
        saved = progress.get("approval")
        conditions = {"request": result.request_id, "conditions": ["no re-identification", "aggregate outputs only"]}
        if saved is None:
            ticket = self.service.do(
                "/access-requests/decisions",
                self.actors.committee,
                "approveAccess",
                {
                    "requestId": result.request_id,
                    "conditionsDigest": _sha256_json(conditions),
                    "expiry": int(time.time()) + YEAR,
                },
            )
            saved = progress.put("approval", {"tx_hash": ticket["tx_hash"], "block": ticket["block"]})
        result.tickets["approval"] = saved
        self.say(f"approved for one year under conditions {_short(_sha256_json(conditions))} (block {saved['block']})")

    # -- 7-8. use and derived dataset ----------------------------------------------------------------

    def _record_use(self, result: DemoResult, result_digest: str) -> dict[str, Any]:
        ticket = self.service.do(
            "/uses",
            self.actors.researcher,
            "recordUse",
            {
                "dataset": result.filter_root,
                "requestId": result.request_id,
                "purpose": RESEARCH_PURPOSE.mask,
                "diseaseCode": 0,
                "resultDigest": result_digest,
            },
        )
        return {"tx_hash": ticket["tx_hash"], "block": ticket["block"], "result_digest": result_digest}

    def _use(self, progress: Progress, result: DemoResult) -> None:
        self.step("The researcher records a use of the filtered dataset")
        saved = progress.get("use")
        if saved is None:
            # the use's result is the de-identified aggregate: its content root is the result digest
            saved = progress.put("use", self._record_use(result, result.derived_root))
        result.tickets["use"] = saved
        stats = self.service.get(f"/datasets/{result.filter_root}/stats")
        self.say(f"use recorded (block {saved['block']}), result digest = the aggregate's content root")
        self.say(
            f"dataset counters: {stats['uses']} use(s), {stats['distinct_users']} user(s), "
            f"{stats['derived_datasets']} derived dataset(s)"
        )

    def _derived(self, progress: Progress, result: DemoResult) -> None:
        self.step("The researcher registers the de-identified aggregate derived from it")
        saved = progress.get("derived")
        if saved is None and self.service.exists(f"/datasets/{result.derived_root}"):
            saved = progress.put("derived", {"root": result.derived_root})
        if saved is None:
            md = derived_metadata(self.actors.researcher.address, self.folders.derived, result.filter_root)
            saved = progress.put("derived", self._register_dataset(self.actors.researcher, md, None))
        rows = len(demo_data.read_rows(self.folders.derived / "aggregate.csv"))
        self.say(f"content root {result.derived_root}: {rows} aggregate rows, cells < 5 subjects suppressed")
        self.say(f"files        {self.folders.derived}")

    # -- 9-10. withdrawal ------------------------------------------------------------------------------

    def _withdrawal(self, progress: Progress, result: DemoResult) -> None:
        subject = self.cohort.withdrawing_subject()
        self.step(f"Subject {subject.address} withdraws consent (holder-wide)")
        saved = progress.get("withdrawal")
        if saved is None:
            params = {"category": RESEARCH_CATEGORY, "attributes": list(RESEARCH_ATTRIBUTES)}
            if self._in_force(subject.address, result.cohort_root, params):
                tid = self.service.consent(
                    subject.account,
                    {
                        "kind": "Withdraw",
                        "subject": subject.address,
                        "scope_kind": "holder",
                        "scope": self.actors.hospital.address,
                    },
                )
                ticket = self.service.mined(tid, "the withdrawal")
                saved = progress.put("withdrawal", {"tx_hash": ticket["tx_hash"], "block": ticket["block"]})
            else:
                saved = progress.put("withdrawal", {"tx_hash": None, "block": None})
        result.tickets["withdrawal"] = saved
        params = {"category": RESEARCH_CATEGORY, "attributes": list(RESEARCH_ATTRIBUTES)}
        in_force = self._in_force(subject.address, result.cohort_root, params)
        self.say(f"withdrawn at block {saved['block']}; consent in force now: {in_force}")
        later = progress.get("later_use")
        if later is None:
            later = progress.put("later_use", self._record_use(result, _sha256_json({"draft": "manuscript v1"})))
        result.tickets["later_use"] = later
        self.say(f"the researcher records another use after the withdrawal (block {later['block']})")

    def _impact(self, progress: Progress, result: DemoResult) -> None:
        subject = result.withdrawing_subject
        self.step("The withdrawal-impact report names what is affected")
        lists = {result.cohort_root: self.cohort.addresses, result.filter_root: result.covered}
        later = (progress.get("later_use") or {}).get("block") or 0
        try:
            report = self._impact_report(subject, lists, int(later))
        except ServiceProblem as exc:
            if exc.status < 500:
                raise
            self.say(f"UNAVAILABLE: {exc}")
            result.problems.append(f"withdrawal impact: {exc}")
            return
        result.impact = report
        progress.put("impact", _impact_summary(report))
        for d in report["datasets"]:
            how = "contains the subject" if d["contains_subject"] else f"derived from {_short(d['derived_from'][0])}"
            self.say(f"dataset {d['dataset']}: {how} (affected from block {d['from_block']})")
        for a in report["approvals"]:
            self.say(f"approval of request #{a['request_id']} at block {a['block']}")
        for u in report["uses"]:
            self.say(f"use #{u['use_number']} of {_short(u['dataset'])} by {u['user']} at block {u['block']}")
        if not report["approvals"] and not report["uses"]:
            self.say("no approval or use after the withdrawal")

    def _impact_report(self, subject: str, lists: Mapping[str, Sequence[str]], use_block: int) -> dict[str, Any]:
        """The report, once the indexer has seen the use at ``use_block`` (it follows the chain a
        little behind)."""
        deadline = time.monotonic() + 20
        while True:
            report: dict[str, Any] = self.service.post(
                f"/audit/subjects/{subject}/withdrawal-impact", {"subject_lists": dict(lists)}, ok=(200,)
            )
            seen = max([u["block"] for u in report["uses"]] + [0])
            if seen >= use_block or time.monotonic() > deadline:
                return report
            time.sleep(0.3)

    # -- 11-14. the auditor -------------------------------------------------------------------------------

    def _verify(self, progress: Progress, result: DemoResult) -> None:
        self.step("The regulator verifies the aggregate's lineage")
        report = self.service.get(f"/lineage/{result.derived_root}/verification")
        result.verification = report
        for node in report["nodes"]:
            mark = "ok" if node["ok"] else "FAILED " + ", ".join(f["reason"] for f in node["failures"])
            self.say(f"{node['content_root']} {node['status']:9} {mark}")
        self.say(f"lineage ok: {report['ok']}  ({len(report['nodes'])} datasets, {len(report['edges'])} edges)")
        if not report["ok"] and progress.get("suspension") is None:
            raise DemoError("the lineage does not verify before any suspension")

    def _prov(self, progress: Progress, result: DemoResult) -> None:
        self.step("The regulator exports the lineage as W3C PROV-JSON")
        try:
            prov = self.service.get(f"/lineage/{result.derived_root}/prov")
        except ServiceProblem as exc:
            if exc.status < 500:
                raise
            self.say(f"UNAVAILABLE: {exc}")
            result.problems.append(f"PROV export: {exc}")
            return
        path = self.work_dir / "prov-derived.json"
        path.write_text(json.dumps(prov, indent=2, sort_keys=True))
        result.prov_file = str(path)
        progress.put("prov", {"file": str(path)})
        sections = {k: len(v) for k, v in prov.items() if isinstance(v, dict) and k != "prefix"}
        self.say(", ".join(f"{k}: {n}" for k, n in sorted(sections.items())))
        self.say(f"written to {path}")

    def _suspend(self, progress: Progress, result: DemoResult) -> None:
        self.step("The regulator suspends the filtered dataset")
        saved = progress.get("suspension")
        if saved is None:
            status = self.service.get(f"/datasets/{result.filter_root}")["record"].get("status")
            if status == "suspended":
                saved = progress.put("suspension", {"tx_hash": None, "block": None})
            else:
                ticket = self.service.do(
                    "/suspensions",
                    self.actors.regulator,
                    "suspendDataset",
                    {
                        "contentRoot": result.filter_root,
                        "reasonDigest": _sha256_json({"reason": "audit of consent filter"}),
                    },
                )
                saved = progress.put("suspension", {"tx_hash": ticket["tx_hash"], "block": ticket["block"]})
        result.tickets["suspension"] = saved
        report = self.service.get(f"/lineage/{result.derived_root}/verification")
        result.verification_after_suspension = report
        self.say(
            f"suspended (block {saved['block']}); the aggregate's lineage now flags: "
            f"{json.dumps(report.get('flagged_ancestors'))}"
        )

    def _refused_use(self, progress: Progress, result: DemoResult) -> None:
        self.step("A later use of the suspended dataset is refused")
        body = {
            "operation": "recordUse",
            "from": self.actors.researcher.address,
            "args": {
                "dataset": result.filter_root,
                "requestId": result.request_id,
                "purpose": RESEARCH_PURPOSE.mask,
                "diseaseCode": 0,
                "resultDigest": _sha256_json({"draft": "manuscript v2"}),
            },
        }
        r = self.service.http.post("/relay/prepare", json=body)
        problem = r.json()
        if r.status_code != 403:
            raise DemoError(f"expected the use to be refused with 403, got {r.status_code}: {r.text[:300]}")
        result.refusal = {"status": r.status_code, "content_type": r.headers.get("content-type"), **problem}
        progress.put("refused_use", result.refusal)
        self.say(f"POST /relay/prepare recordUse -> {r.status_code} {r.headers.get('content-type')}")
        for line in json.dumps(problem, indent=2).splitlines():
            self.say("  " + line)


def _find_request_id(trail: Any, tx_hash: str) -> int | None:
    """Search an indexer trail (any JSON shape) for an AccessRequested entry of ``tx_hash``."""
    stack = [trail]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            tx = str(item.get("tx_hash") or item.get("transaction_hash") or "").lower()
            if tx == tx_hash and item.get("event", "AccessRequested") == "AccessRequested":
                for key in ("request_id", "requestId"):
                    if item.get(key) is not None:
                        return int(item[key])
                args = item.get("args")
                if isinstance(args, dict) and args.get("requestId") is not None:
                    return int(args["requestId"])
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return None


def _request_id_from_receipt(rpc_url: str | None, tx_hash: str, requester: str) -> int:
    """The AccessRequested log of the transaction, read from the chain's JSON-RPC endpoint."""
    from eth_utils.crypto import keccak

    if not rpc_url:
        raise DemoError("cannot learn the access request's id: no indexer trail and no chain endpoint given")
    topic = "0x" + keccak(text="AccessRequested(uint256,bytes32,address,uint64,uint32,bytes32)").hex()
    want = "0x" + "0" * 24 + requester.lower()[2:]
    r = httpx.post(
        rpc_url,
        json={"jsonrpc": "2.0", "id": 1, "method": "eth_getTransactionReceipt", "params": [tx_hash]},
        timeout=10,
    )
    receipt = r.json().get("result") or {}
    for entry in receipt.get("logs", []):
        topics = [t.lower() for t in entry.get("topics", [])]
        if len(topics) == 4 and topics[0] == topic and topics[3] == want:
            return int(topics[1], 16)
    raise DemoError(f"no AccessRequested event of {requester} in transaction {tx_hash}")


def _impact_summary(report: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "datasets": [d["dataset"] for d in report.get("datasets", [])],
        "approvals": [a["request_id"] for a in report.get("approvals", [])],
        "uses": [[u["dataset"], u["use_number"]] for u in report.get("uses", [])],
    }


# ---------------------------------------------------------------------------------------------
# summary and command line
# ---------------------------------------------------------------------------------------------


def summary_lines(result: DemoResult) -> list[str]:
    lines = [
        "",
        "Demo data " + ("(found, already loaded)" if result.already_loaded else f"(loaded in {result.seconds:.1f} s)"),
        f"  cohort            {result.cohort_root}  ({result.records} records, {result.subjects} subjects)",
        f"  consent-filtered  {result.filter_root}  ({len(result.covered)} subjects; suspended by the regulator)",
        f"  derived aggregate {result.derived_root}  (de-identified, registered by the researcher)",
        f"  access request    #{result.request_id}",
        f"  withdrawn subject {result.withdrawing_subject}",
        "  actors:",
    ]
    lines += [f"    {name:28} {address}" for name, address in result.actors.items()]
    url = result.url
    lines += [
        "  try:",
        f"    {url}/lineage/{result.derived_root}/verification",
        f"    {url}/lineage/{result.derived_root}/prov",
        f"    {url}/datasets/{result.filter_root}/stats",
        f"    {url}/audit/datasets/{result.filter_root}",
    ]
    return lines


def run_scenario(
    url: str,
    admin_key: str,
    work_dir: Path,
    *,
    subjects: int = demo_data.DEFAULT_SUBJECTS,
    seed: str = demo_data.SEED,
    rpc_url: str | None = None,
    log: Log = print,
) -> DemoResult:
    """Run (or find) the whole scenario against the service at ``url``."""
    scenario = Scenario(url, admin_key, work_dir, subjects=subjects, seed=seed, rpc_url=rpc_url, log=log)
    try:
        return scenario.run()
    finally:
        scenario.service.close()


def main(argv: Sequence[str] | None = None) -> int:
    from ledger.core.config import load_settings

    settings = load_settings()
    parser = argparse.ArgumentParser(description="Run the demo scenario against the service over HTTP")
    parser.add_argument("--url", default=f"http://{settings.api_host}:{settings.api_port}", help="service URL")
    parser.add_argument("--subjects", type=int, default=demo_data.DEFAULT_SUBJECTS, help="cohort size")
    parser.add_argument("--work-dir", type=Path, default=settings.data_dir / "demo", help="demo files and progress")
    parser.add_argument("--quiet", action="store_true", help="print only the summary")
    args = parser.parse_args(argv)
    log: Log = (lambda _: None) if args.quiet else print
    try:
        result = run_scenario(
            args.url,
            settings.relayer_private_key(),
            args.work_dir,
            subjects=args.subjects,
            rpc_url=settings.rpc_url,
            log=log,
        )
    except DemoError as exc:
        print(f"\ndemo failed: {exc}", file=sys.stderr)
        return 1
    print("\n".join(summary_lines(result)))
    if result.problems:
        print("\nthe demo completed, but these steps could not show their result:", file=sys.stderr)
        for problem in result.problems:
            print(f"  - {problem}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
