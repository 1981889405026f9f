"""What a dataset's verification finds, and the rules that compare what the chain records with
what the metadata document and the files say.

These are pure functions over already fetched data (no chain, no IPFS): the services layer
(:mod:`ledger.services.verification`) fetches, these decide. Every field that both the chain record
and the metadata state is compared, and a difference names the field: content root (the file list),
parents, activity, holder, sharing tier and classification.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from ledger.content.files import FileEntry
from ledger.content.metadata import DatasetMetadata
from ledger.core.classification import Classification, DatasetStatus, Tier
from ledger.core.errors import InvalidInput
from ledger.core.records import ZERO32, DatasetRecord, hex32


class Reason(StrEnum):
    NOT_REGISTERED = "not-registered"
    METADATA_MISSING = "metadata-missing"
    METADATA_TAMPERED = "metadata-tampered"
    METADATA_INVALID = "metadata-invalid"
    CONTENT_ROOT_MISMATCH = "content-root-mismatch"
    PARENTS_MISMATCH = "parents-mismatch"
    ACTIVITY_MISMATCH = "activity-mismatch"
    HOLDER_MISMATCH = "holder-mismatch"
    CLASSIFICATION_MISMATCH = "classification-mismatch"
    TIER_MISMATCH = "tier-mismatch"
    FILE_ALTERED = "file-altered"
    FILE_MISSING = "file-missing"
    FILE_UNEXPECTED = "file-unexpected"
    RETRACTED = "retracted"
    SUSPENDED = "suspended"
    DEPRECATED = "deprecated"
    ANCESTOR_FAILED = "ancestor-failed"


@dataclass(frozen=True)
class Finding:
    reason: Reason
    detail: str

    def to_json(self) -> dict[str, str]:
        return {"reason": self.reason.value, "detail": self.detail}


@dataclass
class DatasetVerification:
    """The result for one dataset."""

    content_root: bytes
    record: DatasetRecord | None = None
    metadata: DatasetMetadata | None = None
    metadata_cid: str | None = None
    failures: list[Finding] = field(default_factory=list)
    warnings: list[Finding] = field(default_factory=list)
    files_checked: int = 0

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def reasons(self) -> set[Reason]:
        return {f.reason for f in self.failures} | {w.reason for w in self.warnings}

    def to_json(self) -> dict[str, Any]:
        return {
            "content_root": hex32(self.content_root),
            "ok": self.ok,
            "status": self.record.status.name.lower() if self.record else "not-registered",
            "holder": self.record.holder if self.record else None,
            "metadata_cid": self.metadata_cid,
            "parents": [hex32(p) for p in self.record.parents] if self.record else [],
            "files_checked": self.files_checked,
            "failures": [f.to_json() for f in self.failures],
            "warnings": [w.to_json() for w in self.warnings],
        }


@dataclass
class LineageReport:
    """Every ancestor's result, the edges, and what the walk cost."""

    root: bytes
    nodes: dict[bytes, DatasetVerification]
    edges: list[tuple[bytes, bytes]]  # (child, parent)
    rpc_calls: int = 0
    ipfs_calls: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(n.ok for n in self.nodes.values())

    def failures(self) -> list[tuple[bytes, Finding]]:
        return [(root, f) for root, n in self.nodes.items() for f in n.failures]

    def flagged_ancestors(self) -> dict[str, list[str]]:
        """Ancestors that are suspended, retracted or deprecated, by status."""
        out: dict[str, list[str]] = {"suspended": [], "retracted": [], "deprecated": []}
        for root, n in self.nodes.items():
            if root == self.root or n.record is None:
                continue
            name = n.record.status.name.lower()
            if name in out:
                out[name].append(hex32(root))
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "root": hex32(self.root),
            "ok": self.ok,
            "nodes": [n.to_json() for n in self.nodes.values()],
            "edges": [{"child": hex32(c), "parent": hex32(p)} for c, p in self.edges],
            "flagged_ancestors": self.flagged_ancestors(),
            "cost": {"rpc_calls": self.rpc_calls, "ipfs_calls": self.ipfs_calls, "seconds": round(self.seconds, 4)},
        }


def check_status(result: DatasetVerification) -> None:
    rec = result.record
    assert rec is not None
    if rec.status == DatasetStatus.RETRACTED:
        result.failures.append(Finding(Reason.RETRACTED, "the holder retracted this dataset"))
    elif rec.status == DatasetStatus.SUSPENDED:
        result.failures.append(Finding(Reason.SUSPENDED, "an auditor suspended this dataset"))
    elif rec.status == DatasetStatus.DEPRECATED:
        succ = hex32(rec.successor) if rec.successor != ZERO32 else "unknown"
        result.warnings.append(Finding(Reason.DEPRECATED, f"superseded by {succ}"))


def check_metadata(result: DatasetVerification, data: bytes) -> None:
    rec = result.record
    assert rec is not None
    try:
        md = DatasetMetadata.from_bytes(data)
    except InvalidInput as exc:
        result.failures.append(Finding(Reason.METADATA_INVALID, str(exc)))
        return
    result.metadata = md
    root = md.content_root()
    if root != rec.content_root:
        result.failures.append(
            Finding(
                Reason.CONTENT_ROOT_MISMATCH,
                f"metadata file list hashes to {hex32(root)}, chain records {hex32(rec.content_root)}",
            )
        )
    md_parents = sorted(bytes.fromhex(p[2:]) for p in md.parents)
    if md_parents != sorted(rec.parents):
        result.failures.append(
            Finding(
                Reason.PARENTS_MISMATCH,
                f"metadata names parents {[hex32(p) for p in md_parents]}, "
                f"chain records {[hex32(p) for p in rec.parents]}",
            )
        )
    activity = md.activity_digest() or ZERO32
    if activity != rec.activity_digest:
        result.failures.append(
            Finding(
                Reason.ACTIVITY_MISMATCH,
                f"metadata activity hashes to {hex32(activity)}, chain records {hex32(rec.activity_digest)}",
            )
        )
    if md.holder.lower() != rec.holder.lower():
        result.failures.append(Finding(Reason.HOLDER_MISMATCH, f"metadata holder {md.holder}, chain {rec.holder}"))
    if int(md.classification) != rec.classification:
        result.failures.append(
            Finding(
                Reason.CLASSIFICATION_MISMATCH,
                f"metadata classification {_classification(int(md.classification))}, "
                f"chain records {_classification(rec.classification)}",
            )
        )
    if md.tier != rec.tier:
        # provisional: the holder may have changed the tier since (setSharing); settle_tier decides
        result.failures.append(
            Finding(
                Reason.TIER_MISMATCH,
                f"metadata sharing tier {md.tier.name.lower()}, chain records {rec.tier.name.lower()}",
            )
        )


def tier_unsettled(result: DatasetVerification) -> bool:
    """Whether the metadata's tier differs from the record's, so the registration tier is needed."""
    return any(f.reason is Reason.TIER_MISMATCH for f in result.failures)


def settle_tier(result: DatasetVerification, registered_tier: Tier | None) -> None:
    """The metadata states the tier the dataset was registered under; the record holds the current
    one, which the holder may change later. A tier that differs now is a mismatch only if it
    differed at registration (``registered_tier``, from the DatasetRegistered event; None: unknown,
    the mismatch stands)."""
    md = result.metadata
    if md is None or registered_tier is None or not tier_unsettled(result):
        return
    result.failures = [f for f in result.failures if f.reason is not Reason.TIER_MISMATCH]
    if md.tier != registered_tier:
        result.failures.append(
            Finding(
                Reason.TIER_MISMATCH,
                f"metadata sharing tier {md.tier.name.lower()}, "
                f"chain registered {registered_tier.name.lower()}",
            )
        )


def _classification(code: int) -> str:
    # the contract stores any uint16, so a chain code need not be one the taxonomy names
    try:
        return f"0x{code:04x} ({Classification(code).label.en})"
    except ValueError:
        return f"0x{code:04x}"


def check_files(result: DatasetVerification, entries: Sequence[FileEntry]) -> None:
    md = result.metadata
    if md is None:
        return
    expected = {e.path: e for e in md.files}
    actual = {e.path: e for e in entries}
    for path, e in expected.items():
        got = actual.get(path)
        if got is None:
            result.failures.append(Finding(Reason.FILE_MISSING, f"{path} is listed but not present"))
        elif got.sha256 != e.sha256 or got.size != e.size:
            result.failures.append(
                Finding(
                    Reason.FILE_ALTERED,
                    f"{path}: sha256 {got.sha256} size {got.size}, registered {e.sha256} size {e.size}",
                )
            )
    for path in actual.keys() - expected.keys():
        result.failures.append(Finding(Reason.FILE_UNEXPECTED, f"{path} is present but not registered"))
    result.files_checked = len(actual)
