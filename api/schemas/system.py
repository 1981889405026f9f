"""Answers of health, relay discovery, accounts and access requests."""

from __future__ import annotations

from typing import Any, Literal

from .base import Out


class Health(Out):
    status: Literal["ok"]


class ChainReadiness(Out):
    """The chain node's state: when ``ok``, its id, the latest block and that block's timestamp
    (the contracts' notion of now, in Unix seconds; clients use it as the chain's time); when not,
    the ``error``."""

    ok: bool
    chain_id: int | None = None
    block: int | None = None
    timestamp: int | None = None
    rpc_url: str | None = None
    error: str | None = None


class Readiness(Out):
    """Each dependency's state; 503 with the same body when one is down."""

    uptime_s: float
    chain: ChainReadiness
    ipfs: dict[str, Any]
    indexer: dict[str, Any]
    relay_queue: dict[str, int]
    status: Literal["ready", "not-ready"]


class OperationOut(Out):
    contract: str
    function: str
    resource: str
    signed_by: str
    route: str


class AccessRequestOut(Out):
    request_id: int
    requester: str
    status: str
    expiry: int
    requested_block: int
    dataset: str
    purpose: int
    disease: int
    decided_block: int
    approval_in_force: bool


class AccountOut(Out):
    address: str
    roles: list[str]
    suspended: bool
