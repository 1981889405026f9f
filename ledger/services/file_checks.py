"""Which registered dataset holds a file, with its lineage's soundness: the answer the service's
and the CLI's ``verify`` give for a file or a (sha256, size) pair."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ledger.core.errors import InvalidInput
from ledger.core.records import hex32
from ledger.history.index import Indexer
from ledger.services.audit import all_dataset_roots
from ledger.services.ledger import Ledger
from ledger.services.verification import verify_file, verify_lineage


def candidate_datasets(indexer: Indexer | None, given: Sequence[str] | None) -> list[str]:
    """The datasets to search: those given, or every registered one (from the index)."""
    if given:
        return list(given)
    if indexer is None:
        raise InvalidInput("name the candidate datasets", hint="the indexer is not running to search all datasets")
    return all_dataset_roots(indexer)


def file_report(
    ledger: Ledger, indexer: Indexer | None, *, sha256: str, size: int, datasets: Sequence[str] | None = None
) -> dict[str, Any]:
    """The file's verification (``FileVerification.to_json``) and, when a dataset holds it, the
    lineage summary of that dataset: ``ok``, the flagged ancestors and each failure."""
    result = verify_file(ledger, sha256=sha256, size=size, datasets=candidate_datasets(indexer, datasets))
    body: dict[str, Any] = result.to_json()
    if result.dataset is not None:
        report = verify_lineage(ledger, result.dataset)
        body["lineage"] = {
            "ok": report.ok,
            "flagged_ancestors": report.flagged_ancestors(),
            "failures": [{"dataset": hex32(r), **f.to_json()} for r, f in report.failures()],
        }
    return body
