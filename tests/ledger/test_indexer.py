"""The event index (ledger.history.index) against a real anvil: every query's content after a
realistic sequence of writes, resuming after a restart, rebuilding, confirmations, another
deployment, reorganisations and the background thread."""

from __future__ import annotations

import itertools
import json
import sqlite3
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from test_events import (
    DAY,
    Chain,
    Scenario,
    hx,
    rand32,
    raw_logs,
    run_scenario,
    start_chain,
    stop_chain,
)

from ledger.chain.client import ChainClient
from ledger.chain.deployment import deploy_all
from ledger.core.classification import Tier
from ledger.core.errors import NodeUnavailable
from ledger.core.records import ConsentScope
from ledger.history.events import EventDecoder, seq_block
from ledger.history.index import (
    Indexer,
    IndexEventSource,
    IndexIdentity,
    IndexStateError,
    IndexStore,
    SyncReport,
)
from ledger.history.sources import EventSource, LogEventSource
from ledger.rules import datause

# ---------------------------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chain]:
    c = start_chain(tmp_path_factory.mktemp("indexer-chain"))
    try:
        yield c
    finally:
        stop_chain(c)


@pytest.fixture(scope="module")
def scenario(chain: Chain) -> Scenario:
    return run_scenario(chain)


@pytest.fixture(scope="module")
def first_sync(chain: Chain, scenario: Scenario) -> Iterator[tuple[Indexer, SyncReport]]:
    idx = Indexer(chain.settings, chain.client)
    report = idx.sync()
    try:
        yield idx, report
    finally:
        idx.close()


@pytest.fixture(scope="module")
def idx(first_sync: tuple[Indexer, SyncReport]) -> Indexer:
    return first_sync[0]


def names(items: list[dict[str, Any]]) -> list[str]:
    return [str(i["event"]) for i in items]


def chain_counts(chain: Chain, from_block: int, to_block: int) -> Counter[str]:
    dec = EventDecoder.for_client(chain.client)
    out: Counter[str] = Counter()
    for r in raw_logs(chain, from_block, to_block):
        ev = dec.decode(r)
        assert ev is not None
        out[ev.event] += 1
    return out


def dump(store: IndexStore) -> dict[str, Any]:
    """Every row of every table (but the bookkeeping ones), order-independent, and the position."""
    conn = sqlite3.connect(store.path)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        out: dict[str, Any] = {
            t: sorted(conn.execute(f"SELECT * FROM {t}").fetchall(), key=repr)
            for t in tables
            if t not in ("meta", "blocks")
        }
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    finally:
        conn.close()
    out["position"] = (meta["last_block"], meta["last_block_hash"], meta["chain_id"], meta["addresses"])
    return out


def all_queries(store: IndexStore, sc: Scenario) -> dict[str, Any]:
    a = sc.actors
    out: dict[str, Any] = {}
    for name in sc.roots:
        out[f"trail_{name}"] = store.dataset_trail(sc.roots[name], limit=None)
        out[f"desc_{name}"] = store.descendants_of(sc.roots[name])
        out[f"approvals_{name}"] = store.approvals_for(sc.roots[name], limit=None)
        out[f"uses_{name}"] = store.uses_of(sc.roots[name], limit=None)
    for who, acct in a.items():
        out[f"user_{who}"] = store.user_trail(acct.address, limit=None)
        out[f"consents_{who}"] = store.subject_consents(acct.address)
        out[f"withdrawals_{who}"] = store.withdrawals_of(acct.address, limit=None)
    out["consent_events"] = store.consent_events_until(sc.end_block, limit=None)
    out["relay"] = store.relay_status(*sc.failed_forward)
    return out


# ---------------------------------------------------------------------------------------------
# syncing and the queries' content


def test_sync_indexes_every_ledger_event(
    chain: Chain, scenario: Scenario, first_sync: tuple[Indexer, SyncReport]
) -> None:
    idx, report = first_sync
    record = chain.client.record
    assert record is not None
    counts = chain_counts(chain, record.deploy_block, report.to_block)
    assert report.rebuilt == "new index" and report.reorg_depth == 0
    assert report.from_block == record.deploy_block and report.to_block == report.head >= scenario.end_block
    assert report.events == sum(counts.values()) > 60 and report.events_per_second > 0
    stats = idx.stats()
    assert stats["events"] == report.events and stats["last_block"] == report.to_block
    for event, n in counts.items():
        assert len(idx.events(event=event, limit=None)["items"]) == n, event
    expected = {
        "datasets": 6,
        "lineage": 4,
        "consents": 3,
        "consent_history": 5,
        "delegates": 1,
        "delegate_history": 2,
        "access_requests": 4,
        "access_decisions": 5,
        "uses": 3,
        "suspensions": 5,
        "roles": 8,
        "role_history": 9,
        "forwards": counts["ExecutedForwardRequest"],
    }
    assert {k: stats[k] for k in expected} == expected
    # nothing new: an idempotent no-op
    again = idx.sync()
    assert again.events == 0 and again.chunks == 0 and again.rebuilt is None and idx.stats() == stats
    # events page through in chain order with a cursor
    first = idx.events(limit=10)
    second = idx.events(after=first["next_cursor"], limit=10)
    assert [e["seq"] for e in first["items"] + second["items"]] == [e["seq"] for e in idx.events(limit=20)["items"]]
    assert idx.events(event="UseRecorded", contract="UsageRegistry", limit=None)["next_cursor"] is None


def test_dataset_records_and_trails(idx: Indexer, scenario: Scenario) -> None:
    sc, a = scenario, scenario.actors
    rec_a = idx.dataset(sc.roots["A"])
    assert rec_a is not None
    assert rec_a["status"] == "deprecated" and rec_a["successor"] == sc.root("E")
    assert rec_a["holder"] == a["holder"].address and rec_a["tier"] == "controlled" and rec_a["parents"] == []
    assert rec_a["registered_block"] == sc.blocks["register_A"] and rec_a["classification"] == 0x0101
    rec_c = idx.dataset(sc.root("C"))
    assert rec_c is not None and rec_c["status"] == "active"  # suspended, then reinstated
    assert rec_c["parents"] == sorted([sc.root("A"), sc.root("B")])
    assert idx.dataset(sc.roots["B"])["tier"] == "registered"  # type: ignore[index]
    rec_f = idx.dataset(sc.roots["F"])
    assert rec_f is not None and rec_f["status"] == "retracted" and rec_f["embargo_overridden"] is True
    assert idx.dataset(sc.roots["D"])["status"] == "suspended"  # type: ignore[index]
    assert idx.dataset(rand32()) is None

    trail = idx.dataset_trail(sc.roots["A"], limit=None)
    assert trail["dataset"] == rec_a and trail["next_cursor"] is None
    assert names(trail["items"]) == [
        "DatasetRegistered",
        "DerivedFrom",  # C from A (and B)
        "DerivedFrom",  # E from A
        "ConsentGiven",  # subject1, scoped to A
        "AccessRequested",
        "AccessApproved",
        "UseRecorded",
        "UseRecorded",
        "DatasetDeprecated",
    ]
    items = trail["items"]
    assert [i["role"] for i in items[:4]] == ["dataset", "parent", "parent", "consent-scope"]
    assert [i["args"]["child"] for i in items[1:3]] == [sc.root("C"), sc.root("E")]
    assert all(x["seq"] < y["seq"] for x, y in itertools.pairwise(items))
    assert items[4]["args"]["requestId"] == sc.requests["r1"] and items[5]["args"]["requestId"] == sc.requests["r1"]
    # pagination by cursor gives the same sequence
    pages, cursor = [], None
    while True:
        page = idx.dataset_trail(sc.roots["A"], after=cursor, limit=4)
        pages += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == items
    # from_block cuts the older part
    later = idx.dataset_trail(sc.roots["A"], from_block=sc.blocks["deprecate_A"], limit=None)
    assert names(later["items"]) == ["DatasetDeprecated"]

    trail_c = idx.dataset_trail(sc.root("C"), limit=None)["items"]
    assert names(trail_c) == [
        "DerivedFrom",
        "DerivedFrom",
        "DatasetRegistered",  # emitted after its lineage edges, in the same transaction
        "DerivedFrom",  # D from C
        "AccessRequested",
        "AccessDenied",
        "AccessRequested",
        "AccessApproved",
        "AccessRevoked",
        "DatasetSuspended",
        "DatasetReinstated",
    ]
    assert [i["role"] for i in trail_c[:4]] == ["child", "child", "dataset", "parent"]
    trail_e = idx.dataset_trail(sc.root("E"), limit=None)["items"]
    assert names(trail_e) == ["DerivedFrom", "DatasetRegistered", "DatasetDeprecated"]
    assert trail_e[-1]["role"] == "successor"
    assert idx.predecessors_of(sc.roots["E"]) == [sc.root("A")] and idx.predecessors_of(sc.roots["A"]) == []
    assert idx.dataset_trail(rand32())["items"] == []
    assert idx.datasets_of(a["holder"].address)["items"][0]["content_root"] == sc.root("A")
    assert [d["content_root"] for d in idx.datasets_of(a["holder"].address, limit=None)["items"]] == [
        sc.root(n) for n in ("A", "C", "E", "F")
    ]


def test_user_trails(idx: Indexer, scenario: Scenario) -> None:
    a = scenario.actors
    u1 = idx.user_trail(a["user1"].address, limit=None)
    assert u1["address"] == a["user1"].address and u1["roles"] == ["user"] and u1["suspended"] is False
    assert names(u1["items"]) == [
        "RoleGranted",
        "DatasetRegistered",  # D, derived by the user
        "ConsentGiven",  # named as grantee
        "AccessRequested",
        "AccessApproved",
        "UseRecorded",
        "UseRecorded",
        "UseRecorded",
        "AccessRequested",
        "AccessApproved",
    ]
    assert [i["role"] for i in u1["items"][:3]] == ["account", "holder", "grantee"]
    u2 = idx.user_trail(a["user2"].address.lower(), limit=None)  # any case of the address
    assert u2["suspended"] is False
    assert names(u2["items"]) == [
        "RoleGranted",
        "AccessRequested",
        "AccessDenied",
        "AccessRequested",
        "AccessApproved",
        "AccessRevoked",
        "UserSuspendedBy",
        "UserReinstated",
    ]
    aud = names(idx.user_trail(a["auditor"].address, limit=None)["items"])
    assert aud == [
        "RoleGranted",
        "EmbargoOverridden",
        "DatasetSuspended",
        "DatasetReinstated",
        "UserSuspendedBy",
        "UserReinstated",
        "DatasetSuspended",
    ]
    temp = idx.user_trail(a["temp"].address, limit=None)
    assert names(temp["items"]) == ["RoleGranted", "RoleRevoked"] and temp["roles"] == []
    assert idx.roles_of(a["holder"].address) == ["holder"]
    assert set(idx.role_members("holder")) == {a["holder"].address, a["holder2"].address}
    guardian = idx.user_trail(a["guardian"].address, limit=None)
    assert names(guardian["items"]) == ["DelegateAppointed", "ConsentRenewed", "DelegateRevoked"]
    assert guardian["items"][1]["role"] == "delegate"


def test_subject_consents_and_history(chain: Chain, idx: Indexer, scenario: Scenario) -> None:
    sc, a = scenario, scenario.actors
    s1 = idx.subject_consents(a["subject1"].address)
    assert [c["consent_id"] for c in s1] == [sc.consents["s1_holder"], sc.consents["s1_dataset_A"]]
    withdrawn, dataset_scoped = s1
    assert withdrawn["state"] == withdrawn["status"] == "withdrawn"
    assert withdrawn["scope"] == {"kind": "holder", "holder": a["holder"].address}
    assert withdrawn["purpose_codes"] == ["HMB"] and withdrawn["grantee"] is None
    assert [h["action"] for h in withdrawn["history"]] == ["given", "withdrawn"]
    assert withdrawn["history"][1]["block_number"] == sc.blocks["withdraw"]
    assert dataset_scoped["scope"] == {"kind": "dataset", "dataset": sc.root("A")}
    assert dataset_scoped["grantee"] == a["user1"].address and dataset_scoped["purposes"] == datause.GRU
    assert dataset_scoped["status"] == "given" and dataset_scoped["expiry"] == sc.expiries["exp"]
    assert [c["consent_id"] for c in idx.subject_consents(a["subject1"].address, include_withdrawn=False)] == [
        sc.consents["s1_dataset_A"]
    ]
    (s2,) = idx.subject_consents(a["subject2"].address)
    assert s2["state"] == "renewed" and s2["expiry"] == sc.expiries["exp2"]
    assert s2["disease"] == 5148 and s2["disease_code"] == "MONDO:0005148" and s2["purpose_codes"] == ["DS"]
    assert [(h["action"], h["actor"]) for h in s2["history"]] == [
        ("given", a["subject2"].address),
        ("renewed", a["guardian"].address),
    ]
    assert idx.subject_consents(a["subject2"].address, now=sc.expiries["exp2"])[0]["status"] == "expired"
    # the index agrees with the registry's stored state
    holder_scope = ConsentScope.holder(a["holder"].address)
    for subject, scope, grantee in (
        (a["subject1"], holder_scope, None),
        (a["subject1"], ConsentScope.dataset(sc.roots["A"]), a["user1"].address),
        (a["subject2"], holder_scope, None),
    ):
        on_chain = chain.ledger.get_consent(subject.address, scope, grantee)
        indexed = idx.consent(on_chain.consent_id)
        assert indexed is not None
        assert indexed["state"] == on_chain.state.name.lower() and indexed["expiry"] == on_chain.expiry
        assert indexed["purposes"] == on_chain.purposes and indexed["updated_block"] == on_chain.updated_block
        history = idx.consent_history(on_chain.consent_id)
        assert (
            history
            == next(c for c in idx.subject_consents(subject.address) if c["consent_id"] == hx(on_chain.consent_id))[
                "history"
            ]
        )
    assert idx.consent(rand32()) is None and idx.consent_history(rand32()) == []
    assert idx.delegates_of(a["subject2"].address) == [
        {
            "delegate": a["guardian"].address,
            "expiry": 0,
            "active": False,
            "appointed_block": idx.delegates_of(a["subject2"].address)[0]["appointed_block"],
            "updated_block": idx.delegates_of(a["subject2"].address)[0]["updated_block"],
        }
    ]


def test_consent_events_until(idx: Indexer, scenario: Scenario) -> None:
    sc, a = scenario, scenario.actors
    everything = idx.consent_events_until(sc.end_block, limit=None)["items"]
    assert names(everything) == [
        "ConsentGiven",
        "ConsentGiven",
        "ConsentGiven",
        "DelegateAppointed",
        "ConsentRenewed",
        "ConsentWithdrawn",
        "DelegateRevoked",
    ]
    before = idx.consent_events_until(sc.blocks["withdraw"] - 1, limit=None)["items"]
    assert names(before) == names(everything)[:5]
    at = idx.consent_events_until(sc.blocks["withdraw"], limit=None)["items"]
    assert names(at)[-1] == "ConsentWithdrawn" and at[-1]["consent_id"] == sc.consents["s1_holder"]
    renewed = everything[4]
    assert renewed["expiry"] == sc.expiries["exp2"] and renewed["scope"]["kind"] == "holder"
    assert everything[3]["delegate"] == a["guardian"].address and everything[3]["expiry"] == sc.expiries["exp"]
    only_s2 = idx.consent_events_until(sc.end_block, subjects=[a["subject2"].address], limit=None)["items"]
    assert names(only_s2) == ["ConsentGiven", "DelegateAppointed", "ConsentRenewed", "DelegateRevoked"]
    assert idx.consent_events_until(sc.end_block, subjects=[], limit=None)["items"] == []
    page1 = idx.consent_events_until(sc.end_block, limit=4)
    page2 = idx.consent_events_until(sc.end_block, after=page1["next_cursor"], limit=4)
    assert page1["items"] + page2["items"] == everything and page2["next_cursor"] is None


def test_lineage_queries(idx: Indexer, scenario: Scenario) -> None:
    sc = scenario
    assert [c["content_root"] for c in idx.children_of(sc.roots["A"])] == [sc.root("C"), sc.root("E")]
    assert idx.children_of(sc.roots["D"]) == []

    def walk(items: list[dict[str, Any]]) -> list[tuple[str, int]]:
        return [(i["content_root"], i["depth"]) for i in items]

    assert walk(idx.descendants_of(sc.roots["A"])) == [(sc.root("C"), 1), (sc.root("E"), 1), (sc.root("D"), 2)]
    assert walk(idx.descendants_of(sc.roots["B"])) == [(sc.root("C"), 1), (sc.root("D"), 2)]
    assert walk(idx.descendants_of(sc.roots["A"], max_depth=1)) == [(sc.root("C"), 1), (sc.root("E"), 1)]
    assert walk(idx.descendants_of(sc.roots["A"], limit=1, offset=2)) == [(sc.root("D"), 2)]
    assert idx.descendants_of(sc.roots["D"]) == []
    ancestors = walk(idx.ancestors_of(sc.roots["D"]))
    assert ancestors[0] == (sc.root("C"), 1) and sorted(ancestors[1:]) == sorted([(sc.root("A"), 2), (sc.root("B"), 2)])
    d = idx.descendants_of(sc.roots["A"])[2]
    assert d["holder"] == sc.actors["user1"].address and d["status"] == "suspended" and d["tier"] == "open"


def test_access_and_use_queries(idx: Indexer, scenario: Scenario) -> None:
    sc, a = scenario, scenario.actors
    (ap,) = idx.approvals_for(sc.roots["A"])["items"]
    assert ap["request_id"] == sc.requests["r1"] and ap["requester"] == a["user1"].address
    assert ap["reviewer"] == a["reviewer"].address and ap["purposes"] == datause.HMB
    assert ap["request_status"] == "approved" and ap["expiry"] == sc.expiries["exp"]
    assert ap["block_number"] == sc.blocks["approve_r1"]
    (ap_c,) = idx.approvals_for(sc.root("C"))["items"]
    assert ap_c["request_id"] == sc.requests["r3"] and ap_c["request_status"] == "revoked"
    assert [x["request_id"] for x in idx.approvals_for(sc.roots["F"])["items"]] == [sc.requests["r4"]]
    assert idx.approvals_for(sc.roots["A"], from_block=sc.blocks["approve_r1"] + 1)["items"] == []
    assert idx.approvals_for(sc.roots["A"], sc.blocks["approve_r1"])["items"] == [ap]

    uses = idx.uses_of(sc.roots["A"])["items"]
    assert [u["use_number"] for u in uses] == [1, 2]
    assert [u["result_digest"] for u in uses] == [hx(d) for d in sc.result_digests]
    assert all(u["user"] == a["user1"].address and u["request_id"] == sc.requests["r1"] for u in uses)
    assert idx.uses_of(sc.roots["A"], from_block=sc.blocks["first_use_A"] + 1)["items"] == uses[1:]
    (use_b,) = idx.uses_of(sc.roots["B"])["items"]
    assert use_b["request_id"] == 0
    assert len(idx.uses_by(a["user1"].address)["items"]) == 3 and idx.uses_by(a["user2"].address)["items"] == []
    assert idx.uses_under(sc.requests["r1"]) == uses

    r3 = idx.request(sc.requests["r3"])
    assert r3 is not None and r3["status"] == "revoked" and r3["requester"] == a["user2"].address
    assert [d["decision"] for d in idx.decisions_for(sc.requests["r3"])] == ["approved", "revoked"]
    assert [(r["request_id"], r["status"]) for r in idx.requests_for(sc.root("C"))["items"]] == [
        (sc.requests["r2"], "denied"),
        (sc.requests["r3"], "revoked"),
    ]
    assert idx.request(999) is None


def test_withdrawals_suspensions_and_relays(idx: Indexer, scenario: Scenario) -> None:
    sc, a = scenario, scenario.actors
    (w,) = idx.withdrawals_of(a["subject1"].address)["items"]
    assert w["block_number"] == sc.blocks["withdraw"] and w["consent_id"] == sc.consents["s1_holder"]
    assert w["scope"] == {"kind": "holder", "holder": a["holder"].address} and w["purpose_codes"] == ["HMB"]
    assert idx.withdrawals_of(a["subject2"].address)["items"] == []

    sus_c = idx.suspensions_of(sc.root("C"))
    assert [(s["action"], s["restored_status"]) for s in sus_c] == [("suspended", None), ("reinstated", "active")]
    assert all(s["auditor"] == a["auditor"].address and s["target_kind"] == "dataset" for s in sus_c)
    assert [s["action"] for s in idx.suspensions_of(a["user2"].address)] == ["suspended", "reinstated"]

    failed = idx.relay_status(*sc.failed_forward)
    assert failed["executed"] is True and failed["success"] is False
    assert failed["block_number"] == sc.blocks["failed_forward"]
    ok = idx.relay_status(*sc.ok_forward)
    assert ok["executed"] is True and ok["success"] is True and ok["tx_hash"] == failed["tx_hash"]
    missing = idx.relay_status(a["auditor"].address, 10_000)
    assert missing["executed"] is False and missing["indexed_block"] == idx.last_block
    nonces = [r["nonce"] for r in idx.relays_of(a["auditor"].address, limit=None)["items"]]
    assert nonces == list(range(len(nonces))) and len(nonces) == sc.failed_forward[1] + 1


def test_index_stands_in_for_the_chain_in_coverage(chain: Chain, idx: Indexer, scenario: Scenario) -> None:
    sc, a = scenario, scenario.actors
    logs = LogEventSource(chain.ledger.client)
    index = IndexEventSource(idx)
    assert isinstance(index, EventSource)
    for block in (sc.blocks["renew"], sc.blocks["withdraw"], sc.end_block):
        assert index.consent_events_until(block) == logs.consent_events_until(block)
    who = [a["subject2"].address]
    assert index.consent_events_until(sc.end_block, who) == logs.consent_events_until(sc.end_block, who)
    assert index.consent_events_until(sc.end_block, []) == logs.consent_events_until(sc.end_block, []) == []
    assert index.withdrawals_of(a["subject1"].address) == logs.withdrawals_of(a["subject1"].address)
    for name in ("A", "B", "C", "D", "F"):
        root = sc.roots[name]
        assert index.children_of(root) == logs.children_of(root)
        assert index.approvals_for(root) == logs.approvals_for(root)
        assert index.uses_of(root) == logs.uses_of(root)
    later = sc.blocks["first_use_A"] + 1
    assert index.uses_of(sc.roots["A"], later) == logs.uses_of(sc.roots["A"], later)


def test_every_answer_is_json(idx: Indexer, scenario: Scenario) -> None:
    answers = all_queries(idx, scenario)
    answers["status"] = idx.status()
    answers["stats"] = idx.stats()
    text = json.dumps(answers)
    assert json.loads(text) == answers
    status = idx.status()
    assert status["lag"] == 0 and status["head"] == status["last_block"] and status["running"] is False
    assert status["chain_id"] == 31337 and status["last_report"]["events"] == 0
    assert idx.lag() == 0


# ---------------------------------------------------------------------------------------------
# restart, rebuild, confirmations, other deployments, reorganisations, following


def more_writes(chain: Chain, sc: Scenario, tag: str) -> int:
    """A few more events; returns the last block."""
    a = sc.actors
    chain.ledger.grant_role(chain.admin, "reviewer", Account.create().address)
    root = rand32()
    sc.roots[tag] = root
    info = chain.ledger.write(
        a["holder"], "DatasetRegistry", "register", root, rand32(), [sc.roots["C"]], rand32(), 0, 0x0101, 0, rand32()
    )
    chain.ledger.record_use(a["user1"], root, datause.Purpose.of("GRU"))
    return chain.head() if chain.head() >= info.block else info.block


def test_resume_after_restart(chain: Chain, idx: Indexer, scenario: Scenario, tmp_path: Path) -> None:
    before = idx.stats()
    last = idx.last_block
    end = more_writes(chain, scenario, "G")
    new = chain_counts(chain, last + 1, end)
    # a new process: a new Indexer on the same database continues from the last block
    with Indexer(chain.settings, chain.client) as again:
        report = again.sync()
        assert report.rebuilt is None and report.from_block == last + 1 and report.to_block == end
        assert report.events == sum(new.values())
        stats = again.stats()
    assert stats["events"] == before["events"] + report.events
    assert stats["datasets"] == before["datasets"] + 1 and stats["uses"] == before["uses"] + 1
    # the original instance sees the same committed state, and has nothing left to do
    assert idx.last_block == end and idx.sync().events == 0
    assert [c["content_root"] for c in idx.children_of(scenario.roots["C"])][-1] == scenario.root("G")
    # identical to an index built from scratch
    with Indexer(chain.settings, chain.client, path=tmp_path / "fresh.sqlite3") as fresh:
        fresh.sync()
        assert dump(fresh) == dump(idx)


def test_rebuild_gives_identical_results(idx: Indexer, scenario: Scenario) -> None:
    tables, answers = dump(idx), all_queries(idx, scenario)
    report = idx.rebuild()
    assert report.rebuilt == "requested"
    assert report.to_block == idx.last_block and report.events == idx.stats()["events"]
    assert dump(idx) == tables
    assert all_queries(idx, scenario) == answers
    # re-deriving the normalised tables from the events table gives the same rows too
    idx.reproject()
    assert dump(idx) == tables


def test_ingest_refuses_gaps_and_repeats(idx: Indexer) -> None:
    last, stats = idx.last_block, idx.stats()
    with pytest.raises(IndexStateError):
        idx.ingest([], from_block=last + 5, to_block=last + 6)
    with pytest.raises(IndexStateError):
        idx.ingest([], from_block=last, to_block=last)
    assert idx.last_block == last and idx.stats() == stats


def test_confirmations_are_honoured(chain: Chain, scenario: Scenario, tmp_path: Path) -> None:
    settings = replace(chain.settings, confirmations=2)
    client = ChainClient(settings, record=chain.client.record, artifacts=chain.client.artifacts, check_record=False)
    with Indexer(settings, client, path=tmp_path / "confirmed.sqlite3") as idx:
        head = chain.head()
        report = idx.sync()
        assert report.safe_head == head - 2 and idx.last_block == head - 2 and idx.lag() == 2
        newcomer = Account.create().address
        info = chain.ledger.grant_role(chain.admin, "auditor", newcomer)
        idx.sync()
        assert idx.last_block == info.block - 2 and idx.roles_of(newcomer) == []
        chain.mine()
        idx.sync()
        assert idx.last_block == info.block - 1 and idx.roles_of(newcomer) == []
        chain.mine()
        report = idx.sync()
        assert idx.last_block == info.block and idx.roles_of(newcomer) == ["auditor"] and report.events == 2
        assert idx.status()["lag"] == 2 and idx.status()["confirmations"] == 2


def test_another_deployment_or_chain_is_rebuilt(chain: Chain, scenario: Scenario, tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite3"
    with Indexer(chain.settings, chain.client, path=path) as first:
        n = first.sync().events
        assert n > 60
    record2 = deploy_all(ChainClient(chain.settings, artifacts=chain.client.artifacts, check_record=False))
    client2 = ChainClient(chain.settings, record=record2, artifacts=chain.client.artifacts)
    with Indexer(chain.settings, client2, path=path) as second:
        report = second.sync()
        assert report.rebuilt is not None and "another deployment" in report.rebuilt
        assert report.from_block == record2.deploy_block
        # the new deployment has only its constructor's admin grant
        assert second.stats()["events"] == report.events == 1
        assert names(second.events(limit=None)["items"]) == ["RoleGranted"]
        assert second.dataset(scenario.roots["A"]) is None
    with Indexer(chain.settings, chain.client, path=path) as back:
        report = back.sync()
        assert report.rebuilt is not None and report.events >= n
        assert back.dataset(scenario.roots["A"]) is not None
    # an index made for another chain id is rebuilt too
    other = tmp_path / "other-chain.sqlite3"
    store = IndexStore(other)
    store.reset(IndexIdentity(chain_id=1, deploy_block=0, addresses={"LedgerRoles": "0x" + "11" * 20}))
    store.close()
    with Indexer(chain.settings, chain.client, path=other) as idx:
        report = idx.sync()
        assert report.rebuilt is not None and "chain 1" in report.rebuilt and report.events >= n
    # and so is a database with another schema version
    conn = sqlite3.connect(other)
    conn.execute("UPDATE meta SET value = '0' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    with Indexer(chain.settings, chain.client, path=other) as idx:
        assert idx.identity() is None and idx.stats()["events"] == 0
        assert idx.sync().rebuilt == "new index"


def test_reorganisation_rolls_back_to_the_common_block(chain: Chain, scenario: Scenario, tmp_path: Path) -> None:
    with Indexer(chain.settings, chain.client, path=tmp_path / "reorg.sqlite3") as idx:
        idx.sync()
        snapshot = chain.rpc("evm_snapshot", [])
        fork_point = chain.head()
        end = more_writes(chain, scenario, "H")
        report = idx.sync()
        assert report.to_block == end and idx.dataset(scenario.roots["H"]) is not None
        # the chain goes back and grows another way, past the old head
        chain.rpc("evm_revert", [snapshot])
        chain.client.nonces.reset()
        more_writes(chain, scenario, "J")
        chain.mine(3)
        report = idx.sync()
        assert 1 <= report.reorg_depth <= end - fork_point and report.rebuilt is None
        assert idx.dataset(scenario.roots["H"]) is None and idx.dataset(scenario.roots["J"]) is not None
        assert idx.uses_of(scenario.roots["H"])["items"] == []
        assert len(idx.uses_of(scenario.roots["J"])["items"]) == 1
        with Indexer(chain.settings, chain.client, path=tmp_path / "reorg-fresh.sqlite3") as fresh:
            fresh.sync()
            expected = dump(fresh)
        assert dump(idx) == expected
        # when no remembered block matches any more, the index is rebuilt
        conn = sqlite3.connect(idx.path)
        conn.execute("UPDATE blocks SET hash = '0xdead'")
        conn.execute("UPDATE meta SET value = '0xdead' WHERE key = 'last_block_hash'")
        conn.commit()
        conn.close()
        report = idx.sync()
        assert report.rebuilt is not None and "reorganisation" in report.rebuilt
        assert dump(idx) == expected


def test_background_thread_follows_the_chain(chain: Chain, idx: Indexer) -> None:
    idx.sync()
    idx.start(interval=0.05)
    try:
        assert idx.running and idx.status()["running"]
        newcomer = Account.create().address
        info = chain.ledger.grant_role(chain.admin, "user", newcomer)
        assert idx.wait_for_block(info.block, timeout=15)
        assert idx.roles_of(newcomer) == ["user"]
        # a failing sync is reported and retried, not fatal
        original = idx.source.head
        calls = {"n": 0}

        def flaky() -> int:
            calls["n"] += 1
            if calls["n"] == 1:
                raise NodeUnavailable("node went away")
            return original()

        idx.source.head = flaky  # type: ignore[method-assign]
        info = chain.ledger.grant_role(chain.admin, "user", Account.create().address)
        assert idx.wait_for_block(info.block, timeout=15)
        assert calls["n"] >= 2
        idx.source.head = original  # type: ignore[method-assign]
    finally:
        idx.stop()
    assert not idx.running and idx.last_error is None
    assert seq_block(idx.events(limit=None)["items"][-1]["seq"]) == idx.last_block


# ---------------------------------------------------------------------------------------------
# the projection states the contract's rules


def test_an_override_lapses_when_the_holder_sets_a_new_embargo(chain: Chain, idx: Indexer, scenario: Scenario) -> None:
    """``AccessRegistry.embargoOverridden`` covers only the embargo end the auditor overrode; the
    index's ``embargo_overridden`` follows it through new embargo ends, the old end again, and a
    second override."""
    a, ledger = scenario.actors, chain.ledger
    registry = chain.client.contract("AccessRegistry")
    root = rand32()
    first, second = ledger.now() + 10 * DAY, ledger.now() + 20 * DAY
    ledger.write(a["holder"], "DatasetRegistry", "register", root, rand32(), [], rand32(), 2, 0x0101, first, rand32())

    def indexed_and_chain() -> tuple[bool, bool]:
        idx.sync()
        row = idx.dataset(root)
        assert row is not None
        return bool(row["embargo_overridden"]), bool(registry.functions.embargoOverridden(root).call())

    assert indexed_and_chain() == (False, False)
    ledger.override_embargo(a["auditor"], root, rand32())
    assert indexed_and_chain() == (True, True)
    ledger.set_sharing(a["holder"], root, Tier.CONTROLLED, second)  # a new embargo: not overridden
    assert indexed_and_chain() == (False, False)
    ledger.set_sharing(a["holder"], root, Tier.CONTROLLED, first)  # the overridden end again
    assert indexed_and_chain() == (True, True)
    ledger.set_sharing(a["holder"], root, Tier.CONTROLLED, 0)  # no embargo: nothing overridden
    assert indexed_and_chain() == (False, False)
    ledger.set_sharing(a["holder"], root, Tier.CONTROLLED, second)
    ledger.override_embargo(a["auditor"], root, rand32())
    assert indexed_and_chain() == (True, True)
    ledger.set_sharing(a["holder"], root, Tier.REGISTERED, second)  # a tier change keeps the end
    assert indexed_and_chain() == (True, True)
    # re-deriving the rows from the stored events gives the same answer
    idx.reproject()
    assert idx.dataset(root)["embargo_overridden"] is True  # type: ignore[index]
