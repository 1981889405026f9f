"""The demo scenario end to end, over HTTP only: every write is prepared by the service, signed
here by the acting party's key (as a client would) and relayed; then each step's effect is checked
on chain (direct reads, not through the service) and in the event indexer (audit endpoints)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account

from ledger.content.merkle import subject_tree
from ledger.core.classification import DatasetStatus, Tier
from ledger.core.config import Settings
from ledger.core.errors import UseRefused
from ledger.core.records import ZERO32, ConsentScope, ConsentState, RequestStatus, to_bytes32
from ledger.history.sources import LogEventSource
from ledger.rules import datause
from ledger.services.ledger import Ledger
from ledger.services.recheck import recheck_filter
from ledger.services.verification import verify_dataset

from .helpers import ServiceProcess, import_demo, wait_until

demo = import_demo()
demo_data = demo.demo_data


@pytest.fixture(scope="module")
def run(
    service: ServiceProcess, admin_key: str, e2e_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Any:
    """The scenario, run once against the service; its printed lines are kept for inspection."""
    work = tmp_path_factory.mktemp("demo-work")
    lines: list[str] = []
    result = demo.run_scenario(service.url, admin_key, work, rpc_url=e2e_settings.rpc_url, log=lines.append)
    result.lines = lines
    result.work_dir = work
    return result


@pytest.fixture(scope="module")
def cohort() -> Any:
    return demo_data.make_cohort()


@pytest.fixture(scope="module")
def actors() -> Any:
    return demo_data.Actors.make()


@pytest.fixture(scope="module")
def http(service: ServiceProcess) -> Any:
    with httpx.Client(base_url=service.url, timeout=30) as client:
        yield client


def trail_events(http: httpx.Client, path: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    after = None
    while True:
        params: dict[str, Any] = {"limit": 1000}
        if after is not None:
            params["after"] = after
        r = http.get(path, params=params)
        assert r.status_code == 200, r.text
        page = r.json()
        items += page["items"]
        after = page.get("next_cursor")
        if after is None:
            return items


def names(events: list[dict[str, Any]]) -> list[str]:
    return [e["event"] for e in events]


def indexed(http: httpx.Client, path: str, expected: dict[str, int], timeout: float = 30.0) -> list[dict[str, Any]]:
    """The trail at ``path`` once it holds at least the expected number of each event."""

    def enough() -> list[dict[str, Any]] | None:
        events = trail_events(http, path)
        found = names(events)
        return events if all(found.count(n) >= k for n, k in expected.items()) else None

    return wait_until(enough, timeout, f"indexer trail {path} with {expected}")


# ---------------------------------------------------------------------------------------------


def test_scenario_completes_without_problems(run: Any) -> None:
    assert run.problems == [], run.problems
    assert not run.already_loaded
    text = "\n".join(run.lines)
    for step in range(1, 15):
        assert f"[{step:2}/14]" in text
    assert run.subjects == demo_data.DEFAULT_SUBJECTS
    assert 200 <= run.records <= 1000


def test_roles_granted(run: Any, chain: Ledger, actors: Any) -> None:
    assert chain.has_role("holder", actors.hospital.address)
    assert chain.has_role("reviewer", actors.committee.address)
    assert chain.has_role("user", actors.researcher.address)
    assert chain.has_role("auditor", actors.regulator.address)
    assert not chain.has_role("user", actors.hospital.address)


def test_cohort_registered(run: Any, chain: Ledger, cohort: Any, actors: Any, http: httpx.Client) -> None:
    rec = chain.get_dataset(run.cohort_root)
    assert rec.holder == actors.hospital.address
    assert rec.tier == Tier.CONTROLLED
    assert rec.parents == ()
    assert rec.subject_root == subject_tree(cohort.addresses).root
    assert len(cohort.addresses) == run.subjects
    report = verify_dataset(chain, run.cohort_root, folder=run.work_dir / "data" / "cohort")
    assert report.ok, report.to_json()
    assert report.files_checked == 2
    # the metadata on IPFS names a subject count but no subject
    md = http.get(f"/datasets/{run.cohort_root}").json()["metadata"]
    assert md["subject_count"] == run.subjects
    assert not any(a.lower()[2:] in str(md).lower() for a in cohort.addresses)
    # the records are pseudonymous: no names, birth dates or free text columns
    header = (run.work_dir / "data" / "cohort" / "records.csv").read_text().splitlines()[0].split(",")
    assert header == list(demo_data.RECORD_FIELDS)


def test_consents_on_chain(run: Any, chain: Ledger, cohort: Any, actors: Any) -> None:
    withdrawn = run.withdrawing_subject
    for s in cohort.subjects:
        scope_kind, terms, disease = demo_data.CONSENT_KINDS[s.consent]
        if s.consent == "none":
            holder_scope = ConsentScope.holder(actors.hospital.address)
            assert chain.get_consent(s.address, holder_scope).state == ConsentState.NONE
            continue
        scope = (
            ConsentScope.holder(actors.hospital.address)
            if scope_kind == "holder"
            else ConsentScope.dataset(run.cohort_root)
        )
        rec = chain.get_consent(s.address, scope)
        assert rec.purposes == datause.grant_mask(terms), s.consent
        assert rec.disease == datause.parse_disease(disease)
        expected = ConsentState.WITHDRAWN if s.address == withdrawn else ConsentState.GIVEN
        assert rec.state == expected, (s.address, s.consent)
    # the minor's consent came through the guardian the subject appointed
    assert chain.delegate_expiry(cohort.minor.address, actors.guardian.address) > chain.now()


def test_consents_indexed(run: Any, http: httpx.Client, cohort: Any, actors: Any) -> None:
    minor = cohort.minor.address

    def minor_consents() -> list[dict[str, Any]]:
        r = http.get("/consents", params={"subject": minor})
        assert r.status_code == 200, r.text
        return list(r.json())

    consents = wait_until(minor_consents, 30, "the minor's consent in the index")
    assert len(consents) == 1
    assert consents[0]["actor"] == actors.guardian.address
    assert consents[0]["state"] == "given"
    withdrawn = http.get("/consents", params={"subject": run.withdrawing_subject}).json()
    assert [c["state"] for c in withdrawn] == ["withdrawn"]
    assert [h["action"] for h in withdrawn[0]["history"]] == ["given", "withdrawn"]


def test_consent_filter(run: Any, chain: Ledger, cohort: Any, actors: Any) -> None:
    rec = chain.get_dataset(run.filter_root)
    assert rec.holder == actors.hospital.address
    assert rec.parents == (to_bytes32(run.cohort_root),)
    assert rec.activity_digest != ZERO32
    covered = cohort.expected_covered()
    assert run.covered == covered
    assert rec.subject_root == subject_tree(covered).root
    # the subset is exactly the subjects whose consent covers the purpose, including the minor's
    # (guardian) and the dataset-scoped ones; DS- and POA-only consents and no consent are out
    kinds = {s.consent for s in cohort.subjects if s.address in set(covered)}
    assert kinds == set(demo_data.COVERS_RESEARCH_PURPOSE)
    assert cohort.minor.address in covered
    # anyone with the subject lists can recheck the filter from the chain's consent history
    source = LogEventSource(chain.client)
    check = recheck_filter(chain, source, run.filter_root, cohort.addresses, filter_subjects=covered)
    assert check.ok, check.to_json()
    assert check.block == run.filter_block
    assert check.purpose == demo.RESEARCH_PURPOSE


def test_access_request_and_approval(run: Any, chain: Ledger, actors: Any) -> None:
    req = chain.get_request(run.request_id)
    assert req.requester == actors.researcher.address
    assert req.dataset == to_bytes32(run.filter_root)
    assert req.purpose == demo.RESEARCH_PURPOSE.mask
    assert req.status == RequestStatus.APPROVED
    assert req.expiry > chain.now()


def test_uses_and_derived_dataset(run: Any, chain: Ledger, actors: Any) -> None:
    stats = chain.usage_stats(run.filter_root)
    assert stats == {"uses": 2, "distinct_users": 1, "derived_datasets": 1}
    derived = chain.get_dataset(run.derived_root)
    assert derived.holder == actors.researcher.address
    assert derived.parents == (to_bytes32(run.filter_root),)
    assert derived.tier == Tier.REGISTERED
    assert derived.subject_root == ZERO32  # an aggregate: no subject-level rows
    # the first use's result is the derived dataset itself
    assert run.tickets["use"]["result_digest"] == run.derived_root
    rows = (run.work_dir / "data" / "derived-aggregate" / "aggregate.csv").read_text().splitlines()
    assert rows[0].split(",") == list(demo_data.AGGREGATE_FIELDS)
    assert all(int(r.split(",")[3]) >= 5 for r in rows[1:])
    assert not any("0x" in r for r in rows)  # no subject address survives de-identification


def test_withdrawal_and_impact(run: Any, chain: Ledger, actors: Any) -> None:
    subject = run.withdrawing_subject
    assert not chain.consent_in_force(subject, run.filter_root, demo.RESEARCH_PURPOSE)
    withdrawal_block = run.tickets["withdrawal"]["block"]
    later_use_block = run.tickets["later_use"]["block"]
    assert later_use_block > withdrawal_block
    impact = run.impact
    assert impact is not None
    by_root = {d["dataset"]: d for d in impact["datasets"]}
    assert set(by_root) == {run.cohort_root, run.filter_root, run.derived_root}
    assert by_root[run.cohort_root]["contains_subject"] is True
    assert by_root[run.filter_root]["contains_subject"] is True
    assert by_root[run.derived_root]["contains_subject"] is False
    assert by_root[run.derived_root]["derived_from"] == [run.filter_root]
    assert all(d["from_block"] == withdrawal_block for d in impact["datasets"])
    # the subject can check its inclusion in the filtered dataset on chain
    proof = [bytes.fromhex(p[2:]) for p in by_root[run.filter_root]["proof"]]
    assert chain.client.call(chain.datasets.functions.verifySubject(to_bytes32(run.filter_root), subject, proof))
    # the use made after the withdrawal is named; the approval and first use came before it
    assert [(u["dataset"], u["block"]) for u in impact["uses"]] == [(run.filter_root, later_use_block)]
    assert impact["approvals"] == []
    assert impact["mismatched_lists"] == []


def test_lineage_verification_and_prov(run: Any) -> None:
    import json

    report = run.verification
    assert report["ok"] is True
    assert {n["content_root"] for n in report["nodes"]} == {run.cohort_root, run.filter_root, run.derived_root}
    assert {(e["child"], e["parent"]) for e in report["edges"]} == {
        (run.derived_root, run.filter_root),
        (run.filter_root, run.cohort_root),
    }
    prov = json.loads(Path(run.prov_file).read_text())
    assert len(prov["entity"]) == 3
    assert len(prov["wasDerivedFrom"]) == 2
    assert len(prov["activity"]) == 3
    assert "wasAttributedTo" in prov and "wasGeneratedBy" in prov
    # after the suspension the aggregate's lineage flags its suspended ancestor
    after = run.verification_after_suspension
    assert after["ok"] is False
    assert after["flagged_ancestors"]["suspended"] == [run.filter_root]


def test_suspension_refuses_later_use(run: Any, chain: Ledger, actors: Any, http: httpx.Client) -> None:
    assert chain.get_dataset(run.filter_root).status == DatasetStatus.SUSPENDED
    refusal = run.refusal
    assert refusal["status"] == 403
    assert refusal["content_type"].startswith("application/problem+json")
    assert refusal["error"] == "DatasetNotUsable"
    assert refusal["type"].endswith("use-refused")
    # and it stays refused: the contract, not only the API, refuses a signed use

    user = Account.from_key(actors.researcher.key)
    with pytest.raises(UseRefused):
        chain.record_use(user, run.filter_root, demo.RESEARCH_PURPOSE, request_id=run.request_id)
    assert chain.usage_stats(run.filter_root)["uses"] == 2


def test_indexer_saw_every_step(run: Any, http: httpx.Client, actors: Any) -> None:
    events = indexed(
        http,
        f"/audit/datasets/{run.filter_root}",
        {"DatasetRegistered": 1, "AccessRequested": 1, "AccessApproved": 1, "UseRecorded": 2, "DatasetSuspended": 1},
    )
    found = names(events)
    assert found.count("UseRecorded") == 2
    assert found.index("DatasetRegistered") < found.index("AccessRequested") < found.index("AccessApproved")
    assert found.index("AccessApproved") < found.index("UseRecorded") < found.index("DatasetSuspended")
    assert "DerivedFrom" in found
    user = indexed(http, f"/audit/users/{actors.researcher.address}", {"AccessRequested": 1, "UseRecorded": 2})
    assert "DatasetRegistered" in names(user)  # the derived dataset
    cohort_events = indexed(http, f"/audit/datasets/{run.cohort_root}", {"DatasetRegistered": 1})
    assert "DerivedFrom" in names(cohort_events)


def test_running_again_changes_nothing(run: Any, service: ServiceProcess, admin_key: str, chain: Ledger) -> None:
    head = chain.client.w3.eth.block_number
    lines: list[str] = []
    again = demo.run_scenario(service.url, admin_key, run.work_dir, log=lines.append)
    assert again.already_loaded
    assert (again.cohort_root, again.filter_root, again.derived_root) == (
        run.cohort_root,
        run.filter_root,
        run.derived_root,
    )
    assert again.request_id == run.request_id
    assert chain.client.w3.eth.block_number == head
    assert any("already loaded" in line for line in lines)


def test_another_client_finds_the_demo_on_chain(
    run: Any, service: ServiceProcess, admin_key: str, chain: Ledger, tmp_path: Path
) -> None:
    """Without the first run's progress file (another machine, or the file deleted) the demo still
    recognises its data on chain and writes nothing."""
    head = chain.client.w3.eth.block_number
    again = demo.run_scenario(service.url, admin_key, tmp_path / "elsewhere", log=lambda _: None)
    assert again.already_loaded
    assert again.request_id == run.request_id  # found in the indexer's trail of the researcher
    assert chain.client.w3.eth.block_number == head
