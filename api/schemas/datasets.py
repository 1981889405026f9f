"""Answers about datasets: the record with its metadata, versions, counters."""

from __future__ import annotations

from typing import Any

from .base import Out


class DatasetRecordOut(Out):
    content_root: str
    holder: str
    tier: str
    status: str
    classification: int
    embargo_end: int
    registered_block: int
    metadata_digest: str
    activity_digest: str
    subject_root: str
    successor: str | None
    derived_count: int
    parents: list[str]


class MetadataError(Out):
    type: str
    detail: str


class DatasetOut(Out):
    """The chain record and the metadata document from IPFS (or why it could not be read)."""

    record: DatasetRecordOut
    metadata_cid: str
    metadata: dict[str, Any] | None
    metadata_error: MetadataError | None


class VersionsOut(Out):
    dataset: str
    status: str
    successors: list[str]
    predecessors: list[str]
    latest: str


class StatsOut(Out):
    uses: int
    distinct_users: int
    derived_datasets: int
