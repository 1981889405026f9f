"""Audit answers: trails from the index (pages of events) and withdrawal impact."""

from __future__ import annotations

from typing import Any

from .base import Out


class TrailEvent(Out):
    """One indexed event touching the dataset or account, with the role it played."""

    seq: int
    contract: str
    event: str
    block_number: int
    block_timestamp: int | None
    tx_hash: str
    tx_index: int
    log_index: int
    address: str
    args: dict[str, Any]


class DatasetTrail(Out):
    items: list[TrailEvent]
    next_cursor: int | None
    dataset: dict[str, Any] | None


class UserTrail(Out):
    items: list[TrailEvent]
    next_cursor: int | None
    address: str
    roles: list[str]


class ImpactOut(Out):
    """What a subject's withdrawal affects."""

    subject: str
    withdrawals: list[dict[str, Any]]
    datasets: list[dict[str, Any]]
    approvals: list[dict[str, Any]]
    uses: list[dict[str, Any]]
