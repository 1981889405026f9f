"""Consent meets lineage: cohort coverage, consent filters, their recheck, and withdrawal impact.

A contract cannot loop over a cohort, so cohort-level enforcement goes through the lineage:

- :func:`compute_coverage` asks the consent registry itself (``inForceBatch``, an ``eth_call``
  pinned to one block ``N``) which of a holder's subjects have consent in force for a purpose on a
  dataset. The contract's rule is the authority; nothing is decided off chain.
- :func:`register_consent_filter` registers that subset as a derived dataset whose activity is
  "consent filter for purpose P at block N" and whose subject root is the subset's Merkle root.
- :func:`recheck_filter` recomputes a registered filter independently, from the chain's consent
  *history* (the registry's events replayed up to block ``N``, expiry evaluated at that block's
  timestamp, with :func:`ledger.datause.covers`, the same rule as ``ConsentRegistry._inForce``),
  and compares the result with the registered subject root.
- :func:`withdrawal_impact` answers "what is affected" after a subject withdrew: the datasets
  whose subject root includes them (checked against subject lists the holders supply), their
  derived descendants, and the access approvals and uses of those made from the withdrawal on,
  with an inclusion proof per dataset that the subject can check on chain
  (``DatasetRegistry.verifySubject``).

History comes from an :class:`EventSource`: :class:`LogEventSource` reads the registries' events
straight from the chain with ``eth_getLogs``; the SQLite event indexer can stand in for it.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import rfc8785
from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address

from ledger import __version__
from ledger.content.cid import cid_from_digest
from ledger.content.files import FileEntry, hash_folder
from ledger.content.merkle import keccak256, subject_tree
from ledger.content.metadata import (
    ActivityDescription,
    ActivityType,
    Citation,
    ConsentFilterParameters,
    DatasetMetadata,
    DeIdentification,
    Licence,
    Software,
    mondo_code,
    mondo_number,
)
from ledger.core.classification import Classification, DatasetStatus, Tier
from ledger.core.errors import (
    DatasetNotFound,
    InvalidInput,
    LedgerError,
    MetadataIntegrityError,
    MetadataNotFound,
)
from ledger.core.records import ZERO32, ZERO_ADDRESS, ConsentState, DatasetRecord, ScopeKind, hex32, to_bytes32
from ledger.history.sources import (
    ApprovalEvent,
    ConsentEvent,
    ConsentEventKind,
    EventSource,
    LogEventSource,
    UseEvent,
    scope_json,
)
from ledger.rules import datause
from ledger.services.ledger import Ledger, Registration

__all__ = [
    "AffectedDataset",
    "ApprovalEvent",
    "ConsentEvent",
    "ConsentEventKind",
    "CoverageResult",
    "EventSource",
    "Impact",
    "LogEventSource",
    "RecheckResult",
    "SubjectListCheck",
    "UseEvent",
    "WithdrawnScope",
    "compute_coverage",
    "consent_id",
    "filter_parameters_digest",
    "in_force_from_history",
    "recheck_filter",
    "register_consent_filter",
    "withdrawal_impact",
]

#: subjects per ``inForceBatch`` eth_call
DEFAULT_CHUNK = 500


# =============================================================================================
# the consent rule, off chain
# =============================================================================================


def _address(value: str, what: str = "address") -> str:
    try:
        return to_checksum_address(value)
    except ValueError as exc:
        raise InvalidInput(f"{what} {value!r} is not an Ethereum address") from exc


def _holder_scope(holder: str) -> bytes:
    return b"\x00" * 12 + bytes.fromhex(_address(holder, "holder")[2:])


def consent_id(subject: str, scope_kind: ScopeKind, scope: bytes, grantee: str | None = None) -> bytes:
    """``ConsentRegistry.consentId``: keccak256(abi.encode(subject, scopeKind, scope, grantee))."""
    g = _address(grantee or ZERO_ADDRESS, "grantee")
    return keccak256(
        b"\x00" * 12
        + bytes.fromhex(_address(subject, "subject")[2:])
        + int(scope_kind).to_bytes(32, "big")
        + to_bytes32(scope, "scope")
        + b"\x00" * 12
        + bytes.fromhex(g[2:])
    )


@dataclass
class _Slot:
    """One consent's stored state, as ``ConsentRegistry._consents[id]`` holds it."""

    purposes: int = 0
    disease: int = 0
    expiry: int = 0
    state: ConsentState = ConsentState.NONE
    given: ConsentEvent | None = None


def _replay(history: Iterable[ConsentEvent], until_block: int) -> dict[bytes, _Slot]:
    """Consent slots after every event up to and including ``until_block`` (history in chain order)."""
    slots: dict[bytes, _Slot] = {}
    for ev in history:
        if ev.block > until_block or ev.consent_id is None:
            continue
        slot = slots.setdefault(ev.consent_id, _Slot())
        if ev.kind is ConsentEventKind.GIVEN:
            slot.purposes = ev.purposes or 0
            slot.disease = ev.disease or 0
            slot.expiry = ev.expiry or 0
            slot.state = ConsentState.GIVEN
            slot.given = ev
        elif ev.kind is ConsentEventKind.RENEWED:
            slot.expiry = ev.expiry or 0
            slot.state = ConsentState.RENEWED
        elif ev.kind is ConsentEventKind.WITHDRAWN:
            slot.state = ConsentState.WITHDRAWN
    return slots


def _slot_covers(slot: _Slot | None, purpose: datause.Purpose, timestamp: int) -> bool:
    """``ConsentRegistry._covers``."""
    if slot is None or slot.state not in (ConsentState.GIVEN, ConsentState.RENEWED):
        return False
    if slot.expiry <= timestamp:
        return False
    return datause.covers(slot.purposes, slot.disease, purpose.mask, purpose.disease)


def _candidate_ids(subject: str, dataset: bytes, holder: str, grantee: str | None) -> list[bytes]:
    """The consents ``_inForce`` looks at, in its order: dataset then holder scope, to anyone, then
    (with a grantee) dataset then holder scope to that grantee."""
    holder_scope = _holder_scope(holder)
    ids = [consent_id(subject, ScopeKind.DATASET, dataset), consent_id(subject, ScopeKind.HOLDER, holder_scope)]
    if grantee is not None and _address(grantee) != ZERO_ADDRESS:
        ids += [
            consent_id(subject, ScopeKind.DATASET, dataset, grantee),
            consent_id(subject, ScopeKind.HOLDER, holder_scope, grantee),
        ]
    return ids


def in_force_from_history(
    history: Iterable[ConsentEvent],
    subjects: Sequence[str],
    dataset: bytes,
    holder: str,
    purpose: datause.Purpose,
    *,
    block: int,
    timestamp: int,
    grantee: str | None = None,
) -> dict[str, ConsentEvent | None]:
    """``ConsentRegistry._inForce`` evaluated off chain from the event history: for each subject,
    the Given event of the consent that covers ``purpose`` on ``dataset`` (of ``holder``) at
    ``block`` whose timestamp is ``timestamp``, or None if no consent is in force."""
    slots = _replay(history, block)
    out: dict[str, ConsentEvent | None] = {}
    for subject in subjects:
        s = _address(subject, "subject")
        out[s] = None
        for cid in _candidate_ids(s, dataset, holder, grantee):
            slot = slots.get(cid)
            if _slot_covers(slot, purpose, timestamp):
                assert slot is not None
                out[s] = slot.given
                break
    return out


def filter_parameters_digest(dataset: bytes, purpose: datause.Purpose, block: int, grantee: str | None = None) -> bytes:
    """sha256 of the canonical JSON of every parameter of a consent filter, grantee included
    (the activity's ``parameters_digest``): the metadata schema has no grantee field, so a
    grantee-specific filter is recognised by this digest."""
    doc: dict[str, str | int] = {
        "dataset": hex32(dataset),
        "purpose_mask": purpose.mask,
        "disease_code": purpose.disease,
        "block_number": block,
        "grantee": _address(grantee or ZERO_ADDRESS, "grantee"),
    }
    return hashlib.sha256(rfc8785.dumps(doc)).digest()


# =============================================================================================
# helpers
# =============================================================================================


def _purpose_json(purpose: datause.Purpose) -> dict[str, Any]:
    return {
        "mask": purpose.mask,
        "terms": datause.describe(purpose.mask),
        "disease": datause.disease_label(purpose.disease),
    }


def _grantee_json(grantee: str | None) -> str | None:
    return None if grantee is None or grantee == ZERO_ADDRESS else grantee


def _normalise_subjects(subjects: Iterable[str]) -> list[str]:
    out = [_address(s, "subject") for s in subjects]
    if len(set(out)) != len(out):
        raise InvalidInput("the subject list contains a duplicate address")
    return out


def _root_of(subjects: Sequence[str]) -> bytes:
    return subject_tree(subjects).root if subjects else ZERO32


def _block_timestamp(ledger: Ledger, block: int) -> int:
    return int(ledger.client.w3.eth.get_block(block)["timestamp"])


def _pin_block(ledger: Ledger, block: int | None) -> int:
    head = int(ledger.client.w3.eth.block_number)
    if block is None:
        return max(0, head - ledger.settings.confirmations)
    if not 0 <= block <= head:
        raise InvalidInput(f"block {block} is not between 0 and the chain head {head}")
    return block


def _contract_in_force(
    ledger: Ledger,
    subjects: Sequence[str],
    dataset: bytes,
    purpose: datause.Purpose,
    grantee: str | None,
    block: int,
    chunk: int,
) -> list[bool]:
    """``inForceBatch`` at ``block``, ``chunk`` subjects per eth_call."""
    g = _address(grantee or ZERO_ADDRESS, "grantee")
    out: list[bool] = []
    for i in range(0, len(subjects), chunk):
        part = list(subjects[i : i + chunk])
        fn = ledger.consents.functions.inForceBatch(part, dataset, purpose.mask, purpose.disease, g)
        out += [bool(x) for x in ledger.client.call(fn, block)]
    return out


# =============================================================================================
# 1. coverage
# =============================================================================================


@dataclass(frozen=True)
class CoverageResult:
    """Which subjects had consent in force for ``purpose`` on ``dataset`` at ``block``."""

    dataset: bytes
    block: int
    timestamp: int
    purpose: datause.Purpose
    covered: list[str]
    excluded: list[str]
    grantee: str | None = None
    #: the dataset's subject root on chain, and whether the given list hashes to it
    dataset_subject_root: bytes = ZERO32
    subjects_match_dataset: bool = False
    computed_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @cached_property
    def subject_root(self) -> bytes:
        """Merkle root of the covered subjects (zero when none is covered)."""
        return _root_of(self.covered)

    def to_json(self) -> dict[str, Any]:
        return {
            "dataset": hex32(self.dataset),
            "block": self.block,
            "timestamp": self.timestamp,
            "purpose": _purpose_json(self.purpose),
            "grantee": _grantee_json(self.grantee),
            "covered": list(self.covered),
            "excluded": list(self.excluded),
            "covered_count": len(self.covered),
            "excluded_count": len(self.excluded),
            "subject_root": hex32(self.subject_root),
            "dataset_subject_root": hex32(self.dataset_subject_root),
            "subjects_match_dataset": self.subjects_match_dataset,
            "computed_at": self.computed_at.isoformat().replace("+00:00", "Z"),
        }


def compute_coverage(
    ledger: Ledger,
    dataset_root: bytes | str,
    subjects: Sequence[str],
    purpose: datause.Purpose,
    *,
    block: int | None = None,
    grantee: str | None = None,
    chunk: int = DEFAULT_CHUNK,
) -> CoverageResult:
    """Which of ``subjects`` have consent in force for ``purpose`` on ``dataset_root`` at ``block``
    (default: the latest block less the configured confirmations), as the consent registry's own
    ``inForceBatch`` answers at that block. ``grantee`` also counts consents given to that user
    only. Covered and excluded subjects keep the order given. Raises :class:`DatasetNotFound` if
    the dataset was not registered at that block."""
    root = to_bytes32(dataset_root, "dataset root")
    if chunk < 1:
        raise InvalidInput("chunk must be positive")
    people = _normalise_subjects(subjects)
    n = _pin_block(ledger, block)
    if not ledger.client.call(ledger.datasets.functions.exists(root), n):
        raise DatasetNotFound(f"no dataset with content root {hex32(root)} at block {n}")
    record = DatasetRecord.from_chain(ledger.client.call(ledger.datasets.functions.getDataset(root), n))
    timestamp = _block_timestamp(ledger, n)
    flags = _contract_in_force(ledger, people, root, purpose, grantee, n, chunk)
    covered = [s for s, ok in zip(people, flags, strict=True) if ok]
    excluded = [s for s, ok in zip(people, flags, strict=True) if not ok]
    g = _address(grantee, "grantee") if grantee else None
    return CoverageResult(
        dataset=root,
        block=n,
        timestamp=timestamp,
        purpose=purpose,
        covered=covered,
        excluded=excluded,
        grantee=None if g == ZERO_ADDRESS else g,
        dataset_subject_root=record.subject_root,
        subjects_match_dataset=bool(people) and _root_of(people) == record.subject_root,
    )


# =============================================================================================
# 2. registering a consent filter
# =============================================================================================


def _files_of(files: str | os.PathLike[str] | Sequence[FileEntry]) -> list[FileEntry]:
    if isinstance(files, str | os.PathLike):
        return hash_folder(Path(files))
    entries = list(files)
    if not entries:
        raise InvalidInput("a consent-filtered dataset needs at least one file")
    return entries


def _text(value: str | Mapping[str, str]) -> dict[str, str]:
    return {"en": value} if isinstance(value, str) else dict(value)


def _duo_codes(terms: Iterable[str]) -> tuple[str, ...]:
    out: list[str] = []
    for term in terms:
        key = term.strip().upper()
        if key in datause.DUO_TERMS:
            out.append(datause.DUO_TERMS[key][0])
        else:
            out.append(key)
    return tuple(out)


def register_consent_filter(
    ledger: Ledger,
    holder: LocalAccount,
    parent_root: bytes | str,
    coverage: CoverageResult,
    *,
    files: str | os.PathLike[str] | Sequence[FileEntry],
    title: str | Mapping[str, str],
    description: str | Mapping[str, str],
    licence: Licence | str,
    data_use: Sequence[str],
    classification: int | str | None = None,
    tier: Tier | int | str | None = None,
    disease_codes: Sequence[str] | None = None,
    keywords: Sequence[str] | None = None,
    deidentification: DeIdentification | None = None,
    citation: Citation | None = None,
    embargo_end: int = 0,
    created: datetime | None = None,
) -> Registration:
    """Register the covered subset of ``coverage`` as a dataset derived from ``parent_root``:
    its activity is a consent filter (purpose, disease code, block of the coverage; agent the
    registering account; software medledger), its subject root is the covered subjects' root and
    its subject count their number. ``files`` (a folder, or entries already hashed) are the
    holder's filtered data. ``data_use`` takes DUO ids or codes ("HMB"); ``classification`` and
    ``tier`` default to the parent's, ``disease_codes`` to the purpose's disease. The coverage must
    have been computed on ``parent_root`` from its full subject list (the list that hashes to the
    parent's subject root) and cover at least one subject."""
    parent = to_bytes32(parent_root, "parent root")
    if coverage.dataset != parent:
        raise InvalidInput(f"the coverage was computed on {hex32(coverage.dataset)}, not on the parent {hex32(parent)}")
    if not coverage.subjects_match_dataset:
        raise InvalidInput(
            "the coverage was not computed from the parent's full subject list",
            hint="pass compute_coverage the subject list whose Merkle root the parent's record holds",
        )
    if not coverage.covered:
        raise InvalidInput(f"no subject's consent covers the purpose at block {coverage.block}; nothing to register")
    parent_record = ledger.get_dataset(parent)
    entries = _files_of(files)
    disease = coverage.purpose.disease
    now = datetime.now(UTC)
    started = coverage.computed_at
    activity = ActivityDescription(
        type=ActivityType.CONSENT_FILTER,
        agent=holder.address,
        started=started,
        ended=max(now, started),
        software=Software(name="medledger", version=__version__),
        parameters_digest=hex32(filter_parameters_digest(parent, coverage.purpose, coverage.block, coverage.grantee)),
        consent_filter=ConsentFilterParameters(
            purpose_mask=coverage.purpose.mask,
            disease_code=mondo_code(disease) if disease else None,
            block_number=coverage.block,
        ),
    )
    if disease_codes is None and disease:
        disease_codes = [mondo_code(disease)]
    try:
        metadata = DatasetMetadata(
            title=_text(title),
            description=_text(description),
            keywords=tuple(keywords) if keywords else None,
            classification=Classification.parse(
                parent_record.classification if classification is None else classification
            ),
            tier=Tier.parse(parent_record.tier if tier is None else tier),
            licence=Licence(spdx=licence) if isinstance(licence, str) else licence,
            data_use=_duo_codes(data_use),
            disease_codes=tuple(disease_codes) if disease_codes else None,
            files=tuple(entries),
            parents=(hex32(parent),),
            activity=activity,
            deidentification=deidentification,
            subject_count=len(coverage.covered),
            holder=holder.address,
            citation=citation,
            created=created or now,
        )
    except ValueError as exc:  # pydantic's ValidationError
        raise InvalidInput(f"consent-filter metadata is invalid: {exc}") from exc
    registration = ledger.register_dataset(holder, metadata, subjects=coverage.covered, embargo_end=embargo_end)
    if registration.subject_root != coverage.subject_root:  # pragma: no cover - same function computes both
        raise LedgerError("registered subject root differs from the coverage's")
    return registration


# =============================================================================================
# 3. rechecking a consent filter
# =============================================================================================


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
            "purpose": _purpose_json(self.purpose) if self.purpose else None,
            "grantee": _grantee_json(self.grantee),
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
    appointed = False
    for ev in history:
        if (ev.block, ev.log_index) >= (given.block, given.log_index):
            break
        if ev.subject != given.subject or ev.delegate != given.actor:
            continue
        if ev.kind is ConsentEventKind.DELEGATE_APPOINTED:
            appointed = True
        elif ev.kind is ConsentEventKind.DELEGATE_REVOKED:
            appointed = False
    return appointed


def recheck_filter(
    ledger: Ledger,
    events: EventSource,
    dataset_root_of_filter: bytes | str,
    subjects: Sequence[str],
    *,
    filter_subjects: Sequence[str] | None = None,
    grantee: str | None = None,
    check_contract: bool = True,
    chunk: int = DEFAULT_CHUNK,
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
    people = _normalise_subjects(subjects)
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
        expected_digest = hex32(filter_parameters_digest(parent_root, purpose, block, grantee))
        if activity.parameters_digest != expected_digest:
            problems.append(
                "the activity's parameters digest does not match the parent, purpose, block and grantee "
                f"({_grantee_json(grantee) or 'anyone'}): the filter was computed with other parameters"
            )
    parent = ledger.get_dataset(parent_root)
    subjects_match_parent = bool(people) and _root_of(people) == parent.subject_root
    if not subjects_match_parent:
        problems.append("the subject list given does not hash to the parent's subject root")
    timestamp = _block_timestamp(ledger, block)

    history = list(events.consent_events_until(block, people))
    if parent.registered_block > block:
        problems.append(f"the parent was registered at block {parent.registered_block}, after the filter's block")
        decided: dict[str, ConsentEvent | None] = dict.fromkeys(people)
    else:
        decided = in_force_from_history(
            history, people, parent_root, parent.holder, purpose, block=block, timestamp=timestamp, grantee=grantee
        )
    expected = [s for s in people if decided[s] is not None]
    expected_excluded = [s for s in people if decided[s] is None]
    recomputed = _root_of(expected)
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
        listed = _normalise_subjects(filter_subjects)
        verified = _root_of(listed) == record.subject_root
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
            flags = _contract_in_force(ledger, people, parent_root, purpose, grantee, block, chunk)
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
        grantee=_grantee_json(_address(grantee, "grantee")) if grantee else None,
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


# =============================================================================================
# 4. withdrawal impact
# =============================================================================================


@dataclass(frozen=True)
class WithdrawnScope:
    """The subject's withdrawals of one consent key (scope and grantee)."""

    scope_kind: ScopeKind
    scope: bytes
    grantee: str | None
    withdrawn_blocks: list[int]
    #: a later grant for the same key, if any (the subject consented again)
    regranted_block: int | None = None

    @property
    def first_block(self) -> int:
        return min(self.withdrawn_blocks)

    def to_json(self) -> dict[str, Any]:
        return {
            "scope": scope_json(self.scope_kind, self.scope),
            "grantee": _grantee_json(self.grantee),
            "withdrawn_block": self.first_block,
            "withdrawn_blocks": list(self.withdrawn_blocks),
            "regranted_block": self.regranted_block,
        }


@dataclass(frozen=True)
class SubjectListCheck:
    """Whether a supplied subject list hashes to its dataset's recorded subject root."""

    dataset: bytes
    ok: bool
    reason: str | None = None
    contains_subject: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "dataset": hex32(self.dataset),
            "ok": self.ok,
            "reason": self.reason,
            "contains_subject": self.contains_subject,
        }


@dataclass
class AffectedDataset:
    """One dataset the withdrawal affects."""

    dataset: bytes
    holder: str
    status: DatasetStatus
    #: first block from which approvals and uses of it count as made after the withdrawal
    from_block: int
    #: the subject is in its subject root (checked with the supplied list); else only derived
    contains_subject: bool = False
    #: affected datasets it was derived from (empty for the ones that contain the subject)
    derived_from: list[bytes] = field(default_factory=list)
    #: inclusion proof of the subject against its subject root (``verifySubject``)
    proof: list[str] | None = None
    #: the withdrawn consent keys that reach it
    scopes: list[WithdrawnScope] = field(default_factory=list)
    #: only these users' approvals and uses count (grantee-specific withdrawals); None = everyone
    grantees: set[str] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "dataset": hex32(self.dataset),
            "holder": self.holder,
            "status": self.status.name.lower(),
            "from_block": self.from_block,
            "contains_subject": self.contains_subject,
            "derived_from": [hex32(r) for r in self.derived_from],
            "proof": self.proof,
            "scopes": [s.to_json() for s in self.scopes],
            "grantees": sorted(self.grantees) if self.grantees is not None else None,
        }


@dataclass(frozen=True)
class Impact:
    """What a subject's withdrawal affects."""

    subject: str
    withdrawals: list[WithdrawnScope]
    datasets: list[AffectedDataset]
    approvals: list[ApprovalEvent]
    uses: list[UseEvent]
    list_checks: list[SubjectListCheck]
    #: datasets whose (verified) list contains the subject but that no withdrawn consent reaches
    outside_withdrawn_scopes: list[bytes] = field(default_factory=list)
    #: descendants of affected datasets whose verified subject list does not contain the subject
    #: (a consent filter that left them out): not affected, and the lineage is not followed past them
    cleared: list[bytes] = field(default_factory=list)

    @property
    def mismatched_lists(self) -> list[bytes]:
        return [c.dataset for c in self.list_checks if not c.ok]

    def dataset(self, root: bytes | str) -> AffectedDataset | None:
        r = to_bytes32(root, "dataset")
        return next((d for d in self.datasets if d.dataset == r), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "withdrawals": [w.to_json() for w in self.withdrawals],
            "datasets": [d.to_json() for d in self.datasets],
            "approvals": [a.to_json() for a in self.approvals],
            "uses": [u.to_json() for u in self.uses],
            "subject_lists": [c.to_json() for c in self.list_checks],
            "mismatched_lists": [hex32(r) for r in self.mismatched_lists],
            "outside_withdrawn_scopes": [hex32(r) for r in self.outside_withdrawn_scopes],
            "cleared": [hex32(r) for r in self.cleared],
        }


def _withdrawn_scopes(events: EventSource, subject: str, head: int) -> list[WithdrawnScope]:
    withdrawals = list(events.withdrawals_of(subject))
    if not withdrawals:
        return []
    history = list(events.consent_events_until(head, [subject]))
    given: dict[bytes, list[ConsentEvent]] = {}
    for ev in history:
        if ev.kind is ConsentEventKind.GIVEN and ev.consent_id is not None:
            given.setdefault(ev.consent_id, []).append(ev)
    by_id: dict[bytes, list[int]] = {}
    for w in withdrawals:
        if w.consent_id is not None:
            by_id.setdefault(w.consent_id, []).append(w.block)
    out: list[WithdrawnScope] = []
    for cid, blocks in by_id.items():
        grants = given.get(cid)
        if not grants:
            raise LedgerError(f"withdrawal of consent {hex32(cid)} has no ConsentGiven event in the history")
        first = grants[0]
        assert first.scope_kind is not None and first.scope is not None
        last_withdrawal = max(blocks)
        regrant = next((g.block for g in grants if g.block > last_withdrawal), None)
        out.append(
            WithdrawnScope(
                scope_kind=first.scope_kind,
                scope=first.scope,
                grantee=None if first.grantee in (None, ZERO_ADDRESS) else first.grantee,
                withdrawn_blocks=sorted(blocks),
                regranted_block=regrant,
            )
        )
    out.sort(key=lambda s: s.first_block)
    return out


class _Lineage:
    """Chain records and ancestors, fetched on demand and cached."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.records: dict[bytes, DatasetRecord] = {}

    def fetch(self, roots: Iterable[bytes]) -> None:
        missing = [r for r in dict.fromkeys(roots) if r not in self.records]
        if missing:
            for rec in self.ledger.get_datasets(missing):
                self.records[rec.content_root] = rec

    def record(self, root: bytes) -> DatasetRecord:
        self.fetch([root])
        return self.records[root]

    def ancestors(self, root: bytes) -> set[bytes]:
        seen: set[bytes] = set()
        frontier = list(self.record(root).parents)
        while frontier:
            self.fetch(frontier)
            nxt: list[bytes] = []
            for r in frontier:
                if r not in seen:
                    seen.add(r)
                    nxt += [p for p in self.records[r].parents if p not in seen]
            frontier = nxt
        return seen


def _reaching_scopes(lineage: _Lineage, root: bytes, scopes: Sequence[WithdrawnScope]) -> list[WithdrawnScope]:
    """The withdrawn consents that covered ``root``: holder-wide ones of its holder or of an
    ancestor's holder, dataset-scoped ones on it or on an ancestor."""
    lineage_roots = {root} | lineage.ancestors(root)
    holders = {lineage.records[r].holder for r in lineage_roots}
    out = []
    for s in scopes:
        holder_wide = s.scope_kind == ScopeKind.HOLDER and to_checksum_address(s.scope[12:]) in holders
        if holder_wide or (s.scope_kind == ScopeKind.DATASET and s.scope in lineage_roots):
            out.append(s)
    return out


def _merge_grantees(a: set[str] | None, b: set[str] | None) -> set[str] | None:
    if a is None or b is None:
        return None
    return a | b


def _grantees_of(scopes: Iterable[WithdrawnScope]) -> set[str] | None:
    out: set[str] = set()
    for s in scopes:
        if s.grantee is None:
            return None
        out.add(s.grantee)
    return out


def withdrawal_impact(
    ledger: Ledger,
    events: EventSource,
    subject: str,
    subject_lists: Mapping[str, Sequence[str]],
) -> Impact:
    """What ``subject``'s withdrawals affect.

    Each withdrawn consent key (scope, grantee) takes effect from its earliest ConsentWithdrawn
    block W. A dataset is affected when the subject is in its subject root — known from
    ``subject_lists`` (content root hex -> the holder's subject list; each list is checked against
    the chain's subject root, and lists that do not hash to it are reported and not used) — and a
    withdrawn consent reached it (holder-wide for its holder or an ancestor's, or scoped to it or
    an ancestor). Every dataset derived from an affected one, transitively, is affected too, unless
    its own supplied and verified list leaves the subject out (then it is reported as cleared and
    the lineage is not followed past it). For
    each, the approvals (AccessApproved) and uses (UseRecorded) made at or after its W are listed
    (only the grantee's, when only grantee-specific consents were withdrawn), and for the datasets
    that contain the subject an inclusion proof the subject can check with ``verifySubject``."""
    who = _address(subject, "subject")
    head = int(ledger.client.w3.eth.block_number)
    scopes = _withdrawn_scopes(events, who, head)
    lineage = _Lineage(ledger)

    checks: list[SubjectListCheck] = []
    containing: dict[bytes, list[str]] = {}
    without: set[bytes] = set()
    parsed: dict[bytes, Sequence[str]] = {}
    for root_hex, people in subject_lists.items():
        try:
            parsed[to_bytes32(root_hex, "dataset root")] = people
        except InvalidInput as exc:
            raise InvalidInput(f"subject_lists key {root_hex!r}: {exc.message}") from exc
    lineage.fetch(parsed)
    for root, people in parsed.items():
        rec = lineage.records[root]
        if not rec.exists:
            checks.append(SubjectListCheck(root, False, "no dataset with this content root"))
            continue
        try:
            tree = subject_tree(people)
        except InvalidInput as exc:
            checks.append(SubjectListCheck(root, False, f"invalid subject list: {exc.message}"))
            continue
        if tree.root != rec.subject_root:
            checks.append(
                SubjectListCheck(
                    root, False, f"the list hashes to {tree.root_hex}, the chain records {hex32(rec.subject_root)}"
                )
            )
            continue
        inside = (who,) in tree
        checks.append(SubjectListCheck(root, True, None, inside))
        if inside:
            containing[root] = tree.proof_hex((who,))
        else:
            without.add(root)

    affected: dict[bytes, AffectedDataset] = {}
    outside: list[bytes] = []
    for root, proof in containing.items():
        reaching = _reaching_scopes(lineage, root, scopes)
        if not reaching:
            outside.append(root)
            continue
        rec = lineage.records[root]
        affected[root] = AffectedDataset(
            dataset=root,
            holder=rec.holder,
            status=rec.status,
            from_block=min(s.first_block for s in reaching),
            contains_subject=True,
            proof=proof,
            scopes=reaching,
            grantees=_grantees_of(reaching),
        )

    # descendants, transitively; a dataset reached along several paths takes the earliest block
    cleared: list[bytes] = []
    frontier = sorted(affected, key=lambda r: affected[r].from_block)
    while frontier:
        nxt: list[bytes] = []
        for parent in frontier:
            source = affected[parent]
            for child in events.children_of(parent):
                if child in without:
                    if child not in cleared:
                        cleared.append(child)
                    continue
                entry = affected.get(child)
                if entry is None:
                    rec = lineage.record(child)
                    entry = AffectedDataset(
                        dataset=child,
                        holder=rec.holder,
                        status=rec.status,
                        from_block=source.from_block,
                        scopes=list(source.scopes),
                        grantees=None if source.grantees is None else set(source.grantees),
                    )
                    affected[child] = entry
                    entry.derived_from.append(parent)
                    nxt.append(child)
                    continue
                changed = False
                if parent not in entry.derived_from:
                    entry.derived_from.append(parent)
                if source.from_block < entry.from_block:
                    entry.from_block = source.from_block
                    changed = True
                merged = _merge_grantees(entry.grantees, source.grantees)
                if merged != entry.grantees:
                    entry.grantees = merged
                    changed = True
                for s in source.scopes:
                    if s not in entry.scopes:
                        entry.scopes.append(s)
                if changed:
                    nxt.append(child)
        frontier = nxt

    approvals: list[ApprovalEvent] = []
    uses: list[UseEvent] = []
    for entry in affected.values():
        allowed = entry.grantees
        approvals += [
            a
            for a in events.approvals_for(entry.dataset, entry.from_block)
            if allowed is None or a.requester in allowed
        ]
        uses += [u for u in events.uses_of(entry.dataset, entry.from_block) if allowed is None or u.user in allowed]
    approvals.sort(key=lambda a: (a.block, a.request_id))
    uses.sort(key=lambda u: (u.block, u.use_number))
    datasets = sorted(affected.values(), key=lambda d: (not d.contains_subject, d.from_block, d.dataset))
    return Impact(
        subject=who,
        withdrawals=scopes,
        datasets=datasets,
        approvals=approvals,
        uses=uses,
        list_checks=checks,
        outside_withdrawn_scopes=outside,
        cleared=cleared,
    )
