"""The whole demo scenario: the first steps (:mod:`demo_steps`), then access, use, the derived
aggregate, the withdrawal and its impact, and the regulator's verification, export and suspension."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

import demo_data
import httpx
from demo_common import (
    RESEARCH_ATTRIBUTES,
    RESEARCH_CATEGORY,
    RESEARCH_PURPOSE,
    YEAR,
    DemoError,
    DemoResult,
    Progress,
    derived_metadata,
    root_of,
    sha256_json,
    short,
)
from demo_steps import Steps
from eth_utils.crypto import keccak

from ledger.client.http import status_of
from ledger.core.errors import LedgerError
from ledger.rules import datause


class Scenario(Steps):
    """The scenario: :meth:`run` does (or finds) every step."""

    # -- the run ---------------------------------------------------------------------------------

    def run(self) -> DemoResult:
        started = time.monotonic()
        ready = self.service.wait_ready()
        self.log(
            f"service {self.service.base_url}: chain {ready['chain']['chain_id']} at block {ready['chain']['block']}"
        )
        c = self.cohort
        demo_data.write_cohort(c, self.folders.cohort)
        cohort_root = root_of(self.folders.cohort)
        progress = Progress(self.work_dir / "progress.json", f"{cohort_root}:{self.admin.address}")
        cohort_exists = self.service.exists(f"/datasets/{cohort_root}")
        if not cohort_exists:
            progress.reset()  # a new chain (or a first run): nothing earlier counts
        # the planned subset and its derivative, written now so their roots are known up front
        demo_data.write_filtered(c, c.expected_covered(), self.folders.filtered)
        demo_data.write_aggregate(self.folders.filtered, self.folders.derived)
        filter_root = root_of(self.folders.filtered)
        derived_root = root_of(self.folders.derived)
        counts: dict[str, int] = {}
        for s in c.subjects:
            counts[s.consent] = counts.get(s.consent, 0) + 1
        result = DemoResult(
            url=self.service.base_url,
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
        except LedgerError as exc:
            if status_of(exc) == 404:
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

    # -- 5-6. access -------------------------------------------------------------------------------

    def _request_id(self, ticket: Mapping[str, Any]) -> int:
        """The id of the access request a mined ticket filed: what the relay recorded for it, else
        from the indexer's trail of the researcher if it runs, else from the transaction's
        AccessRequested log."""
        recorded = (ticket.get("result") or {}).get("request_id")
        if recorded is not None:
            return int(recorded)
        researcher = self.actors.researcher.address
        tx = str(ticket["tx_hash"]).lower()
        deadline = time.monotonic() + 15
        while True:
            try:
                trail = self.service.get(f"/audit/users/{researcher}")
            except LedgerError:
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
        except LedgerError:
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
        protocol_digest = sha256_json(protocol)
        if saved is None:
            ticket = self._do(
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
            f"protocol digest {short(protocol_digest)} (block {saved['block']})"
        )

    def _approval(self, progress: Progress, result: DemoResult) -> None:
        self.step("The review committee approves the request")
        saved = progress.get("approval")
        conditions = {"request": result.request_id, "conditions": ["no re-identification", "aggregate outputs only"]}
        if saved is None:
            ticket = self._do(
                self.actors.committee,
                "approveAccess",
                {
                    "requestId": result.request_id,
                    "conditionsDigest": sha256_json(conditions),
                    "expiry": int(time.time()) + YEAR,
                },
            )
            saved = progress.put("approval", {"tx_hash": ticket["tx_hash"], "block": ticket["block"]})
        result.tickets["approval"] = saved
        self.say(f"approved for one year under conditions {short(sha256_json(conditions))} (block {saved['block']})")

    # -- 7-8. use and derived dataset ----------------------------------------------------------------

    def _record_use(self, result: DemoResult, result_digest: str) -> dict[str, Any]:
        ticket = self._do(
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
                tid = self._consent(
                    subject.account,
                    {
                        "kind": "Withdraw",
                        "subject": subject.address,
                        "scope_kind": "holder",
                        "scope": self.actors.hospital.address,
                    },
                )
                ticket = self._mined(tid, "the withdrawal")
                saved = progress.put("withdrawal", {"tx_hash": ticket["tx_hash"], "block": ticket["block"]})
            else:
                saved = progress.put("withdrawal", {"tx_hash": None, "block": None})
        result.tickets["withdrawal"] = saved
        params = {"category": RESEARCH_CATEGORY, "attributes": list(RESEARCH_ATTRIBUTES)}
        in_force = self._in_force(subject.address, result.cohort_root, params)
        self.say(f"withdrawn at block {saved['block']}; consent in force now: {in_force}")
        later = progress.get("later_use")
        if later is None:
            later = progress.put("later_use", self._record_use(result, sha256_json({"draft": "manuscript v1"})))
        result.tickets["later_use"] = later
        self.say(f"the researcher records another use after the withdrawal (block {later['block']})")

    def _impact(self, progress: Progress, result: DemoResult) -> None:
        subject = result.withdrawing_subject
        self.step("The withdrawal-impact report names what is affected")
        lists = {result.cohort_root: self.cohort.addresses, result.filter_root: result.covered}
        later = (progress.get("later_use") or {}).get("block") or 0
        try:
            report = self._impact_report(subject, lists, int(later))
        except LedgerError as exc:
            if (status_of(exc) or 500) < 500:
                raise
            self.say(f"UNAVAILABLE: {exc}")
            result.problems.append(f"withdrawal impact: {exc}")
            return
        result.impact = report
        progress.put("impact", _impact_summary(report))
        for d in report["datasets"]:
            how = "contains the subject" if d["contains_subject"] else f"derived from {short(d['derived_from'][0])}"
            self.say(f"dataset {d['dataset']}: {how} (affected from block {d['from_block']})")
        for a in report["approvals"]:
            self.say(f"approval of request #{a['request_id']} at block {a['block']}")
        for u in report["uses"]:
            self.say(f"use #{u['use_number']} of {short(u['dataset'])} by {u['user']} at block {u['block']}")
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
        except LedgerError as exc:
            if (status_of(exc) or 500) < 500:
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
                ticket = self._do(
                    self.actors.regulator,
                    "suspendDataset",
                    {
                        "contentRoot": result.filter_root,
                        "reasonDigest": sha256_json({"reason": "audit of consent filter"}),
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
                "resultDigest": sha256_json({"draft": "manuscript v2"}),
            },
        }
        # the raw answer: the refusal's status and content type are what this step shows
        r = self.service.http.request("POST", "/relay/prepare", json=body)
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
