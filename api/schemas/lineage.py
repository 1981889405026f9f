"""Answers about lineage and verification."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from .base import Out


class Edge(BaseModel):
    child: str
    parent: str


class LineageNode(BaseModel):
    """An ancestor as the chain records it (extra fields of the library's graph are left out)."""

    content_root: str
    status: str
    holder: str | None
    parents: list[str]


class LineageGraph(BaseModel):
    root: str
    nodes: list[LineageNode]
    edges: list[Edge]


class DatasetVerificationOut(Out):
    content_root: str
    ok: bool
    status: str
    holder: str | None
    metadata_cid: str | None
    parents: list[str]
    files_checked: Any
    failures: list[dict[str, Any]]
    warnings: list[dict[str, Any]]


class LineageReportOut(Out):
    root: str
    ok: bool
    nodes: list[DatasetVerificationOut]
    edges: list[Edge]
    flagged_ancestors: Any
    cost: dict[str, Any]


class LineageSummary(Out):
    ok: bool
    flagged_ancestors: Any
    failures: list[dict[str, Any]]


class FileVerificationOut(Out):
    """Which dataset holds a file, the Merkle proof the chain accepted, and the dataset's check."""

    ok: bool
    file: dict[str, Any]
    dataset: str | None
    entry_path: str | None
    proof: list[str]
    proof_verified_on_chain: bool
    dataset_verification: DatasetVerificationOut | None
    lineage: LineageSummary | None = None


class ProvDocument(Out):
    """W3C PROV-JSON (entities, activities, agents and their relations)."""


class RunEvent(Out):
    """An OpenLineage run event."""

    eventTime: str
    eventType: str
