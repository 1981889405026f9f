"""Rechecking a registered consent filter independently, from the chain's consent history.

:func:`recheck_filter` reads the filter's activity (purpose, disease, block ``N``) from IPFS,
replays the consent registry's events up to ``N`` with :mod:`ledger.rules.consent` (expiry
evaluated at that block's timestamp: ``ConsentRegistry._inForce`` off chain), and compares the
subset it finds with the filter's recorded subject root; optionally with the contract's own
``inForceBatch`` at ``N`` as well. History comes from an :class:`EventSource`: the chain's logs
(:class:`LogEventSource`) or the SQLite index.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ledger.content.cid import cid_from_digest
from ledger.content.metadata import ActivityDescription, ActivityType, DatasetMetadata, mondo_number
from ledger.core.errors import InvalidInput, LedgerError, MetadataIntegrityError, MetadataNotFound
from ledger.core.records import ZERO32, DatasetRecord, hex32, to_bytes32
from ledger.history.sources import ConsentEvent, EventSource
from ledger.rules import consent, datause
from ledger.services import cohort
from ledger.services.ledger import Ledger

__all__ = ["RecheckResult", "recheck_filter"]


@dataclass(frozen=True)
class RecheckResult:
    """An independent recomputation of a registered consent filter from the consent history."""

    filter_root: bytes
    parent_root: bytes | None
    block: int | None
    timestamp: int | None
    purpose: datause.Purpose | None
    grantee: str | None
    activity_source: str | None
    recorded_subject_root: bytes
    recomputed_subject_root: bytes | None
    subjects_match_parent: bool
    expected: list[str] = field(default_factory=list)
    expected_excluded: list[str] = field(default_factory=list)
    recorded_subject_count: int | None = None
    #: given the filter's own subject list: whether it hashes to the recorded root, and the differences
    filter_subjects_verified: bool | None = None
    included_without_consent: list[str] = field(default_factory=list)
    missing_with_consent: list[str] = field(default_factory=list)
    #: subjects where the replayed history and the contract's own view at the block disagree
    #: (None if the node could not answer an eth_call at that block)
    contract_disagreements: list[str] | None = None
    #: for each expected subject, the consent that covers it (its Given event)
    basis: dict[str, ConsentEvent] = field(default_factory=dict)
    #: given by a delegate: subject -> delegate, and whether the delegate was appointed then
    delegated: dict[str, tuple[str, bool]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def match(self) -> bool:
        """The recomputed subject root equals the registered one."""
        return self.recomputed_subject_root is not None and self.recomputed_subject_root == self.recorded_subject_root

    @property
    def ok(self) -> bool:
        return self.match and self.subjects_match_parent and not self.problems

    @property
    def differing(self) -> list[str]:
        return sorted(set(self.included_without_consent) | set(self.missing_with_consent))

    def to_json(self) -> dict[str, Any]:
        return {
            "filter": hex32(self.filter_root),
            "parent": hex32(self.parent_root) if self.parent_root else None,
            "block": self.block,
            "timestamp": self.timestamp,
            "purpose": cohort.purpose_json(self.purpose) if self.purpose else None,
            "grantee": cohort.grantee_json(self.grantee),
            "activity_source": self.activity_source,
            "ok": self.ok,
            "match": self.match,
            "recorded_subject_root": hex32(self.recorded_subject_root),
            "recomputed_subject_root": (
                hex32(self.recomputed_subject_root) if self.recomputed_subject_root is not None else None
            ),
            "subjects_match_parent": self.subjects_match_parent,
            "recorded_subject_count": self.recorded_subject_count,
            "expected": list(self.expected),
            "expected_count": len(self.expected),
            "expected_excluded": list(self.expected_excluded),
            "filter_subjects_verified": self.filter_subjects_verified,
            "included_without_consent": list(self.included_without_consent),
            "missing_with_consent": list(self.missing_with_consent),
            "contract_disagreements": self.contract_disagreements,
            "basis": {s: ev.to_json() for s, ev in self.basis.items()},
            "delegated": {s: {"delegate": d, "appointed": ok} for s, (d, ok) in self.delegated.items()},
            "problems": list(self.problems),
        }


def _load_activity(ledger: Ledger, record: DatasetRecord) -> tuple[ActivityDescription | None, str | None, str | None]:
    """The filter's activity: its own IPFS document (CID from the chain's activity digest), else
    the one embedded in the metadata document. Returns (activity, source, problem)."""
    if record.activity_digest == ZERO32:
        return None, None, "the dataset records no activity: it is not a consent filter"
    if ledger.ipfs is None:
        raise LedgerError("rechecking a filter needs an IPFS store", hint="construct Ledger with ipfs=IpfsStore(...)")
    first_error: LedgerError | None = None
    try:
        activity = ledger.ipfs.get_json(cid_from_digest(record.activity_digest), ActivityDescription)
        return activity, "activity-document", None
    except (MetadataNotFound, MetadataIntegrityError, InvalidInput) as exc:
        first_error = exc
    try:
        metadata = ledger.ipfs.get_json(cid_from_digest(record.metadata_digest), DatasetMetadata)
    except (MetadataNotFound, MetadataIntegrityError, InvalidInput) as exc:
        return None, None, f"activity unavailable ({first_error}); metadata unavailable ({exc})"
    if metadata.activity is None or metadata.activity.digest() != record.activity_digest:
        return None, None, "the metadata's activity does not hash to the chain's activity digest"
    return metadata.activity, "metadata-document", None


def _delegate_check(history: Sequence[ConsentEvent], given: ConsentEvent) -> bool:
    """Whether ``given.actor`` was an appointed (not revoked) delegate of the subject when it gave
    the consent, per the delegate events before it. Expiry is not checked here (it needs the block
    timestamp); the contract refused an expired delegate when the grant was made."""
    if given.actor is None:
        return False
    return consent.delegate_appointed_before(history, given.subject, given.actor, (given.block, given.log_index)) != 0


def recheck_filter(
    ledger: Ledger,
    events: EventSource,
    dataset_root_of_filter: bytes | str,
    subjects: Sequence[str],
    *,
    filter_subjects: Sequence[str] | None = None,
    grantee: str | None = None,
    check_contract: bool = True,
    chunk: int = cohort.DEFAULT_CHUNK,
) -> RecheckResult:
    """Recompute a registered consent filter from the chain's consent history and compare it with
    the filter's recorded subject root.

    The filter's purpose, disease and block come from its activity description on IPFS. The rule
    is ``ConsentRegistry._inForce``: the events up to the block are replayed into consent states;
    a dataset-scoped consent on the parent or a holder-wide consent of the parent's holder, to
    anyone (or to ``grantee``), given or renewed, not expired at the block's timestamp, covering
    the purpose (``datause.covers``) puts a subject in. ``subjects`` must be the parent's full
    subject list (its root is checked against the parent's record). The recorded root alone does
    not say which subjects the filter holds; pass ``filter_subjects`` (the holder's list for the
    filter, checked against the recorded root) to learn which subjects differ. With
    ``check_contract`` the replay is also compared with the contract's own ``inForceBatch`` at the
    block (needs a node that keeps historical state)."""
    froot = to_bytes32(dataset_root_of_filter, "filter root")
    people = cohort.normalise_subjects(subjects)
    record = ledger.get_dataset(froot)
    problems: list[str] = []

    def failed(problem: str, **extra: Any) -> RecheckResult:
        return RecheckResult(
            filter_root=froot,
            parent_root=extra.get("parent"),
            block=extra.get("block"),
            timestamp=None,
            purpose=extra.get("purpose"),
            grantee=grantee,
            activity_source=extra.get("source"),
            recorded_subject_root=record.subject_root,
            recomputed_subject_root=None,
            subjects_match_parent=False,
            problems=[*problems, problem],
        )

    activity, source, problem = _load_activity(ledger, record)
    if activity is None:
        return failed(problem or "no activity")
    if activity.type is not ActivityType.CONSENT_FILTER or activity.consent_filter is None:
        return failed(f"the activity is {activity.type.value}, not a consent filter", source=source)
    params = activity.consent_filter
    block = params.block_number
    disease = mondo_number(params.disease_code) if params.disease_code else 0
    try:
        purpose = datause.Purpose(params.purpose_mask, disease)
    except InvalidInput as exc:
        return failed(f"the recorded purpose is not a valid use: {exc.message}", source=source, block=block)
    if len(record.parents) != 1:
        return failed(
            f"a consent filter has one parent; this dataset has {len(record.parents)}",
            source=source,
            block=block,
            purpose=purpose,
        )
    parent_root = record.parents[0]
    if block >= record.registered_block:
        problems.append(f"the filter's block {block} is not before its registration block {record.registered_block}")
    head = int(ledger.client.w3.eth.block_number)
    if block > head:
        return failed(f"block {block} is beyond the chain head {head}", source=source, block=block, purpose=purpose)
    if activity.parameters_digest is not None:
        expected_digest = hex32(cohort.filter_parameters_digest(parent_root, purpose, block, grantee))
        if activity.parameters_digest != expected_digest:
            problems.append(
                "the activity's parameters digest does not match the parent, purpose, block and grantee "
                f"({cohort.grantee_json(grantee) or 'anyone'}): the filter was computed with other parameters"
            )
    parent = ledger.get_dataset(parent_root)
    subjects_match_parent = bool(people) and cohort.root_of(people) == parent.subject_root
    if not subjects_match_parent:
        problems.append("the subject list given does not hash to the parent's subject root")
    timestamp = cohort.block_timestamp(ledger, block)

    history = list(events.consent_events_until(block, people))
    if parent.registered_block > block:
        problems.append(f"the parent was registered at block {parent.registered_block}, after the filter's block")
        decided: dict[str, ConsentEvent | None] = dict.fromkeys(people)
    else:
        decided = cohort.in_force_from_history(
            history, people, parent_root, parent.holder, purpose, block=block, timestamp=timestamp, grantee=grantee
        )
    expected = [s for s in people if decided[s] is not None]
    expected_excluded = [s for s in people if decided[s] is None]
    recomputed = cohort.root_of(expected)
    basis = {s: ev for s, ev in decided.items() if ev is not None}
    delegated = {
        s: (ev.actor, _delegate_check(history, ev)) for s, ev in basis.items() if ev.actor is not None and ev.actor != s
    }
    for s, (delegate, appointed) in delegated.items():
        if not appointed:
            problems.append(f"consent of {s} was given by {delegate}, who was not an appointed delegate")

    recorded_count: int | None = None
    try:
        assert ledger.ipfs is not None
        recorded_count = ledger.ipfs.get_json(cid_from_digest(record.metadata_digest), DatasetMetadata).subject_count
    except (MetadataNotFound, MetadataIntegrityError, InvalidInput):
        problems.append("the filter's metadata document is unavailable (subject count not checked)")
    if recorded_count is not None and recorded_count != len(expected) and recomputed == record.subject_root:
        problems.append(f"the metadata's subject count {recorded_count} differs from the filter's {len(expected)}")

    verified: bool | None = None
    included_without: list[str] = []
    missing_with: list[str] = []
    if filter_subjects is not None:
        listed = cohort.normalise_subjects(filter_subjects)
        verified = cohort.root_of(listed) == record.subject_root
        if not verified:
            problems.append("the filter subject list given does not hash to the filter's recorded subject root")
        expected_set, listed_set = set(expected), set(listed)
        included_without = [s for s in listed if s not in expected_set]
        missing_with = [s for s in expected if s not in listed_set]
    elif recomputed != record.subject_root:
        problems.append("subject roots differ; pass the filter's subject list to learn which subjects differ")

    disagreements: list[str] | None = None
    if check_contract and parent.registered_block <= block:
        try:
            flags = cohort.contract_in_force(ledger, people, parent_root, purpose, grantee, block, chunk)
            disagreements = [s for s, f in zip(people, flags, strict=True) if f != (decided[s] is not None)]
        except LedgerError:
            disagreements = None
        if disagreements:
            problems.append(f"the replayed history and the contract disagree on {len(disagreements)} subject(s)")

    return RecheckResult(
        filter_root=froot,
        parent_root=parent_root,
        block=block,
        timestamp=timestamp,
        purpose=purpose,
        grantee=cohort.grantee_json(cohort.address(grantee, "grantee")) if grantee else None,
        activity_source=source,
        recorded_subject_root=record.subject_root,
        recomputed_subject_root=recomputed,
        subjects_match_parent=subjects_match_parent,
        expected=expected,
        expected_excluded=expected_excluded,
        recorded_subject_count=recorded_count,
        filter_subjects_verified=verified,
        included_without_consent=included_without,
        missing_with_consent=missing_with,
        contract_disagreements=disagreements,
        basis=basis,
        delegated={s: (str(d), ok) for s, (d, ok) in delegated.items()},
        problems=problems,
    )
