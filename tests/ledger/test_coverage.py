"""Consent coverage, consent filters, their recheck and withdrawal impact, on a real anvil and a real
js-ipfs node.

The cohort: 30 pseudonymous subjects of one holder's controlled dataset with mixed consents
(holder-wide HMB, dataset-scoped DS with a MONDO code, a delegate's grant, one expired by a time
jump, one renewed, one withdrawn, modifiers, a grantee-only consent, other scopes, none), filtered
for disease-specific research on type 2 diabetes (MONDO:0005148) with publication.

The cohort's world jumps chain time, so the module is marked ``moves_chain_time``: its ``ledger``
(tests/ledger/conftest.py) is on an anvil of its own and the session chain's clock never moves.
Every actor here is a fresh key. The time jump is kept to a few minutes: relayed requests carry
wall-clock deadlines an hour ahead.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from ledger.content.files import hash_folder
from ledger.content.merkle import subject_tree
from ledger.content.metadata import ActivityDescription, ActivityType, DatasetMetadata, Licence
from ledger.core.classification import Classification, Tier
from ledger.core.errors import DatasetNotFound, InvalidInput
from ledger.core.records import ConsentScope, hex32
from ledger.history.index import Indexer, IndexEventSource
from ledger.history.sources import ConsentEventKind, EventSource, LogEventSource
from ledger.rules import datause
from ledger.services.cohort import in_force_from_history
from ledger.services.coverage import CoverageResult, compute_coverage, register_consent_filter
from ledger.services.impact import withdrawal_impact
from ledger.services.ledger import Ledger, Registration
from ledger.services.recheck import recheck_filter

T2D = 5148  # MONDO:0005148 type 2 diabetes mellitus
OTHER_DISEASE = 7254  # MONDO:0007254 breast cancer
YEAR = 365 * 86400
PURPOSE = datause.Purpose.of("DS", ["publishes"], disease="MONDO:0005148")

pytestmark = pytest.mark.moves_chain_time


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def write_rows(folder: Path, name: str, subjects: Sequence[str]) -> Path:
    """A small synthetic CSV keyed by pseudonymous address (no names, no dates of birth)."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["subject,age_band,hba1c_mmol_mol,bmi_band"]
    for s in subjects:
        digest = hashlib.sha256(s.encode()).digest()
        band = 40 + digest[0] % 5 * 10
        lines.append(f"{s},{band}-{band + 9},{40 + digest[1] % 50},{digest[2] % 4}")
    (folder / name).write_text("\n".join(lines) + "\n")
    return folder


def write_text(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)
    return folder


def metadata_for(
    holder: str,
    folder: Path,
    *,
    title: str,
    tier: Tier = Tier.CONTROLLED,
    parents: tuple[str, ...] = (),
    activity: ActivityDescription | None = None,
    subject_count: int | None = None,
) -> DatasetMetadata:
    now = datetime.now(UTC)
    return DatasetMetadata(
        title={"en": title},
        description={"en": f"{title}: synthetic rows for tests."},
        classification=Classification.CLINICAL_RESEARCH,
        tier=tier,
        licence=Licence(spdx="CC-BY-4.0"),
        data_use=("DUO:0000006",),
        files=tuple(hash_folder(folder)),
        parents=parents,
        activity=activity or ActivityDescription(type=ActivityType.COLLECTION, agent=holder, started=now, ended=now),
        subject_count=subject_count,
        holder=holder,
        created=now,
    )


def verify_subject_on_chain(ledger: Ledger, root: bytes, subject: str, proof: Sequence[str]) -> bool:
    fn = ledger.datasets.functions.verifySubject(root, subject, [bytes.fromhex(p[2:]) for p in proof])
    return bool(ledger.client.call(fn))


# ---------------------------------------------------------------------------------------------
# the world: deployment, parties, cohort, consents
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def world(ledger: Ledger, tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    started = time.monotonic()
    tmp = tmp_path_factory.mktemp("coverage-files")
    admin = Account.from_key(ledger.settings.relayer_private_key())
    holder, reviewer, user, user2, delegate, other_holder = (Account.create() for _ in range(6))
    ledger.grant_role(admin, "holder", holder.address)
    ledger.grant_role(admin, "reviewer", reviewer.address)
    ledger.grant_role(admin, "user", user.address)
    ledger.grant_role(admin, "user", user2.address)

    people: list[LocalAccount] = [Account.create() for _ in range(30)]
    subjects = [p.address for p in people]

    parent = ledger.register_dataset(
        holder,
        metadata_for(
            holder.address,
            write_rows(tmp / "cohort", "cohort.csv", subjects),
            title="Diabetes cohort",
            subject_count=30,
        ),
        subjects=subjects,
    ).content_root
    other = ledger.register_dataset(
        holder,
        metadata_for(
            holder.address,
            write_rows(tmp / "other", "other.csv", subjects[:5]),
            title="Imaging cohort",
            subject_count=5,
        ),
        subjects=subjects[:5],
    ).content_root

    now = ledger.now()
    long = now + YEAR
    short = now + 120
    at_holder = ConsentScope.holder(holder.address)
    on_parent = ConsentScope.dataset(parent)
    HMB, DS, GRU, POA, NRES = datause.HMB, datause.DS, datause.GRU, datause.POA, datause.NRES

    def grant(i: int, scope: ConsentScope, purposes: int, expiry: int = long, **kw: Any) -> None:
        ledger.grant_consent(people[i], scope, purposes, expiry, **kw)

    expected: dict[int, bool] = {}
    for i in range(0, 8):  # holder-wide HMB: covers DS for any disease
        grant(i, at_holder, HMB)
        expected[i] = True
    for i in range(8, 14):  # dataset-scoped DS for type 2 diabetes
        grant(i, on_parent, DS, disease=T2D)
        expected[i] = True
    for i in (14, 15):  # dataset-scoped DS for another disease
        grant(i, on_parent, DS, disease=OTHER_DISEASE)
        expected[i] = False
    # 16: a guardian appointed as delegate grants holder-wide HMB for the subject
    ledger.appoint_delegate(people[16], delegate.address, long)
    ledger.grant_consent(delegate, at_holder, HMB, long, subject=people[16].address)
    expected[16] = True
    # 17: expires by the time jump; 18: same, but renewed before it
    grant(17, at_holder, HMB, short)
    expected[17] = False
    grant(18, at_holder, HMB, short)
    ledger.renew_consent(people[18], at_holder, long)
    expected[18] = True
    # 19: withdrawn
    grant(19, at_holder, HMB)
    ledger.withdraw_consent(people[19], at_holder)
    expected[19] = False
    # 20: GRU requiring publication (the purpose publishes); 21: GRU requiring ethics approval (not declared)
    grant(20, at_holder, GRU | datause.PUB)
    expected[20] = True
    grant(21, at_holder, GRU | datause.IRB)
    expected[21] = False
    grant(22, at_holder, POA)  # population/ancestry only
    expected[22] = False
    grant(23, on_parent, HMB, grantee=user.address)  # only for one user
    expected[23] = False
    grant(24, ConsentScope.holder(other_holder.address), HMB)  # another holder's datasets
    expected[24] = False
    grant(25, ConsentScope.dataset(other), HMB)  # another dataset of this holder
    expected[25] = False
    expected[26] = False  # never consented
    # 27: withdrawn, then granted again
    grant(27, on_parent, DS, disease=T2D)
    withdrawal_27 = ledger.withdraw_consent(people[27], on_parent).block
    grant(27, on_parent, DS, disease=T2D)
    expected[27] = True
    grant(28, at_holder, NRES | datause.NCU)  # no restriction but no commercial use (not commercial)
    expected[28] = True
    expected[29] = False

    before_jump = int(ledger.client.w3.eth.block_number)
    ledger.wait_until(ledger.now() + 300)  # past the short expiry; well inside relayed deadlines
    return SimpleNamespace(
        admin=admin,
        holder=holder,
        reviewer=reviewer,
        user=user,
        user2=user2,
        delegate=delegate,
        people=people,
        subjects=subjects,
        parent=parent,
        other=other,
        expected=expected,
        before_jump=before_jump,
        withdrawal_27=withdrawal_27,
        tmp=tmp,
        setup_seconds=time.monotonic() - started,
    )


@pytest.fixture(scope="module", params=["logs", "index"])
def events(
    request: pytest.FixtureRequest, ledger: Ledger, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EventSource]:
    """The history, read straight from the chain's logs or through the SQLite event index (which
    syncs before every answer): every test that reads history runs against both."""
    if request.param == "logs":
        source: EventSource = LogEventSource(ledger.client)
        assert isinstance(source, EventSource)
        yield source
        return

    indexer = Indexer(ledger.settings, ledger.client, path=tmp_path_factory.mktemp("coverage-index") / "index.sqlite3")
    try:
        source = IndexEventSource(indexer)
        assert isinstance(source, EventSource)
        yield source
    finally:
        indexer.close()


@pytest.fixture(scope="module")
def coverage(ledger: Ledger, world: SimpleNamespace) -> CoverageResult:
    return compute_coverage(ledger, world.parent, world.subjects, PURPOSE)


@pytest.fixture(scope="module")
def filtered(ledger: Ledger, world: SimpleNamespace, coverage: CoverageResult) -> Registration:
    folder = write_rows(world.tmp / "filtered", "cohort-t2d.csv", coverage.covered)
    return register_consent_filter(
        ledger,
        world.holder,
        world.parent,
        coverage,
        files=folder,
        title="Diabetes cohort, consented for T2D research",
        description="Subjects whose consent covers disease-specific research on type 2 diabetes.",
        licence="CC-BY-4.0",
        data_use=["DS"],
    )


# ---------------------------------------------------------------------------------------------
# 1. coverage
# ---------------------------------------------------------------------------------------------


def test_coverage_matches_the_python_model(ledger: Ledger, world: SimpleNamespace, coverage: CoverageResult) -> None:
    want = [s for i, s in enumerate(world.subjects) if world.expected[i]]
    assert coverage.covered == want
    assert coverage.excluded == [s for i, s in enumerate(world.subjects) if not world.expected[i]]
    assert len(coverage.covered) == 19
    for i, s in enumerate(world.subjects):
        assert (s in coverage.covered) is world.expected[i], f"subject {i}"
    assert coverage.subjects_match_dataset
    assert world.before_jump < coverage.block <= ledger.client.w3.eth.block_number
    assert coverage.timestamp == ledger.client.w3.eth.get_block(coverage.block)["timestamp"]

    assert coverage.subject_root == subject_tree(want).root
    data = coverage.to_json()
    assert data["covered_count"] == 19 and data["purpose"]["disease"] == "MONDO:0005148"
    assert data["subject_root"] == hex32(coverage.subject_root)


def test_coverage_agrees_with_replayed_history(
    ledger: Ledger, world: SimpleNamespace, coverage: CoverageResult, events: EventSource
) -> None:
    history = events.consent_events_until(coverage.block, world.subjects)
    kinds = {e.kind for e in history}
    assert {ConsentEventKind.GIVEN, ConsentEventKind.RENEWED, ConsentEventKind.WITHDRAWN} <= kinds
    assert ConsentEventKind.DELEGATE_APPOINTED in kinds
    decided = in_force_from_history(
        history,
        world.subjects,
        world.parent,
        world.holder.address,
        PURPOSE,
        block=coverage.block,
        timestamp=coverage.timestamp,
    )
    assert [s for s in world.subjects if decided[s] is not None] == coverage.covered
    basis = decided[world.subjects[16]]
    assert basis is not None and basis.actor == world.delegate.address


def test_coverage_is_pinned_to_a_block(ledger: Ledger, world: SimpleNamespace, coverage: CoverageResult) -> None:
    earlier = compute_coverage(ledger, world.parent, world.subjects, PURPOSE, block=world.before_jump)
    assert earlier.block == world.before_jump
    s17 = world.subjects[17]
    assert s17 in earlier.covered and s17 not in coverage.covered  # in force before the jump, expired after
    # before subject 27 withdrew and granted again, the first grant was in force
    at_withdrawal = compute_coverage(ledger, world.parent, world.subjects, PURPOSE, block=world.withdrawal_27)
    assert world.subjects[27] not in at_withdrawal.covered
    before = compute_coverage(ledger, world.parent, world.subjects, PURPOSE, block=world.withdrawal_27 - 1)
    assert world.subjects[27] in before.covered


def test_coverage_with_grantee_counts_grantee_only_consent(
    ledger: Ledger, world: SimpleNamespace, coverage: CoverageResult
) -> None:
    at = coverage.block
    for_user = compute_coverage(ledger, world.parent, world.subjects, PURPOSE, block=at, grantee=world.user.address)
    assert set(for_user.covered) == set(coverage.covered) | {world.subjects[23]}
    assert for_user.grantee == world.user.address and for_user.to_json()["grantee"] == world.user.address
    for_other = compute_coverage(ledger, world.parent, world.subjects, PURPOSE, block=at, grantee=world.user2.address)
    assert for_other.covered == coverage.covered


def test_coverage_refuses_bad_input(ledger: Ledger, world: SimpleNamespace) -> None:
    with pytest.raises(DatasetNotFound):
        compute_coverage(ledger, b"\x11" * 32, world.subjects, PURPOSE)
    with pytest.raises(InvalidInput):
        compute_coverage(ledger, world.parent, [*world.subjects, world.subjects[0]], PURPOSE)
    partial = compute_coverage(ledger, world.parent, world.subjects[:10], PURPOSE)
    assert not partial.subjects_match_dataset


# ---------------------------------------------------------------------------------------------
# 2-3. filter and recheck
# ---------------------------------------------------------------------------------------------


def test_filter_is_registered_as_derived_dataset(
    ledger: Ledger, world: SimpleNamespace, coverage: CoverageResult, filtered: Registration
) -> None:
    rec = ledger.get_dataset(filtered.content_root)
    assert rec.parents == (world.parent,)
    assert rec.subject_root == coverage.subject_root == filtered.subject_root
    assert rec.holder == world.holder.address and rec.tier == Tier.CONTROLLED
    meta = ledger.ipfs.get_json(filtered.metadata_cid, DatasetMetadata)
    assert meta.subject_count == 19
    assert meta.activity is not None and meta.activity.type is ActivityType.CONSENT_FILTER
    params = meta.activity.consent_filter
    assert params is not None
    assert (params.purpose_mask, params.disease_code, params.block_number) == (
        PURPOSE.mask,
        "MONDO:0005148",
        coverage.block,
    )
    assert meta.activity.software is not None and meta.activity.software.name == "medledger"
    assert meta.activity.agent == world.holder.address
    assert rec.activity_digest == meta.activity.digest()
    # each covered subject can prove membership on chain

    tree = subject_tree(coverage.covered)
    s = coverage.covered[3]
    assert verify_subject_on_chain(ledger, filtered.content_root, s, tree.proof_hex((s,)))


def test_register_refuses_inconsistent_coverage(
    ledger: Ledger, world: SimpleNamespace, coverage: CoverageResult
) -> None:
    folder = write_rows(world.tmp / "refused", "x.csv", coverage.covered[:2])
    kw: dict[str, Any] = dict(files=folder, title="x", description="x", licence="CC0-1.0", data_use=["DS"])
    with pytest.raises(InvalidInput, match="not on the parent"):
        register_consent_filter(ledger, world.holder, world.other, coverage, **kw)
    partial = compute_coverage(ledger, world.parent, world.subjects[:10], PURPOSE)
    with pytest.raises(InvalidInput, match="full subject list"):
        register_consent_filter(ledger, world.holder, world.parent, partial, **kw)
    empty = dataclasses.replace(coverage, covered=[], excluded=list(world.subjects))
    with pytest.raises(InvalidInput, match="nothing to register"):
        register_consent_filter(ledger, world.holder, world.parent, empty, **kw)


def test_recheck_matches(
    ledger: Ledger, world: SimpleNamespace, coverage: CoverageResult, filtered: Registration, events: EventSource
) -> None:
    result = recheck_filter(ledger, events, filtered.content_root, world.subjects)
    assert result.ok, result.problems
    assert result.match and result.subjects_match_parent
    assert result.block == coverage.block and result.purpose == PURPOSE
    assert result.expected == coverage.covered
    assert result.recomputed_subject_root == result.recorded_subject_root == coverage.subject_root
    assert result.contract_disagreements == []
    assert result.recorded_subject_count == 19
    assert result.activity_source == "activity-document"
    assert result.delegated == {world.subjects[16]: (world.delegate.address, True)}
    # with the filter's own list, nothing differs
    listed = recheck_filter(ledger, events, filtered.content_root, world.subjects, filter_subjects=coverage.covered)
    assert listed.ok and listed.filter_subjects_verified and listed.differing == []
    data = result.to_json()
    assert data["ok"] is True and data["expected_count"] == 19
    assert data["basis"][world.subjects[0]]["scope"] == {"kind": "holder", "holder": world.holder.address}


def test_recheck_reports_a_wrong_parent_list(
    ledger: Ledger, world: SimpleNamespace, filtered: Registration, events: EventSource
) -> None:
    result = recheck_filter(ledger, events, filtered.content_root, world.subjects[1:])
    assert not result.subjects_match_parent and not result.ok
    assert any("parent's subject root" in p for p in result.problems)


def test_recheck_of_a_dataset_that_is_not_a_filter(ledger: Ledger, world: SimpleNamespace, events: EventSource) -> None:
    result = recheck_filter(ledger, events, world.parent, world.subjects)
    assert not result.ok and not result.match
    assert any("not a consent filter" in p for p in result.problems)


@pytest.fixture(scope="module")
def tampered(ledger: Ledger, world: SimpleNamespace, coverage: CoverageResult) -> SimpleNamespace:
    """A "filter" that claims the same purpose and block but leaves out a consenting subject and
    slips in one who had withdrawn."""
    dropped, added = world.subjects[0], world.subjects[19]
    wrong = [s for s in coverage.covered if s != dropped] + [added]
    bad = dataclasses.replace(coverage, covered=wrong)
    folder = write_rows(world.tmp / "tampered", "cohort-t2d-v2.csv", wrong)
    reg = register_consent_filter(
        ledger,
        world.holder,
        world.parent,
        bad,
        files=folder,
        title="Diabetes cohort, consented for T2D research (v2)",
        description="Subjects whose consent covers disease-specific research on type 2 diabetes.",
        licence="CC-BY-4.0",
        data_use=["DUO:0000007"],
    )
    return SimpleNamespace(registration=reg, wrong=wrong, dropped=dropped, added=added)


def test_recheck_detects_a_tampered_filter(
    ledger: Ledger, world: SimpleNamespace, tampered: SimpleNamespace, events: EventSource
) -> None:
    root = tampered.registration.content_root
    blind = recheck_filter(ledger, events, root, world.subjects)
    assert not blind.match and not blind.ok
    assert any("pass the filter's subject list" in p for p in blind.problems)
    result = recheck_filter(ledger, events, root, world.subjects, filter_subjects=tampered.wrong)
    assert not result.match and not result.ok
    assert result.filter_subjects_verified is True
    assert result.included_without_consent == [tampered.added]
    assert result.missing_with_consent == [tampered.dropped]
    assert result.differing == sorted([tampered.added, tampered.dropped])
    assert result.contract_disagreements == []  # the chain's history is consistent; the filter is not
    data = result.to_json()
    assert data["match"] is False and data["included_without_consent"] == [tampered.added]


def test_grantee_specific_filter_rechecks_with_its_grantee(
    ledger: Ledger, world: SimpleNamespace, coverage: CoverageResult, events: EventSource
) -> None:
    # computed for one user, the filter also holds the subject who consented to that user only
    for_user = compute_coverage(
        ledger, world.parent, world.subjects, PURPOSE, block=coverage.block, grantee=world.user.address
    )
    key = "grantee-" + type(events).__name__  # one filter per event source: distinct files, distinct roots
    reg = register_consent_filter(
        ledger,
        world.holder,
        world.parent,
        for_user,
        files=write_rows(world.tmp / key, f"cohort-t2d-{key}.csv", for_user.covered),
        title="Diabetes cohort, consented for T2D research by one user",
        description="Subjects whose consent covers the purpose for one named user.",
        licence="CC-BY-4.0",
        data_use=["DS"],
    )
    ok = recheck_filter(ledger, events, reg.content_root, world.subjects, grantee=world.user.address)
    assert ok.ok, ok.problems
    assert world.subjects[23] in ok.expected
    blind = recheck_filter(ledger, events, reg.content_root, world.subjects)
    assert not blind.ok and not blind.match
    assert any("parameters digest" in p for p in blind.problems)


# ---------------------------------------------------------------------------------------------
# 4. withdrawal impact
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def withdrawal(
    ledger: Ledger, world: SimpleNamespace, coverage: CoverageResult, filtered: Registration, tampered: SimpleNamespace
) -> SimpleNamespace:
    f = filtered.content_root
    expiry = ledger.now() + 30 * 86400
    protocol = hashlib.sha256(b"protocol: T2D progression study").digest()
    conditions = hashlib.sha256(b"conditions: no re-identification").digest()

    # before the withdrawal: an approval, a use, and derived datasets (an open aggregate and its derivative)
    req1 = ledger.request_access(world.user, f, PURPOSE, protocol).result
    approval_before = ledger.approve_access(world.reviewer, req1, conditions, expiry)
    use_before = ledger.record_use(world.user, f, PURPOSE, request_id=req1)
    now = datetime.now(UTC)
    agg_activity = ActivityDescription(type=ActivityType.AGGREGATION, agent=world.user.address, started=now, ended=now)
    derived = ledger.register_dataset(
        world.user,
        metadata_for(
            world.user.address,
            write_text(world.tmp / "aggregate", "aggregate.csv", "age_band,n\n40-49,7\n50-59,12\n"),
            title="T2D aggregate",
            tier=Tier.OPEN,
            parents=(hex32(f),),
            activity=agg_activity,
        ),
    ).content_root
    derived2 = ledger.register_dataset(
        world.user,
        metadata_for(
            world.user.address,
            write_text(world.tmp / "aggregate2", "aggregate-share.csv", "age_band,share\n40-49,0.37\n50-59,0.63\n"),
            title="T2D aggregate by band",
            tier=Tier.OPEN,
            parents=(hex32(derived),),
            activity=agg_activity,
        ),
    ).content_root
    use_derived_before = ledger.record_use(world.user, derived, PURPOSE)
    req2 = ledger.request_access(world.user2, f, PURPOSE, protocol).result  # filed before, decided after

    # the withdrawal
    subject = world.people[0]
    withdrawn = ledger.withdraw_consent(subject, ConsentScope.holder(world.holder.address))

    # after it
    approval_after = ledger.approve_access(world.reviewer, req2, conditions, expiry)
    use_after = ledger.record_use(world.user, f, PURPOSE, request_id=req1)
    use_after2 = ledger.record_use(world.user2, f, PURPOSE, request_id=req2)
    use_derived_after = ledger.record_use(world.user2, derived2, PURPOSE)
    return SimpleNamespace(
        subject=subject.address,
        withdrawn=withdrawn,
        req1=req1,
        req2=req2,
        approval_before=approval_before,
        approval_after=approval_after,
        use_before=use_before,
        use_derived_before=use_derived_before,
        uses_after=[use_after, use_after2, use_derived_after],
        derived=derived,
        derived2=derived2,
    )


def test_withdrawal_impact(
    ledger: Ledger,
    world: SimpleNamespace,
    coverage: CoverageResult,
    filtered: Registration,
    tampered: SimpleNamespace,
    withdrawal: SimpleNamespace,
    events: EventSource,
) -> None:
    f = filtered.content_root
    lists = {
        hex32(world.parent): world.subjects,
        hex32(f): coverage.covered,
        hex32(tampered.registration.content_root): tampered.wrong,  # verified; leaves the subject out
        hex32(world.other): world.subjects[:6],  # does not hash to the chain's root
    }
    impact = withdrawal_impact(ledger, events, withdrawal.subject, lists)

    assert len(impact.withdrawals) == 1
    scope = impact.withdrawals[0]
    assert scope.first_block == withdrawal.withdrawn.block and scope.regranted_block is None
    assert impact.mismatched_lists == [world.other]

    roots = [d.dataset for d in impact.datasets]
    main = {world.parent, f, withdrawal.derived, withdrawal.derived2}
    assert main <= set(roots)
    for extra in set(roots) - main:  # other filters of the parent registered by other tests: derived from it
        entry = impact.dataset(extra)
        assert entry is not None and entry.derived_from == [world.parent] and not entry.contains_subject
    assert impact.cleared == [tampered.registration.content_root]
    for root in (world.parent, f):
        entry = impact.dataset(root)
        assert entry is not None and entry.contains_subject and entry.proof is not None
        assert entry.from_block == withdrawal.withdrawn.block
        assert verify_subject_on_chain(ledger, root, withdrawal.subject, entry.proof)
    d1, d2 = impact.dataset(withdrawal.derived), impact.dataset(withdrawal.derived2)
    assert d1 is not None and not d1.contains_subject and d1.derived_from == [f] and d1.proof is None
    assert d2 is not None and d2.derived_from == [withdrawal.derived]

    assert [(a.request_id, a.block) for a in impact.approvals] == [(withdrawal.req2, withdrawal.approval_after.block)]
    assert withdrawal.approval_before.block < withdrawal.withdrawn.block
    assert sorted(u.tx_hash for u in impact.uses) == sorted(u.tx_hash for u in withdrawal.uses_after)
    listed = {u.tx_hash for u in impact.uses}
    assert withdrawal.use_before.tx_hash not in listed and withdrawal.use_derived_before.tx_hash not in listed

    data = impact.to_json()
    assert data["subject"] == withdrawal.subject
    assert [d["dataset"] for d in data["datasets"]] == [hex32(r) for r in roots]
    assert data["mismatched_lists"] == [hex32(world.other)]
    assert len(data["approvals"]) == 1 and len(data["uses"]) == 3


def test_filter_still_rechecks_after_the_withdrawal(
    ledger: Ledger, world: SimpleNamespace, filtered: Registration, withdrawal: SimpleNamespace, events: EventSource
) -> None:
    # the filter speaks of its own block: a later withdrawal does not change it
    result = recheck_filter(ledger, events, filtered.content_root, world.subjects)
    assert result.ok, result.problems
    # a new coverage leaves the subject out
    again = compute_coverage(ledger, world.parent, world.subjects, PURPOSE)
    assert withdrawal.subject not in again.covered


def test_dataset_scoped_withdrawal_and_regrant(
    ledger: Ledger,
    world: SimpleNamespace,
    coverage: CoverageResult,
    filtered: Registration,
    withdrawal: SimpleNamespace,
    events: EventSource,
) -> None:
    s27 = world.subjects[27]
    lists = {hex32(world.parent): world.subjects, hex32(filtered.content_root): coverage.covered}
    impact = withdrawal_impact(ledger, events, s27, lists)
    assert len(impact.withdrawals) == 1
    scope = impact.withdrawals[0]
    assert scope.to_json()["scope"] == {"kind": "dataset", "dataset": hex32(world.parent)}
    assert scope.first_block == world.withdrawal_27 and scope.regranted_block is not None
    assert {d.dataset for d in impact.datasets} >= {world.parent, filtered.content_root, withdrawal.derived}
    # everything on the filter happened after this (early) withdrawal
    assert {a.request_id for a in impact.approvals} == {withdrawal.req1, withdrawal.req2}
    assert withdrawal.use_before.tx_hash in {u.tx_hash for u in impact.uses}


def test_no_withdrawal_no_impact(ledger: Ledger, world: SimpleNamespace, events: EventSource) -> None:
    impact = withdrawal_impact(ledger, events, world.subjects[1], {hex32(world.parent): world.subjects})
    assert impact.withdrawals == [] and impact.datasets == [] and impact.approvals == [] and impact.uses == []
    assert impact.outside_withdrawn_scopes == [world.parent]  # contains them, but nothing was withdrawn


def test_log_source_query_strategies_agree(ledger: Ledger, world: SimpleNamespace, coverage: CoverageResult) -> None:
    default = LogEventSource(ledger.client).consent_events_until(coverage.block, world.subjects)
    chunked_source = LogEventSource(ledger.client, topic_chunk=4, max_range=7)
    chunked = chunked_source.consent_events_until(coverage.block, world.subjects)
    bulk = LogEventSource(ledger.client, bulk_topics=5).consent_events_until(coverage.block, world.subjects)
    assert default == chunked == bulk
    assert {e.subject for e in default} <= set(world.subjects)
    assert LogEventSource(ledger.client).consent_events_until(coverage.block, []) == []
