"""The demo's first four steps: the admin grants roles, the hospital registers its cohort, the
subjects consent (one minor through a guardian), the hospital registers the consent-filtered subset."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import demo_data
from demo_common import (
    RESEARCH_ATTRIBUTES,
    RESEARCH_CATEGORY,
    RESEARCH_PURPOSE,
    ROLE_IDS,
    YEAR,
    DemoError,
    DemoResult,
    Progress,
    cohort_metadata,
    filter_metadata,
    now_iso,
)
from eth_account import Account
from eth_account.signers.local import LocalAccount

from ledger.client.http import ServiceClient
from ledger.content.merkle import subject_tree
from ledger.rules import datause

Log = Callable[[str], None]


class Steps:
    """The scenario's first steps (roles, the cohort, consents, the consent filter) and what every
    step uses: the service client, the parties, the cohort and the output."""

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
        self.service = ServiceClient(url, timeout=60.0, wait_timeout=120.0)
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

    # -- writes ----------------------------------------------------------------------------------

    def _mined(self, ticket_id: str, what: str) -> dict[str, Any]:
        ticket = self.service.settle([ticket_id])[ticket_id]
        if ticket["status"] != "mined":
            raise DemoError(f"{what} failed on chain: {json.dumps(ticket.get('error'))}")
        return ticket

    def _submit(self, actor: LocalAccount, operation: str, args: Mapping[str, Any]) -> str:
        """Prepare, sign and queue one operation; the ticket id (a stale nonce is signed again)."""
        return str(self.service.send(actor, operation, args, attempts=20)["id"])

    def _do(self, actor: LocalAccount, operation: str, args: Mapping[str, Any]) -> dict[str, Any]:
        """Prepare, sign, queue and wait until mined."""
        return self._mined(self._submit(actor, operation, args), f"{operation} by {actor.address}")

    def _consent(self, signer: LocalAccount, body: Mapping[str, Any]) -> str:
        """Sign a consent message (subject or delegate) and queue it; the ticket id."""
        return str(self.service.consent(signer, body, wait=False)["id"])

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
            self._submit(self.admin, "grantRole", {"role": ROLE_IDS[role], "account": acct.address})
            for role, acct in grants
        ]
        done = self.service.settle(ids)
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
        answer = self.service.register_dataset(holder, metadata, subject_root=subject_root, wait=False)
        root, cid = str(answer["content_root"]), str(answer["metadata_cid"])
        ticket = self._mined(str(answer["ticket"]["id"]), f"registration of {root}")
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
            tid = self._consent(
                minor.account,
                {"kind": "AppointDelegate", "subject": minor.address, "delegate": guardian.address, "expiry": expiry},
            )
            appointed = self._mined(tid, "appointing the guardian")
            self.say(
                f"subject {minor.address} (age {minor.age_band}) appointed guardian {guardian.address}"
                f" (block {appointed['block']})"
            )

        def give(s: demo_data.Subject) -> str | None:
            if not fresh and self._in_force(s.address, result.cohort_root, self._check_purpose(s)):
                return None
            signer = guardian if s.via_guardian else s.account
            return self._consent(signer, self._consent_body(s, result.cohort_root, expiry))

        # each subject signs on their own device: the messages arrive concurrently and the relayer
        # batches them
        with ThreadPoolExecutor(max_workers=8) as pool:
            answers = list(pool.map(give, givers))
        tickets = {s.address: t for s, t in zip(givers, answers, strict=True) if t is not None}
        skipped = len(givers) - len(tickets)
        done = self.service.settle(list(tickets.values()))
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
            started = now_iso()
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
