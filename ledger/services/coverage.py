"""Consent meets lineage: which of a cohort have consent in force, and the consent filter.

A contract cannot loop over a cohort, so cohort-level enforcement goes through the lineage:

- :func:`compute_coverage` asks the consent registry itself (``inForceBatch``, an ``eth_call``
  pinned to one block ``N``) which of a holder's subjects have consent in force for a purpose on a
  dataset. The contract's rule is the authority; nothing is decided off chain.
- :func:`register_consent_filter` registers that subset as a derived dataset whose activity is
  "consent filter for purpose P at block N" and whose subject root is the subset's Merkle root.

The other half lives beside it: :mod:`ledger.services.recheck` recomputes a registered filter
from the consent history, :mod:`ledger.services.impact` answers what a withdrawal affects, and
:mod:`ledger.services.cohort` holds the helpers the three share (the filter's parameters digest
among them).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount

from ledger import __version__
from ledger.content.files import FileEntry, hash_folder
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
)
from ledger.core.classification import Classification, Tier
from ledger.core.errors import DatasetNotFound, InvalidInput, LedgerError
from ledger.core.records import ZERO32, ZERO_ADDRESS, DatasetRecord, hex32, to_bytes32
from ledger.rules import datause
from ledger.services import cohort
from ledger.services.ledger import Ledger, Registration

__all__ = ["CoverageResult", "compute_coverage", "register_consent_filter"]


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
        return cohort.root_of(self.covered)

    def to_json(self) -> dict[str, Any]:
        return {
            "dataset": hex32(self.dataset),
            "block": self.block,
            "timestamp": self.timestamp,
            "purpose": cohort.purpose_json(self.purpose),
            "grantee": cohort.grantee_json(self.grantee),
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
    chunk: int = cohort.DEFAULT_CHUNK,
) -> CoverageResult:
    """Which of ``subjects`` have consent in force for ``purpose`` on ``dataset_root`` at ``block``
    (default: the latest block less the configured confirmations), as the consent registry's own
    ``inForceBatch`` answers at that block. ``grantee`` also counts consents given to that user
    only. Covered and excluded subjects keep the order given. Raises :class:`DatasetNotFound` if
    the dataset was not registered at that block."""
    root = to_bytes32(dataset_root, "dataset root")
    if chunk < 1:
        raise InvalidInput("chunk must be positive")
    people = cohort.normalise_subjects(subjects)
    n = cohort.pin_block(ledger, block)
    if not ledger.client.call(ledger.datasets.functions.exists(root), n):
        raise DatasetNotFound(f"no dataset with content root {hex32(root)} at block {n}")
    record = DatasetRecord.from_chain(ledger.client.call(ledger.datasets.functions.getDataset(root), n))
    timestamp = cohort.block_timestamp(ledger, n)
    flags = cohort.contract_in_force(ledger, people, root, purpose, grantee, n, chunk)
    covered = [s for s, ok in zip(people, flags, strict=True) if ok]
    excluded = [s for s, ok in zip(people, flags, strict=True) if not ok]
    g = cohort.address(grantee, "grantee") if grantee else None
    return CoverageResult(
        dataset=root,
        block=n,
        timestamp=timestamp,
        purpose=purpose,
        covered=covered,
        excluded=excluded,
        grantee=None if g == ZERO_ADDRESS else g,
        dataset_subject_root=record.subject_root,
        subjects_match_dataset=bool(people) and cohort.root_of(people) == record.subject_root,
    )


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
        parameters_digest=hex32(
            cohort.filter_parameters_digest(parent, coverage.purpose, coverage.block, coverage.grantee)
        ),
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
