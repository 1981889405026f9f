"""Shared helpers of the index's queries: key normalisation, pagination, and the JSON form of each
kind of row (the index's answers are plain JSON-able dicts)."""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from typing import Any

from ledger.core.errors import InvalidInput
from ledger.core.records import ZERO_ADDRESS, ConsentState, to_bytes32
from ledger.history.events import checksum
from ledger.history.index.schema import CONSENT_STATES, REQUEST_STATUSES, STATUS_NAMES, TIER_NAMES
from ledger.history.sources import scope_json
from ledger.rules import consent as consent_rules
from ledger.rules import datause

JSON = dict[str, Any]
Page = dict[str, Any]  # {"items": [...], "next_cursor": int | None}

#: most rows a paginated query returns at once
MAX_LIMIT = 100_000

#: the columns of ``events`` in the order ``event_json`` reads them
EVENT_COLS = "e.seq, e.block, e.log_index, e.tx_index, e.tx_hash, e.timestamp, e.contract, e.event, e.args"
#: the columns of ``consent_history`` in the order ``history_json`` reads them
HISTORY_COLS = (
    "seq, consent_id, subject, action, scope_kind, scope, grantee, purposes, disease, expiry, actor, "
    "block, tx_hash, timestamp"
)
#: the columns of ``uses`` in the order ``use_json`` reads them
USE_COLS = "seq, dataset, user, request_id, purpose, disease, result_digest, use_number, block, tx_hash, timestamp"

dumps = json.JSONEncoder(separators=(",", ":")).encode


def sqlint(value: int) -> int | str:
    """SQLite integers are 64-bit signed: larger uint256 values are stored as decimal text."""
    return value if -(1 << 63) <= value < (1 << 63) else str(value)


def norm_root(value: str | bytes) -> str:
    """A content root (or any bytes32) as lower-case 0x hex."""
    return "0x" + to_bytes32(value, "root").hex()


def norm_address(value: str) -> str:
    try:
        return checksum(value)
    except (ValueError, TypeError) as exc:
        raise InvalidInput(f"{value!r} is not an address", hint="give 0x followed by 40 hex digits") from exc


def sql_limit(limit: int | None) -> int:
    """A page size as SQLite's LIMIT (-1: no limit)."""
    if limit is None:
        return -1
    if limit < 0:
        raise InvalidInput(f"limit must be >= 0, got {limit}")
    return min(limit, MAX_LIMIT)


def paged(items: list[JSON], limit: int | None) -> Page:
    """One page of a paginated query, with the cursor of the next (None on the last page)."""
    full = limit is not None and limit > 0 and len(items) >= min(limit, MAX_LIMIT)
    return {"items": items, "next_cursor": items[-1]["seq"] if full and items else None}


@functools.lru_cache(maxsize=4096)
def _describe(mask: int) -> tuple[str, ...]:
    return tuple(datause.describe(mask))


@functools.lru_cache(maxsize=4096)
def _disease_label(code: int) -> str | None:
    return datause.disease_label(code)


def event_json(r: Sequence[Any], addresses: Mapping[str, str], role: str | None = None) -> JSON:
    # r: seq, block, log_index, tx_index, tx_hash, timestamp, contract, event, args
    out: JSON = {
        "seq": r[0],
        "contract": r[6],
        "event": r[7],
        "block_number": r[1],
        "block_timestamp": r[5],
        "tx_hash": r[4],
        "tx_index": r[3],
        "log_index": r[2],
        "address": addresses.get(r[6], ""),
        "args": json.loads(r[8]),
    }
    if role is not None:
        out["role"] = role
    return out


def dataset_json(r: Mapping[str, Any]) -> JSON:
    status = int(r["status"])
    tier = int(r["tier"])
    return {
        "content_root": r["root"],
        "holder": r["holder"],
        "metadata_digest": r["metadata_digest"],
        "activity_digest": r["activity_digest"],
        "subject_root": r["subject_root"],
        "parents": json.loads(r["parents"]),
        "tier": TIER_NAMES[tier] if tier < len(TIER_NAMES) else tier,
        "classification": r["classification"],
        "embargo_end": r["embargo_end"],
        "embargo_overridden": bool(r["embargo_overridden"]),
        "status": STATUS_NAMES[status] if status < len(STATUS_NAMES) else status,
        "successor": r["successor"],
        "registered_block": r["registered_block"],
        "registered_at": r["registered_at"],
        "registered_tx": r["registered_tx"],
        "updated_block": r["updated_block"],
    }


def terms_json(purposes: Any, disease: Any) -> JSON:
    p = int(purposes) if purposes is not None else 0
    d = int(disease) if disease is not None else 0
    return {
        "purposes": p,
        "purpose_codes": list(_describe(p)),
        "disease": d,
        "disease_code": _disease_label(d),
    }


def consent_json(r: Mapping[str, Any], now: int | None) -> JSON:
    state = int(r["state"])
    expiry = int(r["expiry"] or 0)
    status = CONSENT_STATES[state]
    if now is not None and expiry <= now and consent_rules.is_active(ConsentState(state)):
        status = "expired"
    return {
        "consent_id": r["consent_id"],
        "subject": r["subject"],
        "scope": scope_json(int(r["scope_kind"]), r["scope"]),
        "grantee": None if r["grantee"] == ZERO_ADDRESS else r["grantee"],
        **terms_json(r["purposes"], r["disease"]),
        "expiry": expiry,
        "state": CONSENT_STATES[state],
        "status": status,
        "actor": r["actor"],
        "given_block": r["given_block"],
        "updated_block": r["updated_block"],
    }


_HISTORY_EVENTS = {"given": "ConsentGiven", "renewed": "ConsentRenewed", "withdrawn": "ConsentWithdrawn"}


def history_json(r: Sequence[Any]) -> JSON:
    return {
        "seq": r[0],
        "event": _HISTORY_EVENTS[r[3]],
        "action": r[3],
        "consent_id": r[1],
        "subject": r[2],
        "scope": scope_json(int(r[4]), r[5]),
        "grantee": None if r[6] == ZERO_ADDRESS else r[6],
        **terms_json(r[7], r[8]),
        "expiry": r[9],
        "actor": r[10],
        "block_number": r[11],
        "tx_hash": r[12],
        "block_timestamp": r[13],
    }


def request_json(r: Mapping[str, Any]) -> JSON:
    status = int(r["status"])
    return {
        "request_id": r["request_id"],
        "dataset": r["dataset"],
        "requester": r["requester"],
        **terms_json(r["purpose"], r["disease"]),
        "protocol_digest": r["protocol_digest"],
        "status": REQUEST_STATUSES[status],
        "expiry": r["expiry"],
        "reviewer": r["reviewer"],
        "decision_digest": r["decision_digest"],
        "requested_block": r["requested_block"],
        "decided_block": r["decided_block"],
        "tx_hash": r["tx_hash"],
    }


def use_json(r: Sequence[Any]) -> JSON:
    return {
        "seq": r[0],
        "dataset": r[1],
        "user": r[2],
        "request_id": r[3],
        **terms_json(r[4], r[5]),
        "result_digest": r[6],
        "use_number": r[7],
        "block_number": r[8],
        "tx_hash": r[9],
        "block_timestamp": r[10],
    }
