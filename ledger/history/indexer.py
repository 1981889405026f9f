"""The event indexer: follows the ledger's events into a local SQLite database for the reads that
need history (audit trails, a subject's consents, uses of a dataset, lineage walks).

The database is a cache of the chain and can always be rebuilt from it. ``Indexer.sync`` reads
the confirmed blocks it has not seen (``LogSource``), one transaction per chunk of blocks, and
records the last block it processed with its hash. It rebuilds by itself when the database was
made for another chain or deployment (chain id, contract addresses, deploy block and its hash
are stored), and rolls back to the newest block whose stored hash still matches the chain when a
reorganisation replaced blocks it had indexed (or rebuilds when none of the stored hashes match).

Tables: ``events`` (every decoded event, args as JSON; the primary key ``seq`` is
``block << 20 | log_index``, so it orders like the chain and doubles as the pagination cursor),
``touches`` (which dataset roots and accounts an event concerns: the trails), and normalised,
indexed tables for the audit queries: ``datasets``, ``lineage``, ``consents`` with
``consent_history``, ``delegates`` with ``delegate_history``, ``access_requests`` with
``access_decisions``, ``uses``, ``suspensions``, ``roles`` with ``role_history`` and ``forwards``
(executed ERC-2771 forward requests). Current-state rows (datasets, consents, requests, delegates,
roles) are kept in a write-back cache and written once per chunk; history rows are inserted with
``executemany``.

One writer (a thread lock within the process and a lock file across processes); any number of
readers (WAL mode, one connection per reading thread, snapshot per query).
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from eth_utils.crypto import keccak

from ledger.core.errors import InvalidInput, LedgerError
from ledger.core.records import ZERO32_HEX, ZERO_ADDRESS
from ledger.history.events import (
    SEQ_SHIFT,
    LedgerEvent,
    LogSource,
    block_seq_start,
    checksum,
)
from ledger.rules import datause

if TYPE_CHECKING:
    from ledger.chain.client import ChainClient
    from ledger.core.config import Settings
    from ledger.history.sources import ApprovalEvent, ConsentEvent, UseEvent

log = logging.getLogger(__name__)

JSON = dict[str, Any]
Page = dict[str, Any]  # {"items": [...], "next_cursor": int | None}

SCHEMA_VERSION = 1
#: most rows a paginated query returns at once
MAX_LIMIT = 100_000

ROLE_NAMES: dict[str, str] = {
    ZERO32_HEX: "admin",
    **{"0x" + keccak(text=f"{n.upper()}_ROLE").hex(): n for n in ("holder", "reviewer", "user", "auditor")},
}
TIER_NAMES = ("open", "registered", "controlled", "closed")
STATUS_NAMES = ("none", "active", "deprecated", "suspended", "retracted")
CONSENT_STATES = ("none", "given", "renewed", "withdrawn")
REQUEST_STATUSES = ("none", "pending", "approved", "denied", "revoked")


class IndexStateError(LedgerError):
    """The index cannot do what was asked (another writer advanced it, it is not initialised)."""

    code = "index-error"


# ---------------------------------------------------------------------------------------------
# schema

_TABLES: dict[str, str] = {
    "meta": "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)",
    "blocks": "CREATE TABLE blocks (number INTEGER PRIMARY KEY, hash TEXT NOT NULL)",
    "events": """CREATE TABLE events (
        seq INTEGER PRIMARY KEY, block INTEGER NOT NULL, log_index INTEGER NOT NULL,
        tx_index INTEGER NOT NULL, tx_hash TEXT NOT NULL, timestamp INTEGER NOT NULL,
        contract TEXT NOT NULL, event TEXT NOT NULL, args TEXT NOT NULL)""",
    "touches": """CREATE TABLE touches (
        entity TEXT NOT NULL, seq INTEGER NOT NULL, role TEXT NOT NULL,
        PRIMARY KEY (entity, seq)) WITHOUT ROWID""",
    "datasets": """CREATE TABLE datasets (
        root TEXT PRIMARY KEY, holder TEXT NOT NULL, metadata_digest TEXT, activity_digest TEXT,
        subject_root TEXT, parents TEXT NOT NULL, tier INTEGER, classification INTEGER,
        embargo_end INTEGER, status INTEGER, successor TEXT, embargo_overridden INTEGER NOT NULL,
        registered_block INTEGER, registered_seq INTEGER, registered_tx TEXT, registered_at INTEGER,
        updated_block INTEGER)""",
    "lineage": """CREATE TABLE lineage (
        child TEXT NOT NULL, parent TEXT NOT NULL, block INTEGER NOT NULL, seq INTEGER NOT NULL,
        PRIMARY KEY (child, parent)) WITHOUT ROWID""",
    "consents": """CREATE TABLE consents (
        consent_id TEXT PRIMARY KEY, subject TEXT NOT NULL, scope_kind INTEGER NOT NULL,
        scope TEXT NOT NULL, grantee TEXT NOT NULL, purposes INTEGER, disease INTEGER,
        expiry INTEGER, state INTEGER, actor TEXT, given_block INTEGER, given_seq INTEGER,
        updated_block INTEGER, updated_seq INTEGER)""",
    "consent_history": """CREATE TABLE consent_history (
        seq INTEGER PRIMARY KEY, consent_id TEXT NOT NULL, subject TEXT NOT NULL,
        action TEXT NOT NULL, scope_kind INTEGER, scope TEXT, grantee TEXT, purposes INTEGER,
        disease INTEGER, expiry INTEGER, actor TEXT, block INTEGER NOT NULL, tx_hash TEXT,
        timestamp INTEGER)""",
    "delegates": """CREATE TABLE delegates (
        subject TEXT NOT NULL, delegate TEXT NOT NULL, expiry INTEGER, active INTEGER,
        appointed_block INTEGER, updated_block INTEGER,
        PRIMARY KEY (subject, delegate)) WITHOUT ROWID""",
    "delegate_history": """CREATE TABLE delegate_history (
        seq INTEGER PRIMARY KEY, subject TEXT NOT NULL, delegate TEXT NOT NULL,
        action TEXT NOT NULL, expiry INTEGER, block INTEGER NOT NULL, tx_hash TEXT,
        timestamp INTEGER)""",
    "access_requests": """CREATE TABLE access_requests (
        request_id INTEGER PRIMARY KEY, dataset TEXT NOT NULL, requester TEXT NOT NULL,
        purpose INTEGER, disease INTEGER, protocol_digest TEXT, status INTEGER, expiry INTEGER,
        reviewer TEXT, decision_digest TEXT, requested_block INTEGER, requested_seq INTEGER,
        tx_hash TEXT, timestamp INTEGER, decided_block INTEGER)""",
    "access_decisions": """CREATE TABLE access_decisions (
        seq INTEGER PRIMARY KEY, request_id INTEGER NOT NULL, dataset TEXT NOT NULL,
        requester TEXT NOT NULL, reviewer TEXT NOT NULL, decision TEXT NOT NULL, digest TEXT,
        expiry INTEGER, block INTEGER NOT NULL, tx_hash TEXT, timestamp INTEGER)""",
    "uses": """CREATE TABLE uses (
        seq INTEGER PRIMARY KEY, dataset TEXT NOT NULL, user TEXT NOT NULL, request_id INTEGER,
        purpose INTEGER, disease INTEGER, result_digest TEXT, use_number INTEGER,
        block INTEGER NOT NULL, tx_hash TEXT, timestamp INTEGER)""",
    "suspensions": """CREATE TABLE suspensions (
        seq INTEGER PRIMARY KEY, target_kind TEXT NOT NULL, target TEXT NOT NULL,
        action TEXT NOT NULL, auditor TEXT, reason_digest TEXT, restored_status INTEGER,
        block INTEGER NOT NULL, tx_hash TEXT, timestamp INTEGER)""",
    "roles": """CREATE TABLE roles (
        role TEXT NOT NULL, account TEXT NOT NULL, active INTEGER NOT NULL, sender TEXT,
        granted_block INTEGER, updated_block INTEGER,
        PRIMARY KEY (role, account)) WITHOUT ROWID""",
    "role_history": """CREATE TABLE role_history (
        seq INTEGER PRIMARY KEY, role TEXT NOT NULL, account TEXT NOT NULL, action TEXT NOT NULL,
        sender TEXT, block INTEGER NOT NULL, tx_hash TEXT, timestamp INTEGER)""",
    "forwards": """CREATE TABLE forwards (
        seq INTEGER PRIMARY KEY, signer TEXT NOT NULL, nonce INTEGER NOT NULL,
        success INTEGER NOT NULL, block INTEGER NOT NULL, tx_hash TEXT, timestamp INTEGER)""",
}

_INDEXES: tuple[str, ...] = (
    "CREATE INDEX events_by_name ON events(event, seq)",
    "CREATE INDEX datasets_by_holder ON datasets(holder, registered_seq)",
    "CREATE INDEX datasets_by_successor ON datasets(successor) WHERE successor IS NOT NULL",
    "CREATE INDEX lineage_by_parent ON lineage(parent, child)",
    "CREATE INDEX consents_by_subject ON consents(subject, given_seq)",
    "CREATE INDEX consents_by_scope ON consents(scope, scope_kind)",
    "CREATE INDEX consent_history_by_id ON consent_history(consent_id, seq)",
    "CREATE INDEX consent_history_by_subject ON consent_history(subject, seq)",
    "CREATE INDEX delegates_by_delegate ON delegates(delegate)",
    "CREATE INDEX delegate_history_by_subject ON delegate_history(subject, seq)",
    "CREATE INDEX access_requests_by_dataset ON access_requests(dataset, requested_seq)",
    "CREATE INDEX access_requests_by_requester ON access_requests(requester, requested_seq)",
    "CREATE INDEX access_decisions_by_dataset ON access_decisions(dataset, decision, seq)",
    "CREATE INDEX access_decisions_by_requester ON access_decisions(requester, seq)",
    "CREATE INDEX access_decisions_by_request ON access_decisions(request_id, seq)",
    "CREATE INDEX uses_by_dataset ON uses(dataset, seq)",
    "CREATE INDEX uses_by_user ON uses(user, seq)",
    "CREATE INDEX uses_by_request ON uses(request_id, seq) WHERE request_id != 0",
    "CREATE INDEX suspensions_by_target ON suspensions(target, seq)",
    "CREATE INDEX roles_by_account ON roles(account)",
    "CREATE INDEX role_history_by_account ON role_history(account, seq)",
    "CREATE INDEX forwards_by_signer ON forwards(signer, nonce)",
)

#: tables derived from ``events`` (cleared and refilled when re-projecting)
_DERIVED = tuple(t for t in _TABLES if t not in ("meta", "blocks", "events"))


# ---------------------------------------------------------------------------------------------
# identity of what an index was built from


@dataclass(frozen=True)
class IndexIdentity:
    """What an index was built from; another value means the index must be rebuilt."""

    chain_id: int
    deploy_block: int
    addresses: dict[str, str]
    deploy_block_hash: str | None = None

    def mismatch(self, other: IndexIdentity | None) -> str | None:
        """Why an index built for ``other`` does not fit this one (None if it does)."""
        if other is None:
            return "new index"
        if other.chain_id != self.chain_id:
            return f"the index was built for chain {other.chain_id}, the node is chain {self.chain_id}"
        if {k: v.lower() for k, v in other.addresses.items()} != {k: v.lower() for k, v in self.addresses.items()}:
            return "the index was built for another deployment (contract addresses differ)"
        if other.deploy_block != self.deploy_block:
            return f"the index was built from block {other.deploy_block}, the deployment starts at {self.deploy_block}"
        if self.deploy_block_hash and other.deploy_block_hash and other.deploy_block_hash != self.deploy_block_hash:
            return "the chain was reset (the deploy block's hash differs)"
        return None


@dataclass
class SyncReport:
    """What one ``sync`` did."""

    from_block: int
    to_block: int
    head: int
    safe_head: int
    events: int
    chunks: int
    seconds: float
    rebuilt: str | None = None
    reorg_depth: int = 0

    @property
    def blocks(self) -> int:
        return max(0, self.to_block - self.from_block + 1)

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> JSON:
        d = asdict(self)
        d["blocks"] = self.blocks
        d["events_per_second"] = round(self.events_per_second, 1)
        return d


# ---------------------------------------------------------------------------------------------
# helpers


def _sqlint(value: int) -> int | str:
    """SQLite integers are 64-bit signed: larger uint256 values are stored as decimal text."""
    return value if -(1 << 63) <= value < (1 << 63) else str(value)


def norm_root(value: str | bytes) -> str:
    """A content root (or any bytes32) as lower-case 0x hex."""
    from ledger.core.records import to_bytes32

    return "0x" + to_bytes32(value, "root").hex()


def norm_address(value: str) -> str:
    try:
        return checksum(value)
    except (ValueError, TypeError) as exc:
        raise InvalidInput(f"{value!r} is not an address", hint="give 0x followed by 40 hex digits") from exc


def _limit(limit: int | None) -> int:
    if limit is None:
        return -1
    if limit < 0:
        raise InvalidInput(f"limit must be >= 0, got {limit}")
    return min(limit, MAX_LIMIT)


def _page(items: list[JSON], limit: int | None) -> Page:
    full = limit is not None and limit > 0 and len(items) >= min(limit, MAX_LIMIT)
    return {"items": items, "next_cursor": items[-1]["seq"] if full and items else None}


def _scope_json(kind: int, scope: str) -> JSON:
    if kind == 0:
        return {"kind": "holder", "holder": checksum("0x" + scope[-40:])}
    return {"kind": "dataset", "dataset": scope}


_dumps = json.JSONEncoder(separators=(",", ":")).encode


@functools.lru_cache(maxsize=4096)
def _describe(mask: int) -> tuple[str, ...]:
    return tuple(datause.describe(mask))


@functools.lru_cache(maxsize=4096)
def _disease_label(code: int) -> str | None:
    return datause.disease_label(code)


class _StateTable:
    """Write-back cache of one current-state table: rows are read on first use, changed in
    memory, and written once per chunk (INSERT OR REPLACE). The cache lives for one chunk only:
    hundreds of thousands of cached rows would make every garbage collection of the process a
    pause for the queries served next to the indexer."""

    def __init__(self, name: str, columns: tuple[str, ...], key: tuple[str, ...]) -> None:
        self.name = name
        self.columns = columns
        self.key = key
        where = " AND ".join(f"{k} = ?" for k in key)
        self.sql_get = f"SELECT {', '.join(columns)} FROM {name} WHERE {where}"
        self.sql_put = f"INSERT OR REPLACE INTO {name} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
        self.cache: dict[Any, dict[str, Any] | None] = {}
        self.dirty: set[Any] = set()

    def get(self, conn: sqlite3.Connection, key: Any) -> dict[str, Any] | None:
        try:
            return self.cache[key]
        except KeyError:
            pass
        params = key if isinstance(key, tuple) else (key,)
        row = conn.execute(self.sql_get, params).fetchone()
        value = dict(zip(self.columns, row, strict=True)) if row is not None else None
        self.cache[key] = value
        return value

    def put(self, key: Any, row: dict[str, Any]) -> None:
        self.cache[key] = row
        self.dirty.add(key)

    def flush(self, conn: sqlite3.Connection) -> None:
        if self.dirty:
            cols = self.columns
            rows = []
            for k in self.dirty:
                r = self.cache[k]
                if r is not None:
                    rows.append(tuple(r[c] for c in cols))
            conn.executemany(self.sql_put, rows)
            self.dirty.clear()
        self.cache.clear()

    def clear(self) -> None:
        self.cache.clear()
        self.dirty.clear()


# ---------------------------------------------------------------------------------------------
# projection: events -> rows


_APPEND_SQL: dict[str, str] = {
    "events": "INSERT INTO events VALUES (?,?,?,?,?,?,?,?,?)",
    "touches": "INSERT OR IGNORE INTO touches VALUES (?,?,?)",
    "lineage": "INSERT OR IGNORE INTO lineage VALUES (?,?,?,?)",
    "consent_history": "INSERT INTO consent_history VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
    "delegate_history": "INSERT INTO delegate_history VALUES (?,?,?,?,?,?,?,?)",
    "access_decisions": "INSERT INTO access_decisions VALUES (?,?,?,?,?,?,?,?,?,?,?)",
    "uses": "INSERT INTO uses VALUES (?,?,?,?,?,?,?,?,?,?,?)",
    "suspensions": "INSERT INTO suspensions VALUES (?,?,?,?,?,?,?,?,?,?)",
    "role_history": "INSERT INTO role_history VALUES (?,?,?,?,?,?,?,?)",
    "forwards": "INSERT INTO forwards VALUES (?,?,?,?,?,?,?)",
}


#: access decision event -> (decision, request status, digest argument)
_DECISIONS: dict[str, tuple[str, int, str]] = {
    "AccessApproved": ("approved", 2, "conditionsDigest"),
    "AccessDenied": ("denied", 3, "reasonDigest"),
    "AccessRevoked": ("revoked", 4, "reasonDigest"),
}


class _Projector:
    """Turns events into table rows (one instance per writer connection)."""

    def __init__(self) -> None:
        self.datasets = _StateTable(
            "datasets",
            (
                "root",
                "holder",
                "metadata_digest",
                "activity_digest",
                "subject_root",
                "parents",
                "tier",
                "classification",
                "embargo_end",
                "status",
                "successor",
                "embargo_overridden",
                "registered_block",
                "registered_seq",
                "registered_tx",
                "registered_at",
                "updated_block",
            ),
            ("root",),
        )
        self.consents = _StateTable(
            "consents",
            (
                "consent_id",
                "subject",
                "scope_kind",
                "scope",
                "grantee",
                "purposes",
                "disease",
                "expiry",
                "state",
                "actor",
                "given_block",
                "given_seq",
                "updated_block",
                "updated_seq",
            ),
            ("consent_id",),
        )
        self.delegates = _StateTable(
            "delegates",
            ("subject", "delegate", "expiry", "active", "appointed_block", "updated_block"),
            ("subject", "delegate"),
        )
        self.requests = _StateTable(
            "access_requests",
            (
                "request_id",
                "dataset",
                "requester",
                "purpose",
                "disease",
                "protocol_digest",
                "status",
                "expiry",
                "reviewer",
                "decision_digest",
                "requested_block",
                "requested_seq",
                "tx_hash",
                "timestamp",
                "decided_block",
            ),
            ("request_id",),
        )
        self.roles = _StateTable(
            "roles", ("role", "account", "active", "sender", "granted_block", "updated_block"), ("role", "account")
        )
        self.states = (self.datasets, self.consents, self.delegates, self.requests, self.roles)
        self.rows: dict[str, list[tuple[Any, ...]]] = {t: [] for t in _APPEND_SQL}
        self._handlers: dict[str, Callable[[sqlite3.Connection, LedgerEvent, int, dict[str, str]], None]] = {
            "DatasetRegistered": self._dataset_registered,
            "DerivedFrom": self._derived_from,
            "SharingChanged": self._sharing_changed,
            "DatasetDeprecated": self._dataset_deprecated,
            "DatasetRetracted": self._dataset_retracted,
            "DatasetSuspended": self._dataset_suspended,
            "DatasetReinstated": self._dataset_reinstated,
            "ConsentGiven": self._consent_given,
            "ConsentRenewed": self._consent_renewed,
            "ConsentWithdrawn": self._consent_withdrawn,
            "DelegateAppointed": self._delegate_appointed,
            "DelegateRevoked": self._delegate_revoked,
            "AccessRequested": self._access_requested,
            "AccessApproved": self._access_decided,
            "AccessDenied": self._access_decided,
            "AccessRevoked": self._access_decided,
            "EmbargoOverridden": self._embargo_overridden,
            "UserSuspendedBy": self._user_suspension,
            "UserReinstated": self._user_suspension,
            "UseRecorded": self._use_recorded,
            "RoleGranted": self._role_changed,
            "RoleRevoked": self._role_changed,
            "ExecutedForwardRequest": self._forward_executed,
        }

    def reset(self) -> None:
        for s in self.states:
            s.clear()
        for rows in self.rows.values():
            rows.clear()

    # -- driving

    def add(self, conn: sqlite3.Connection, events: Iterable[LedgerEvent]) -> int:
        ev_rows = self.rows["events"]
        touch_rows = self.rows["touches"]
        handlers = self._handlers
        n = 0
        for ev in events:
            seq = (ev.block_number << SEQ_SHIFT) | ev.log_index
            ev_rows.append(
                (
                    seq,
                    ev.block_number,
                    ev.log_index,
                    ev.tx_index,
                    ev.tx_hash,
                    ev.block_timestamp,
                    ev.contract,
                    ev.event,
                    _dumps(ev.args),
                )
            )
            handler = handlers.get(ev.event)
            if handler is not None:
                touched: dict[str, str] = {}
                handler(conn, ev, seq, touched)
                for entity, role in touched.items():
                    touch_rows.append((entity, seq, role))
            n += 1
        return n

    def flush(self, conn: sqlite3.Connection) -> None:
        for s in self.states:
            s.flush(conn)
        for table, rows in self.rows.items():
            if rows:
                conn.executemany(_APPEND_SQL[table], rows)
                rows.clear()

    @staticmethod
    def _touch(touched: dict[str, str], entity: str | None, role: str) -> None:
        if not entity or entity == ZERO_ADDRESS:
            return
        have = touched.get(entity)
        if have is None:
            touched[entity] = role
        elif role not in have.split(","):
            touched[entity] = have + "," + role

    # -- DatasetRegistry

    def _dataset_registered(self, conn: sqlite3.Connection, ev: LedgerEvent, seq: int, t: dict[str, str]) -> None:
        a = ev.args
        root = a["contentRoot"]
        self.datasets.put(
            root,
            {
                "root": root,
                "holder": a["holder"],
                "metadata_digest": a["metadataDigest"],
                "activity_digest": a["activityDigest"],
                "subject_root": a["subjectRoot"],
                "parents": _dumps(a["parents"]),
                "tier": a["tier"],
                "classification": a["classification"],
                "embargo_end": a["embargoEnd"],
                "status": 1,
                "successor": None,
                "embargo_overridden": 0,
                "registered_block": ev.block_number,
                "registered_seq": seq,
                "registered_tx": ev.tx_hash,
                "registered_at": ev.block_timestamp,
                "updated_block": ev.block_number,
            },
        )
        self._touch(t, root, "dataset")
        self._touch(t, a["holder"], "holder")

    def _update_dataset(self, conn: sqlite3.Connection, ev: LedgerEvent, root: str, **changes: Any) -> None:
        row = self.datasets.get(conn, root)
        if row is None:
            log.warning("%s for unknown dataset %s at block %d", ev.event, root, ev.block_number)
            return
        row.update(changes)
        row["updated_block"] = ev.block_number
        self.datasets.put(root, row)

    def _derived_from(self, conn: sqlite3.Connection, ev: LedgerEvent, seq: int, t: dict[str, str]) -> None:
        child, parent = ev.args["child"], ev.args["parent"]
        self.rows["lineage"].append((child, parent, ev.block_number, seq))
        self._touch(t, child, "child")
        self._touch(t, parent, "parent")

    def _sharing_changed(self, conn: sqlite3.Connection, ev: LedgerEvent, seq: int, t: dict[str, str]) -> None:
        a = ev.args
        self._update_dataset(conn, ev, a["contentRoot"], tier=a["tier"], embargo_end=a["embargoEnd"])
        self._touch(t, a["contentRoot"], "dataset")

    def _dataset_deprecated(self, conn: sqlite3.Connection, ev: LedgerEvent, seq: int, t: dict[str, str]) -> None:
        a = ev.args
        self._update_dataset(conn, ev, a["contentRoot"], status=2, successor=a["successor"])
        self._touch(t, a["contentRoot"], "dataset")
        self._touch(t, a["successor"], "successor")

    def _dataset_retracted(self, conn: sqlite3.Connection, ev: LedgerEvent, seq: int, t: dict[str, str]) -> None:
        self._update_dataset(conn, ev, ev.args["contentRoot"], status=4)
        self._touch(t, ev.args["contentRoot"], "dataset")

    def _dataset_suspended(self, conn: sqlite3.Connection, ev: LedgerEvent, seq: int, t: dict[str, str]) -> None:
        a = ev.args
        self._update_dataset(conn, ev, a["contentRoot"], status=3)
        self.rows["suspensions"].append(
            (
                seq,
                "dataset",
                a["contentRoot"],
                "suspended",
                a["auditor"],
                a["reasonDigest"],
                None,
                ev.block_number,
                ev.tx_hash,
                ev.block_timestamp,
            )
        )
        self._touch(t, a["contentRoot"], "dataset")
        self._touch(t, a["auditor"], "auditor")

    def _dataset_reinstated(self, conn: sqlite3.Connection, ev: LedgerEvent, seq: int, t: dict[str, str]) -> None:
        a = ev.args
        self._update_dataset(conn, ev, a["contentRoot"], status=a["restored"])
        self.rows["suspensions"].append(
            (
                seq,
                "dataset",
                a["contentRoot"],
                "reinstated",
                a["auditor"],
                None,
                a["restored"],
                ev.block_number,
                ev.tx_hash,
                ev.block_timestamp,
            )
        )
        self._touch(t, a["contentRoot"], "dataset")
        self._touch(t, a["auditor"], "auditor")

    # -- ConsentRegistry

    def _consent_history(self, ev: LedgerEvent, seq: int, action: str, row: Mapping[str, Any], actor: str) -> None:
        self.rows["consent_history"].append(
            (
                seq,
                row["consent_id"],
                row["subject"],
                action,
                row["scope_kind"],
                row["scope"],
                row["grantee"],
                row["purposes"],
                row["disease"],
                row["expiry"],
                actor,
                ev.block_number,
                ev.tx_hash,
                ev.block_timestamp,
            )
        )

    def _consent_touches(self, t: dict[str, str], row: Mapping[str, Any], actor: str) -> None:
        self._touch(t, row["subject"], "subject")
        if actor != row["subject"]:
            self._touch(t, actor, "delegate")
        self._touch(t, row["grantee"], "grantee")
        scope = row["scope"]
        self._touch(t, checksum("0x" + scope[-40:]) if row["scope_kind"] == 0 else scope, "consent-scope")

    def _consent_given(self, conn: sqlite3.Connection, ev: LedgerEvent, seq: int, t: dict[str, str]) -> None:
        a = ev.args
        cid = a["consentId"]
        row = {
            "consent_id": cid,
            "subject": a["subject"],
            "scope_kind": a["scopeKind"],
            "scope": a["scope"],
            "grantee": a["grantee"],
            "purposes": _sqlint(a["purposes"]),
            "disease": a["diseaseCode"],
            "expiry": a["expiry"],
            "state": 1,
            "actor": a["actor"],
            "given_block": ev.block_number,
            "given_seq": seq,
            "updated_block": ev.block_number,
            "updated_seq": seq,
        }
        self.consents.put(cid, row)
        self._consent_history(ev, seq, "given", row, a["actor"])
        self._consent_touches(t, row, a["actor"])

    def _consent_changed(
        self, conn: sqlite3.Connection, ev: LedgerEvent, seq: int, t: dict[str, str], action: str, **changes: Any
    ) -> None:
        a = ev.args
        cid = a["consentId"]
        row = self.consents.get(conn, cid)
        if row is None:
            log.warning("%s for unknown consent %s at block %d", ev.event, cid, ev.block_number)
            self._touch(t, a["subject"], "subject")
            return
        row.update(changes)
        row["updated_block"] = ev.block_number
        row["updated_seq"] = seq
        self.consents.put(cid, row)
        self._consent_history(ev, seq, action, row, a["actor"])
        self._consent_touches(t, row, a["actor"])

    def _consent_renewed(self, conn: sqlite3.Connection, ev: LedgerEvent, seq: int, t: dict[str, str]) -> None:
        self._consent_changed(conn, ev, seq, t, "renewed", state=2, expiry=ev.args["expiry"])

    def _consent_withdrawn(self, conn: sqlite3.Connection, ev: LedgerEvent, seq: int, t: dict[str, str]) -> None:
        self._consent_changed(conn, ev, seq, t, "withdrawn", state=3)

    def _delegate_appointed(self, conn: sqlite3.Connection, ev: LedgerEvent, seq: int, t: dict[str, str]) -> None:
        a = ev.args
        key = (a["subject"], a["delegate"])
        row = self.delegates.get(conn, key)
        self.delegates.put(
            key,
            {
                "subject": a["subject"],
                "delegate": a["delegate"],
                "expiry": a["expiry"],
                "active": 1,
                "appointed_block": ev.block_number if row is None or not row["active"] else row["appointed_block"],
                "updated_block": ev.block_number,
            },
        )
        self.rows["delegate_history"].append(
            (
                seq,
                a["subject"],
                a["delegate"],
                "appointed",
                a["expiry"],
                ev.block_number,
                ev.tx_hash,
                ev.block_timestamp,
            )
        )
        self._touch(t, a["subject"], "subject")
        self._touch(t, a["delegate"], "delegate")

    def _delegate_revoked(self, conn: sqlite3.Connection, ev: LedgerEvent, seq: int, t: dict[str, str]) -> None:
        a = ev.args
        key = (a["subject"], a["delegate"])
        row = self.delegates.get(conn, key) or {
            "subject": a["subject"],
            "delegate": a["delegate"],
            "appointed_block": None,
        }
        row.update(expiry=0, active=0, updated_block=ev.block_number)
        self.delegates.put(key, row)
        self.rows["delegate_history"].append(
            (seq, a["subject"], a["delegate"], "revoked", 0, ev.block_number, ev.tx_hash, ev.block_timestamp)
        )
        self._touch(t, a["subject"], "subject")
        self._touch(t, a["delegate"], "delegate")

    # -- AccessRegistry

    def _access_requested(self, conn: sqlite3.Connection, ev: LedgerEvent, seq: int, t: dict[str, str]) -> None:
        a = ev.args
        rid = _sqlint(a["requestId"])
        self.requests.put(
            rid,
            {
                "request_id": rid,
                "dataset": a["dataset"],
                "requester": a["requester"],
                "purpose": _sqlint(a["purpose"]),
                "disease": a["diseaseCode"],
                "protocol_digest": a["protocolDigest"],
                "status": 1,
                "expiry": None,
                "reviewer": None,
                "decision_digest": None,
                "requested_block": ev.block_number,
                "requested_seq": seq,
                "tx_hash": ev.tx_hash,
                "timestamp": ev.block_timestamp,
                "decided_block": None,
            },
        )
        self._touch(t, a["dataset"], "request")
        self._touch(t, a["requester"], "requester")

    def _access_decided(self, conn: sqlite3.Connection, ev: LedgerEvent, seq: int, t: dict[str, str]) -> None:
        a = ev.args
        decision, status, digest_field = _DECISIONS[ev.event]
        rid = _sqlint(a["requestId"])
        row = self.requests.get(conn, rid)
        self._touch(t, a["reviewer"], "reviewer")
        if row is None:
            log.warning("%s for unknown request %s at block %d", ev.event, rid, ev.block_number)
            return
        expiry = a.get("expiry") if decision == "approved" else row["expiry"]
        row.update(
            status=status,
            reviewer=a["reviewer"],
            decision_digest=a[digest_field],
            decided_block=ev.block_number,
            expiry=expiry,
        )
        self.requests.put(rid, row)
        self.rows["access_decisions"].append(
            (
                seq,
                rid,
                row["dataset"],
                row["requester"],
                a["reviewer"],
                decision,
                a[digest_field],
                a.get("expiry"),
                ev.block_number,
                ev.tx_hash,
                ev.block_timestamp,
            )
        )
        self._touch(t, row["dataset"], "decision")
        self._touch(t, row["requester"], "requester")

    def _embargo_overridden(self, conn: sqlite3.Connection, ev: LedgerEvent, seq: int, t: dict[str, str]) -> None:
        a = ev.args
        self._update_dataset(conn, ev, a["dataset"], embargo_overridden=1)
        self._touch(t, a["dataset"], "dataset")
        self._touch(t, a["auditor"], "auditor")

    def _user_suspension(self, conn: sqlite3.Connection, ev: LedgerEvent, seq: int, t: dict[str, str]) -> None:
        a = ev.args
        action = "suspended" if ev.event == "UserSuspendedBy" else "reinstated"
        self.rows["suspensions"].append(
            (
                seq,
                "user",
                a["user"],
                action,
                a["auditor"],
                a.get("reasonDigest"),
                None,
                ev.block_number,
                ev.tx_hash,
                ev.block_timestamp,
            )
        )
        self._touch(t, a["user"], "user")
        self._touch(t, a["auditor"], "auditor")

    # -- UsageRegistry

    def _use_recorded(self, conn: sqlite3.Connection, ev: LedgerEvent, seq: int, t: dict[str, str]) -> None:
        a = ev.args
        self.rows["uses"].append(
            (
                seq,
                a["dataset"],
                a["user"],
                _sqlint(a["requestId"]),
                _sqlint(a["purpose"]),
                a["diseaseCode"],
                a["resultDigest"],
                _sqlint(a["useNumber"]),
                ev.block_number,
                ev.tx_hash,
                ev.block_timestamp,
            )
        )
        self._touch(t, a["dataset"], "use")
        self._touch(t, a["user"], "user")

    # -- LedgerRoles, LedgerForwarder

    def _role_changed(self, conn: sqlite3.Connection, ev: LedgerEvent, seq: int, t: dict[str, str]) -> None:
        a = ev.args
        role = ROLE_NAMES.get(a["role"], a["role"])
        granted = ev.event == "RoleGranted"
        key = (role, a["account"])
        row = self.roles.get(conn, key)
        self.roles.put(
            key,
            {
                "role": role,
                "account": a["account"],
                "active": 1 if granted else 0,
                "sender": a["sender"],
                "granted_block": ev.block_number if granted or row is None else row["granted_block"],
                "updated_block": ev.block_number,
            },
        )
        self.rows["role_history"].append(
            (
                seq,
                role,
                a["account"],
                "granted" if granted else "revoked",
                a["sender"],
                ev.block_number,
                ev.tx_hash,
                ev.block_timestamp,
            )
        )
        self._touch(t, a["account"], "account")
        self._touch(t, a["sender"], "admin")

    def _forward_executed(self, conn: sqlite3.Connection, ev: LedgerEvent, seq: int, t: dict[str, str]) -> None:
        a = ev.args
        self.rows["forwards"].append(
            (
                seq,
                a["signer"],
                _sqlint(a["nonce"]),
                1 if a["success"] else 0,
                ev.block_number,
                ev.tx_hash,
                ev.block_timestamp,
            )
        )


# ---------------------------------------------------------------------------------------------
# the store: schema, writes, queries


class IndexStore:
    """The SQLite index: schema, transactional ingestion of decoded events, and the queries.
    Knows nothing of the chain (``Indexer`` feeds it); benchmarks feed it synthetic events."""

    def __init__(self, path: Path | str, *, keep_blocks: int = 256) -> None:
        self.path = Path(path)
        self.keep_blocks = keep_blocks
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._write_lock = threading.RLock()
        self._conn = self._connect()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._local = threading.local()
        self._projector = _Projector()
        self._addresses: dict[str, str] = {}
        self._closed = False
        self._progress = threading.Condition()
        self._ensure_schema()

    # -- connections

    def _connect(self, *, read_only: bool = False) -> sqlite3.Connection:
        conn = sqlite3.connect(str(self.path), timeout=30.0, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")  # a cache of the chain: consistency, not durability
        conn.execute("PRAGMA temp_store=MEMORY")
        conn.execute("PRAGMA mmap_size=268435456")
        if read_only:
            conn.execute("PRAGMA cache_size=-65536")
            conn.execute("PRAGMA query_only=1")
        else:
            # the writer inserts into many indexes keyed by hashes: a large page cache and fewer
            # checkpoints keep catch-up from turning into random I/O
            conn.execute("PRAGMA cache_size=-262144")
            conn.execute("PRAGMA wal_autocheckpoint=10000")
        return conn

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            if self._closed:
                raise IndexStateError("the index is closed")
            conn = self._connect(read_only=True)
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        return conn

    @contextlib.contextmanager
    def _snapshot(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: every statement inside sees the same committed state."""
        conn = self._reader()
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            conn.execute("COMMIT")

    def close(self) -> None:
        self._closed = True
        with self._readers_lock:
            for c in self._readers:
                with contextlib.suppress(sqlite3.Error):
                    c.close()
            self._readers.clear()
        with self._write_lock, contextlib.suppress(sqlite3.Error):
            self._conn.close()

    def __enter__(self) -> IndexStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- schema and meta

    def _ensure_schema(self) -> None:
        with self._write_lock:
            c = self._conn
            have = {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            version = None
            if "meta" in have:
                row = c.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
                version = int(row[0]) if row else None
            stale = bool(have) and (version != SCHEMA_VERSION or not set(_TABLES) <= have)
            if stale:
                log.warning("index %s has schema %s, expected %s: starting over", self.path, version, SCHEMA_VERSION)
            if stale or not have:
                c.execute("BEGIN IMMEDIATE")
                try:
                    self._drop_all()
                    self._create_all()
                    c.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
                    c.execute("COMMIT")
                except BaseException:
                    c.execute("ROLLBACK")
                    raise
            self._load_addresses()

    def _create_all(self) -> None:
        for sql in _TABLES.values():
            self._conn.execute(sql)
        for sql in _INDEXES:
            self._conn.execute(sql)

    def _drop_all(self) -> None:
        """Drop every table (inside the caller's transaction)."""
        c = self._conn
        for (name,) in c.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall():
            if not str(name).startswith("sqlite_"):
                c.execute(f'DROP TABLE IF EXISTS "{name}"')

    def _load_addresses(self) -> None:
        row = self._conn.execute("SELECT value FROM meta WHERE key='addresses'").fetchone()
        self._addresses = json.loads(row[0]) if row else {}

    def meta(self) -> dict[str, str]:
        with self._snapshot() as c:
            return {str(k): str(v) for k, v in c.execute("SELECT key, value FROM meta")}

    def _meta_get(self, conn: sqlite3.Connection, key: str) -> str | None:
        row = conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None or row[0] is None else str(row[0])

    def identity(self) -> IndexIdentity | None:
        """What the index was built from (None for an empty index)."""
        m = self.meta()
        if "chain_id" not in m:
            return None
        return IndexIdentity(
            chain_id=int(m["chain_id"]),
            deploy_block=int(m["deploy_block"]),
            addresses=json.loads(m["addresses"]),
            deploy_block_hash=m.get("deploy_block_hash") or None,
        )

    @property
    def last_block(self) -> int:
        """The newest block fully indexed (-1 for an empty index)."""
        with self._snapshot() as c:
            v = self._meta_get(c, "last_block")
        return int(v) if v is not None else -1

    def last_block_hash(self) -> str | None:
        with self._snapshot() as c:
            return self._meta_get(c, "last_block_hash")

    def stored_block_hashes(self) -> dict[int, str]:
        """The hashes of the recent blocks the index remembers (for reorg detection)."""
        with self._snapshot() as c:
            return {int(n): str(h) for n, h in c.execute("SELECT number, hash FROM blocks ORDER BY number")}

    # -- writes

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE: one writer across processes). On failure the
        write-back cache is dropped with the transaction."""
        with self._write_lock:
            c = self._conn
            c.execute("BEGIN IMMEDIATE")
            try:
                yield c
                c.execute("COMMIT")
            except BaseException:
                c.execute("ROLLBACK")
                self._projector.reset()
                raise

    def reset(self, identity: IndexIdentity) -> None:
        """Empty the index and bind it to ``identity``; the next ingest starts at its deploy block."""
        with self._write_lock:
            with self._write() as c:
                self._drop_all()
                self._create_all()
                self._projector.reset()
                c.executemany(
                    "INSERT INTO meta VALUES (?, ?)",
                    [
                        ("schema_version", str(SCHEMA_VERSION)),
                        ("chain_id", str(identity.chain_id)),
                        ("deploy_block", str(identity.deploy_block)),
                        ("deploy_block_hash", identity.deploy_block_hash or ""),
                        ("addresses", json.dumps(identity.addresses, sort_keys=True)),
                        ("last_block", str(identity.deploy_block - 1)),
                        ("created_at", str(int(time.time()))),
                    ],
                )
            self._load_addresses()

    def ingest(
        self,
        events: Sequence[LedgerEvent],
        *,
        from_block: int,
        to_block: int,
        block_hashes: Mapping[int, str] | None = None,
        end_timestamp: int | None = None,
    ) -> int:
        """Index the events of blocks [from_block, to_block] in one transaction and mark
        ``to_block`` as processed. ``from_block`` must follow the last processed block (so a chunk
        is never indexed twice); returns the number of events written."""
        with self._write() as c:
            last = self._meta_get(c, "last_block")
            if last is None:
                raise IndexStateError("the index is not initialised", hint="reset it with an identity first")
            if int(last) != from_block - 1:
                raise IndexStateError(
                    f"chunk {from_block}..{to_block} does not follow the last indexed block {last}",
                    hint="another writer advanced the index; sync again",
                )
            proj = self._projector
            n = proj.add(c, events)
            proj.flush(c)
            hashes = dict(block_hashes or {})
            if hashes:
                c.executemany("INSERT OR REPLACE INTO blocks VALUES (?, ?)", sorted(hashes.items()))
                c.execute(
                    "DELETE FROM blocks WHERE number <= (SELECT number FROM blocks ORDER BY number DESC "
                    "LIMIT 1 OFFSET ?)",
                    (self.keep_blocks,),
                )
            meta = [("last_block", str(to_block)), ("synced_at", str(int(time.time())))]
            meta.append(("last_block_hash", hashes.get(to_block, "")))
            if end_timestamp is not None:
                meta.append(("last_block_timestamp", str(end_timestamp)))
            c.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", meta)
        with self._progress:
            self._progress.notify_all()
        return n

    def rollback_to(self, block: int) -> int:
        """Forget everything after ``block`` (a reorganisation replaced it) and re-derive the
        normalised tables from the remaining events. Returns the number of events removed."""
        with self._write() as c:
            removed = c.execute("DELETE FROM events WHERE seq >= ?", (block_seq_start(block + 1),)).rowcount
            c.execute("DELETE FROM blocks WHERE number > ?", (block,))
            row = c.execute("SELECT hash FROM blocks WHERE number = ?", (block,)).fetchone()
            c.executemany(
                "INSERT OR REPLACE INTO meta VALUES (?, ?)",
                [("last_block", str(block)), ("last_block_hash", row[0] if row else "")],
            )
            self._reproject(c)
        return int(removed)

    def reproject(self) -> None:
        """Rebuild every normalised table from the ``events`` table (no chain access)."""
        with self._write() as c:
            self._reproject(c)

    def _reproject(self, c: sqlite3.Connection, batch: int = 50_000) -> None:
        for table in _DERIVED:
            c.execute(f"DELETE FROM {table}")
        proj = self._projector
        proj.reset()
        addresses = self._addresses
        after = -1
        while True:
            rows = c.execute(
                "SELECT seq, block, log_index, tx_index, tx_hash, timestamp, contract, event, args "
                "FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
                (after, batch),
            ).fetchall()
            if not rows:
                break
            after = rows[-1][0]
            evs = [
                LedgerEvent(r[6], r[7], r[1], r[5], r[4], r[2], json.loads(r[8]), r[3], addresses.get(r[6], ""))
                for r in rows
            ]
            proj.add(c, evs)
            proj.rows["events"].clear()  # already stored
            proj.flush(c)

    def wait_for_block(self, block: int, timeout: float = 30.0) -> bool:
        """Block until the index has processed ``block`` (True) or the timeout passed (False)."""
        deadline = time.monotonic() + timeout
        with self._progress:
            while self.last_block < block:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._progress.wait(min(remaining, 0.5))
        return True

    # -- row shaping

    def _event_json(self, r: Sequence[Any], role: str | None = None) -> JSON:
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
            "address": self._addresses.get(r[6], ""),
            "args": json.loads(r[8]),
        }
        if role is not None:
            out["role"] = role
        return out

    _EVENT_COLS = "e.seq, e.block, e.log_index, e.tx_index, e.tx_hash, e.timestamp, e.contract, e.event, e.args"

    @staticmethod
    def _dataset_json(r: Mapping[str, Any]) -> JSON:
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

    @staticmethod
    def _terms_json(purposes: Any, disease: Any) -> JSON:
        p = int(purposes) if purposes is not None else 0
        d = int(disease) if disease is not None else 0
        return {
            "purposes": p,
            "purpose_codes": list(_describe(p)),
            "disease": d,
            "disease_code": _disease_label(d),
        }

    def _consent_json(self, r: Mapping[str, Any], now: int | None) -> JSON:
        state = int(r["state"])
        expiry = int(r["expiry"] or 0)
        status = CONSENT_STATES[state]
        if state in (1, 2) and now is not None and expiry <= now:
            status = "expired"
        return {
            "consent_id": r["consent_id"],
            "subject": r["subject"],
            "scope": _scope_json(int(r["scope_kind"]), r["scope"]),
            "grantee": None if r["grantee"] == ZERO_ADDRESS else r["grantee"],
            **self._terms_json(r["purposes"], r["disease"]),
            "expiry": expiry,
            "state": CONSENT_STATES[state],
            "status": status,
            "actor": r["actor"],
            "given_block": r["given_block"],
            "updated_block": r["updated_block"],
        }

    _HISTORY_COLS = (
        "seq, consent_id, subject, action, scope_kind, scope, grantee, purposes, disease, expiry, actor, "
        "block, tx_hash, timestamp"
    )

    def _history_json(self, r: Sequence[Any]) -> JSON:
        return {
            "seq": r[0],
            "event": {"given": "ConsentGiven", "renewed": "ConsentRenewed", "withdrawn": "ConsentWithdrawn"}[r[3]],
            "action": r[3],
            "consent_id": r[1],
            "subject": r[2],
            "scope": _scope_json(int(r[4]), r[5]),
            "grantee": None if r[6] == ZERO_ADDRESS else r[6],
            **self._terms_json(r[7], r[8]),
            "expiry": r[9],
            "actor": r[10],
            "block_number": r[11],
            "tx_hash": r[12],
            "block_timestamp": r[13],
        }

    def _now(self, c: sqlite3.Connection) -> int | None:
        v = self._meta_get(c, "last_block_timestamp")
        return int(v) if v else None

    # -- queries: generic

    def events(
        self,
        *,
        event: str | None = None,
        contract: str | None = None,
        from_block: int = 0,
        to_block: int | None = None,
        after: int | None = None,
        limit: int | None = 100,
    ) -> Page:
        """Indexed events in chain order, optionally of one event name and/or contract."""
        where = ["e.seq >= ?", "e.seq > ?"]
        params: list[Any] = [block_seq_start(from_block), -1 if after is None else after]
        if to_block is not None:
            where.append("e.seq < ?")
            params.append(block_seq_start(to_block + 1))
        if event is not None:
            where.append("e.event = ?")
            params.append(event)
        if contract is not None:
            where.append("e.contract = ?")
            params.append(contract)
        sql = f"SELECT {self._EVENT_COLS} FROM events e WHERE {' AND '.join(where)} ORDER BY e.seq LIMIT ?"
        with self._snapshot() as c:
            items = [self._event_json(r) for r in c.execute(sql, (*params, _limit(limit)))]
        return _page(items, limit)

    def _trail(self, c: sqlite3.Connection, entity: str, from_block: int, after: int | None, limit: int | None) -> Page:
        rows = c.execute(
            f"SELECT {self._EVENT_COLS}, t.role FROM touches t JOIN events e ON e.seq = t.seq "
            "WHERE t.entity = ? AND t.seq >= ? AND t.seq > ? ORDER BY t.seq LIMIT ?",
            (entity, block_seq_start(from_block), -1 if after is None else after, _limit(limit)),
        ).fetchall()
        return _page([self._event_json(r, r[9]) for r in rows], limit)

    # -- queries: datasets and lineage

    def dataset(self, root: str | bytes) -> JSON | None:
        """The indexed record of a dataset (its state at the last indexed block)."""
        key = norm_root(root)
        with self._snapshot() as c:
            return self._dataset_row(c, key)

    def _dataset_row(self, c: sqlite3.Connection, key: str) -> JSON | None:
        cur = c.execute("SELECT * FROM datasets WHERE root = ?", (key,))
        row = cur.fetchone()
        if row is None:
            return None
        return self._dataset_json(dict(zip([d[0] for d in cur.description], row, strict=True)))

    def datasets_of(self, holder: str, *, after: int | None = None, limit: int | None = 100) -> Page:
        """Datasets registered by ``holder``, oldest first."""
        with self._snapshot() as c:
            cur = c.execute(
                "SELECT * FROM datasets WHERE holder = ? AND registered_seq > ? ORDER BY registered_seq LIMIT ?",
                (norm_address(holder), -1 if after is None else after, _limit(limit)),
            )
            cols = [d[0] for d in cur.description]
            items = []
            for row in cur.fetchall():
                r = dict(zip(cols, row, strict=True))
                items.append({"seq": r["registered_seq"], **self._dataset_json(r)})
        return _page(items, limit)

    def dataset_trail(
        self, root: str | bytes, *, from_block: int = 0, after: int | None = None, limit: int | None = 100
    ) -> JSON:
        """Every event touching a dataset, in chain order: registration, lineage edges (as child
        and as parent: derived children), sharing and status changes, suspensions, embargo
        overrides, consents scoped to it, access requests and their decisions, uses.
        ``{"dataset": record | None, "items": [event + "role"], "next_cursor": seq | None}``."""
        key = norm_root(root)
        with self._snapshot() as c:
            page = self._trail(c, key, from_block, after, limit)
            page["dataset"] = self._dataset_row(c, key)
        return page

    def predecessors_of(self, root: str | bytes) -> list[str]:
        """Datasets deprecated in favour of ``root`` (its earlier versions), oldest first."""
        with self._snapshot() as c:
            rows = c.execute(
                "SELECT root FROM datasets WHERE successor = ? ORDER BY registered_seq", (norm_root(root),)
            ).fetchall()
        return [str(r[0]) for r in rows]

    def children_of(self, root: str | bytes) -> list[JSON]:
        """Datasets registered with ``root`` as a parent, in registration order."""
        key = norm_root(root)
        with self._snapshot() as c:
            rows = c.execute(
                "SELECT l.child, l.block, l.seq, d.holder, d.status, d.tier, d.subject_root FROM lineage l "
                "LEFT JOIN datasets d ON d.root = l.child WHERE l.parent = ? ORDER BY l.seq",
                (key,),
            ).fetchall()
        return [
            {
                "content_root": r[0],
                "block_number": r[1],
                "seq": r[2],
                "holder": r[3],
                "status": STATUS_NAMES[r[4]] if r[4] is not None else None,
                "tier": TIER_NAMES[r[5]] if r[5] is not None else None,
                "subject_root": r[6],
            }
            for r in rows
        ]

    def _walk(self, key: str, down: bool, max_depth: int | None, limit: int | None, offset: int) -> list[JSON]:
        """Breadth-first over the lineage, each node expanded once (a DAG can reach a node by
        many paths), batched ``IN`` lookups per level; stops after the level that completes the
        requested page, since deeper nodes sort after it."""
        start, step = ("parent", "child") if down else ("child", "parent")
        want = None if limit is None else offset + min(limit, MAX_LIMIT)
        found: dict[str, tuple[int, int]] = {}  # node -> (depth, order within the level)
        frontier = [key]
        depth = 0
        with self._snapshot() as c:
            while frontier and (max_depth is None or depth < max_depth):
                depth += 1
                level: dict[str, int] = {}
                for i in range(0, len(frontier), 500):
                    part = frontier[i : i + 500]
                    rows = c.execute(
                        f"SELECT {step}, seq FROM lineage WHERE {start} IN ({','.join('?' * len(part))})", part
                    )
                    for node, seq in rows:
                        if node != key and node not in found and (node not in level or seq < level[node]):
                            level[node] = seq
                if not down and level:  # order parents by their own registration, not the edge's
                    nodes = list(level)
                    for i in range(0, len(nodes), 500):
                        part = nodes[i : i + 500]
                        for node, seq in c.execute(
                            f"SELECT root, registered_seq FROM datasets WHERE root IN ({','.join('?' * len(part))})",
                            part,
                        ):
                            level[node] = seq if seq is not None else level[node]
                for node, seq in level.items():
                    found[node] = (depth, seq)
                frontier = list(level)
                if want is not None and len(found) >= want:
                    break
            ordered = sorted(found, key=lambda n: (found[n][0], found[n][1], n))
            page = ordered[offset:] if limit is None else ordered[offset : offset + min(limit, MAX_LIMIT)]
            info: dict[str, tuple[Any, ...]] = {}
            for i in range(0, len(page), 500):
                part = page[i : i + 500]
                for r in c.execute(
                    "SELECT root, holder, status, tier, subject_root, registered_block FROM datasets "
                    f"WHERE root IN ({','.join('?' * len(part))})",
                    part,
                ):
                    info[r[0]] = r
        out = []
        for node in page:
            r = info.get(node, (node, None, None, None, None, None))
            out.append(
                {
                    "content_root": node,
                    "depth": found[node][0],
                    "holder": r[1],
                    "status": STATUS_NAMES[r[2]] if r[2] is not None else None,
                    "tier": TIER_NAMES[r[3]] if r[3] is not None else None,
                    "subject_root": r[4],
                    "registered_block": r[5],
                }
            )
        return out

    def descendants_of(
        self, root: str | bytes, *, max_depth: int | None = None, limit: int | None = 1000, offset: int = 0
    ) -> list[JSON]:
        """Every dataset derived from ``root`` directly or transitively (recursive CTE over the
        lineage), each once with its shortest distance ``depth``; nearest first, then in
        registration order."""
        return self._walk(norm_root(root), True, max_depth, limit, offset)

    def ancestors_of(
        self, root: str | bytes, *, max_depth: int | None = None, limit: int | None = 1000, offset: int = 0
    ) -> list[JSON]:
        """Every dataset ``root`` was derived from, directly or transitively; nearest first."""
        return self._walk(norm_root(root), False, max_depth, limit, offset)

    # -- queries: accounts

    def roles_of(self, account: str) -> list[str]:
        """Roles the account holds at the last indexed block."""
        with self._snapshot() as c:
            return [
                str(r[0])
                for r in c.execute(
                    "SELECT role FROM roles WHERE account = ? AND active = 1 ORDER BY role", (norm_address(account),)
                )
            ]

    def role_members(self, role: str) -> list[str]:
        with self._snapshot() as c:
            return [
                str(r[0])
                for r in c.execute(
                    "SELECT account FROM roles WHERE role = ? AND active = 1 ORDER BY granted_block, account", (role,)
                )
            ]

    def _suspended(self, c: sqlite3.Connection, target: str) -> bool:
        row = c.execute(
            "SELECT action FROM suspensions WHERE target = ? ORDER BY seq DESC LIMIT 1", (target,)
        ).fetchone()
        return bool(row and row[0] == "suspended")

    def user_trail(
        self, address: str, *, from_block: int = 0, after: int | None = None, limit: int | None = 100
    ) -> JSON:
        """Every event touching an account, in chain order: roles granted and revoked, datasets
        registered, access requests filed and decisions received or made, uses, suspensions,
        consents given (as subject, delegate or grantee). ``{"address", "roles", "suspended",
        "items": [event + "role"], "next_cursor"}``."""
        addr = norm_address(address)
        with self._snapshot() as c:
            page = self._trail(c, addr, from_block, after, limit)
            page["address"] = addr
            page["roles"] = [
                str(r[0])
                for r in c.execute("SELECT role FROM roles WHERE account = ? AND active = 1 ORDER BY role", (addr,))
            ]
            page["suspended"] = self._suspended(c, addr)
        return page

    def suspensions_of(self, target: str | bytes) -> list[JSON]:
        """Suspensions and reinstatements of a dataset (root) or a user (address)."""
        key = norm_root(target) if isinstance(target, bytes) or len(target) == 66 else norm_address(target)
        with self._snapshot() as c:
            rows = c.execute(
                "SELECT seq, target_kind, target, action, auditor, reason_digest, restored_status, block, tx_hash, "
                "timestamp FROM suspensions WHERE target = ? ORDER BY seq",
                (key,),
            ).fetchall()
        return [
            {
                "seq": r[0],
                "target_kind": r[1],
                "target": r[2],
                "action": r[3],
                "auditor": r[4],
                "reason_digest": r[5],
                "restored_status": STATUS_NAMES[r[6]] if r[6] is not None else None,
                "block_number": r[7],
                "tx_hash": r[8],
                "block_timestamp": r[9],
            }
            for r in rows
        ]

    # -- queries: consent

    def consent(self, consent_id: str | bytes) -> JSON | None:
        cid = norm_root(consent_id)
        with self._snapshot() as c:
            cur = c.execute("SELECT * FROM consents WHERE consent_id = ?", (cid,))
            row = cur.fetchone()
            if row is None:
                return None
            return self._consent_json(dict(zip([d[0] for d in cur.description], row, strict=True)), self._now(c))

    def consent_history(self, consent_id: str | bytes) -> list[JSON]:
        """Every change of one consent (given, renewed, withdrawn), oldest first; each row carries
        the consent's scope, grantee and terms as they were after the change."""
        cid = norm_root(consent_id)
        with self._snapshot() as c:
            rows = c.execute(
                f"SELECT {self._HISTORY_COLS} FROM consent_history WHERE consent_id = ? ORDER BY seq", (cid,)
            ).fetchall()
        return [self._history_json(r) for r in rows]

    def subject_consents(
        self,
        subject: str,
        *,
        include_withdrawn: bool = True,
        now: int | None = None,
        limit: int | None = 1000,
        offset: int = 0,
    ) -> list[JSON]:
        """A subject's consents, current state with full history (``history``), oldest first.
        ``status`` is the ISO/IEC TS 27560 state at ``now`` (default: the last indexed block's time):
        given, renewed, withdrawn or expired."""
        addr = norm_address(subject)
        with self._snapshot() as c:
            when = now if now is not None else self._now(c)
            cur = c.execute(
                "SELECT * FROM consents WHERE subject = ? ORDER BY given_seq LIMIT ? OFFSET ?",
                (addr, _limit(limit), offset),
            )
            cols = [d[0] for d in cur.description]
            consents = [self._consent_json(dict(zip(cols, r, strict=True)), when) for r in cur.fetchall()]
            history: dict[str, list[JSON]] = {}
            for r in c.execute(
                f"SELECT {self._HISTORY_COLS} FROM consent_history WHERE subject = ? ORDER BY seq", (addr,)
            ):
                history.setdefault(r[1], []).append(self._history_json(r))
        out = []
        for item in consents:
            if not include_withdrawn and item["state"] == "withdrawn":
                continue
            item["history"] = history.get(item["consent_id"], [])
            out.append(item)
        return out

    def withdrawals_of(self, subject: str, *, after: int | None = None, limit: int | None = 100) -> Page:
        """A subject's consent withdrawals, each with its block and the consent's scope and terms."""
        addr = norm_address(subject)
        with self._snapshot() as c:
            rows = c.execute(
                f"SELECT {self._HISTORY_COLS} FROM consent_history WHERE subject = ? AND seq > ? "
                "AND action = 'withdrawn' ORDER BY seq LIMIT ?",
                (addr, -1 if after is None else after, _limit(limit)),
            ).fetchall()
        return _page([self._history_json(r) for r in rows], limit)

    def _consent_event_rows(
        self, c: sqlite3.Connection, block: int, after: int | None, limit: int | None, subjects: list[str] | None
    ) -> list[tuple[Any, ...]]:
        end = block_seq_start(block + 1)
        start = -1 if after is None else after
        lim = _limit(limit)

        def query(who: list[str] | None) -> list[tuple[Any, ...]]:
            cond = ""
            params: list[Any] = [start, end]
            if who is not None:
                cond = f" AND subject IN ({','.join('?' * len(who))})"
                params += who
            # a compound SELECT ordered by its first column: SQLite merges the two rowid-ordered
            # scans and stops at the limit (no temporary sort of the whole range)
            sql = f"""
                SELECT {self._HISTORY_COLS}, NULL AS delegate FROM consent_history
                WHERE seq > ? AND seq < ?{cond}
                UNION ALL
                SELECT seq, NULL, subject, action, NULL, NULL, NULL, NULL, NULL, expiry, NULL, block, tx_hash,
                       timestamp, delegate
                FROM delegate_history WHERE seq > ? AND seq < ?{cond}
                ORDER BY 1 LIMIT ?
            """
            return c.execute(sql, (*params, *params, lim)).fetchall()

        if subjects is None:
            return query(None)
        rows: list[tuple[Any, ...]] = []
        for i in range(0, len(subjects), 400):
            rows += query(subjects[i : i + 400])
        rows.sort(key=lambda r: int(r[0]))
        return rows if lim < 0 else rows[:lim]

    def consent_events_until(
        self,
        block: int,
        *,
        subjects: Iterable[str] | None = None,
        after: int | None = None,
        limit: int | None = 10_000,
    ) -> Page:
        """Every consent and delegate event up to and including ``block`` (of ``subjects`` only,
        if given), in chain order, to replay the consent state at that block. Consent rows
        (``ConsentGiven`` / ``ConsentRenewed`` / ``ConsentWithdrawn``) carry the consent's key and
        its terms after the change; delegate rows (``DelegateAppointed`` / ``DelegateRevoked``)
        carry subject, delegate and expiry."""
        who = None if subjects is None else sorted({norm_address(x) for x in subjects})
        with self._snapshot() as c:
            rows = self._consent_event_rows(c, block, after, limit, who)
        items: list[JSON] = []
        for r in rows:
            if r[14] is None:
                items.append(self._history_json(r[:14]))
            else:
                items.append(
                    {
                        "seq": r[0],
                        "event": "DelegateAppointed" if r[3] == "appointed" else "DelegateRevoked",
                        "action": r[3],
                        "subject": r[2],
                        "delegate": r[14],
                        "expiry": r[9],
                        "block_number": r[11],
                        "tx_hash": r[12],
                        "block_timestamp": r[13],
                    }
                )
        return _page(items, limit)

    def delegates_of(self, subject: str) -> list[JSON]:
        addr = norm_address(subject)
        with self._snapshot() as c:
            rows = c.execute(
                "SELECT delegate, expiry, active, appointed_block, updated_block FROM delegates WHERE subject = ? "
                "ORDER BY delegate",
                (addr,),
            ).fetchall()
        return [
            {"delegate": r[0], "expiry": r[1], "active": bool(r[2]), "appointed_block": r[3], "updated_block": r[4]}
            for r in rows
        ]

    # -- queries: access and use

    def request(self, request_id: int) -> JSON | None:
        with self._snapshot() as c:
            cur = c.execute("SELECT * FROM access_requests WHERE request_id = ?", (_sqlint(request_id),))
            row = cur.fetchone()
            if row is None:
                return None
            return self._request_json(dict(zip([d[0] for d in cur.description], row, strict=True)))

    def _request_json(self, r: Mapping[str, Any]) -> JSON:
        status = int(r["status"])
        return {
            "request_id": r["request_id"],
            "dataset": r["dataset"],
            "requester": r["requester"],
            **self._terms_json(r["purpose"], r["disease"]),
            "protocol_digest": r["protocol_digest"],
            "status": REQUEST_STATUSES[status],
            "expiry": r["expiry"],
            "reviewer": r["reviewer"],
            "decision_digest": r["decision_digest"],
            "requested_block": r["requested_block"],
            "decided_block": r["decided_block"],
            "tx_hash": r["tx_hash"],
        }

    def requests_for(self, dataset: str | bytes, *, after: int | None = None, limit: int | None = 100) -> Page:
        """Access requests filed for a dataset with their current status, oldest first."""
        with self._snapshot() as c:
            cur = c.execute(
                "SELECT * FROM access_requests WHERE dataset = ? AND requested_seq > ? ORDER BY requested_seq LIMIT ?",
                (norm_root(dataset), -1 if after is None else after, _limit(limit)),
            )
            cols = [d[0] for d in cur.description]
            items = []
            for row in cur.fetchall():
                r = dict(zip(cols, row, strict=True))
                items.append({"seq": r["requested_seq"], **self._request_json(r)})
        return _page(items, limit)

    def approvals_for(
        self, dataset: str | bytes, from_block: int = 0, *, after: int | None = None, limit: int | None = 100
    ) -> Page:
        """Approvals given for a dataset from ``from_block`` on, in chain order, each with its
        request (requester, purpose) and the request's current status (``revoked`` if revoked later)."""
        with self._snapshot() as c:
            rows = c.execute(
                "SELECT a.seq, a.request_id, a.requester, a.reviewer, a.digest, a.expiry, a.block, a.tx_hash, "
                "a.timestamp, r.purpose, r.disease, r.status, r.protocol_digest, a.dataset "
                "FROM access_decisions a LEFT JOIN access_requests r ON r.request_id = a.request_id "
                "WHERE a.dataset = ? AND a.decision = 'approved' AND a.seq >= ? AND a.seq > ? "
                "ORDER BY a.seq LIMIT ?",
                (norm_root(dataset), block_seq_start(from_block), -1 if after is None else after, _limit(limit)),
            ).fetchall()
        items = [
            {
                "seq": r[0],
                "request_id": r[1],
                "dataset": r[13],
                "requester": r[2],
                "reviewer": r[3],
                "conditions_digest": r[4],
                "expiry": r[5],
                "block_number": r[6],
                "tx_hash": r[7],
                "block_timestamp": r[8],
                **self._terms_json(r[9], r[10]),
                "protocol_digest": r[12],
                "request_status": REQUEST_STATUSES[r[11]] if r[11] is not None else None,
            }
            for r in rows
        ]
        return _page(items, limit)

    def decisions_for(self, request_id: int) -> list[JSON]:
        """Every decision on one request (approved, denied, revoked), oldest first."""
        with self._snapshot() as c:
            rows = c.execute(
                "SELECT seq, decision, reviewer, digest, expiry, block, tx_hash, timestamp FROM access_decisions "
                "WHERE request_id = ? ORDER BY seq",
                (_sqlint(request_id),),
            ).fetchall()
        return [
            {
                "seq": r[0],
                "decision": r[1],
                "reviewer": r[2],
                "digest": r[3],
                "expiry": r[4],
                "block_number": r[5],
                "tx_hash": r[6],
                "block_timestamp": r[7],
            }
            for r in rows
        ]

    _USE_COLS = "seq, dataset, user, request_id, purpose, disease, result_digest, use_number, block, tx_hash, timestamp"

    def _use_json(self, r: Sequence[Any]) -> JSON:
        return {
            "seq": r[0],
            "dataset": r[1],
            "user": r[2],
            "request_id": r[3],
            **self._terms_json(r[4], r[5]),
            "result_digest": r[6],
            "use_number": r[7],
            "block_number": r[8],
            "tx_hash": r[9],
            "block_timestamp": r[10],
        }

    def uses_of(
        self, dataset: str | bytes, from_block: int = 0, *, after: int | None = None, limit: int | None = 100
    ) -> Page:
        """Uses recorded of a dataset from ``from_block`` on, in chain order."""
        with self._snapshot() as c:
            rows = c.execute(
                f"SELECT {self._USE_COLS} FROM uses WHERE dataset = ? AND seq >= ? AND seq > ? ORDER BY seq LIMIT ?",
                (norm_root(dataset), block_seq_start(from_block), -1 if after is None else after, _limit(limit)),
            ).fetchall()
        return _page([self._use_json(r) for r in rows], limit)

    def uses_by(self, user: str, from_block: int = 0, *, after: int | None = None, limit: int | None = 100) -> Page:
        """Uses recorded by an account from ``from_block`` on, in chain order."""
        with self._snapshot() as c:
            rows = c.execute(
                f"SELECT {self._USE_COLS} FROM uses WHERE user = ? AND seq >= ? AND seq > ? ORDER BY seq LIMIT ?",
                (norm_address(user), block_seq_start(from_block), -1 if after is None else after, _limit(limit)),
            ).fetchall()
        return _page([self._use_json(r) for r in rows], limit)

    def uses_under(self, request_id: int) -> list[JSON]:
        """Uses recorded under one approval."""
        with self._snapshot() as c:
            rows = c.execute(
                f"SELECT {self._USE_COLS} FROM uses WHERE request_id = ? AND request_id != 0 ORDER BY seq",
                (_sqlint(request_id),),
            ).fetchall()
        return [self._use_json(r) for r in rows]

    # -- queries: relay

    def relay_status(self, signer: str, nonce: int) -> JSON:
        """Whether the forward request (signer, nonce) was executed as of the last indexed block,
        and if so whether its call succeeded, in which transaction and block."""
        addr = norm_address(signer)
        with self._snapshot() as c:
            row = c.execute(
                "SELECT seq, success, block, tx_hash, timestamp FROM forwards WHERE signer = ? AND nonce = ? "
                "ORDER BY seq LIMIT 1",
                (addr, _sqlint(nonce)),
            ).fetchone()
            last = self._meta_get(c, "last_block")
        out: JSON = {"signer": addr, "nonce": nonce, "indexed_block": int(last) if last is not None else -1}
        if row is None:
            return {**out, "executed": False, "success": None, "tx_hash": None, "block_number": None}
        return {
            **out,
            "executed": True,
            "success": bool(row[1]),
            "tx_hash": row[3],
            "block_number": row[2],
            "block_timestamp": row[4],
            "seq": row[0],
        }

    def relays_of(self, signer: str, *, after: int | None = None, limit: int | None = 100) -> Page:
        """Forward requests of one signer executed, in nonce order."""
        addr = norm_address(signer)
        with self._snapshot() as c:
            rows = c.execute(
                "SELECT seq, nonce, success, block, tx_hash, timestamp FROM forwards WHERE signer = ? AND seq > ? "
                "ORDER BY nonce LIMIT ?",
                (addr, -1 if after is None else after, _limit(limit)),
            ).fetchall()
        items = [
            {
                "seq": r[0],
                "signer": addr,
                "nonce": int(r[1]),
                "success": bool(r[2]),
                "block_number": r[3],
                "tx_hash": r[4],
                "block_timestamp": r[5],
            }
            for r in rows
        ]
        return _page(items, limit)

    # -- statistics

    def stats(self) -> dict[str, int]:
        """Row counts of every table, and the last indexed block."""
        with self._snapshot() as c:
            out = {t: int(c.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]) for t in _TABLES if t != "meta"}
            last = self._meta_get(c, "last_block")
        out["last_block"] = int(last) if last is not None else -1
        return out


# ---------------------------------------------------------------------------------------------
# the indexer: the store fed from the chain

_T = TypeVar("_T")


def _prefetch(source: Iterator[_T], depth: int = 2) -> Iterator[_T]:
    """Run ``source`` in a background thread, ``depth`` items ahead (fetching the next chunk
    while the current one is written)."""
    q: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in source:
                while not stop.is_set():
                    try:
                        q.put(("item", item), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(("end", None))
        except BaseException as exc:  # handed to the consumer
            q.put(("error", exc))

    thread = threading.Thread(target=produce, name="index-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = q.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        while thread.is_alive():
            with contextlib.suppress(queue.Empty):
                q.get_nowait()
            thread.join(0.05)


class _FileLock:
    """An advisory lock file next to the database: one writing process at a time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def __enter__(self) -> _FileLock:
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            import fcntl

            fcntl.flock(self._fd, fcntl.LOCK_EX)
        except ImportError:  # pragma: no cover - non-POSIX: SQLite's own locking still applies
            pass
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            try:
                import fcntl

                fcntl.flock(self._fd, fcntl.LOCK_UN)
            except ImportError:  # pragma: no cover
                pass
            os.close(self._fd)
            self._fd = None


class Indexer(IndexStore):
    """Follows the ledger's events from the chain into the index (``sync``, or a background
    thread with ``start``/``stop``) and answers the audit queries of ``IndexStore``."""

    def __init__(
        self,
        settings: Settings,
        client: ChainClient,
        *,
        path: Path | str | None = None,
        chunk_blocks: int = 2000,
        confirmations: int | None = None,
        keep_blocks: int = 256,
    ) -> None:
        super().__init__(path if path is not None else settings.index_path, keep_blocks=keep_blocks)
        self.settings = settings
        self.client = client
        self.source = LogSource(client, chunk_blocks=chunk_blocks, confirmations=confirmations)
        self._sync_lock = threading.RLock()
        self._file_lock = _FileLock(self.path.with_name(self.path.name + ".lock"))
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.last_report: SyncReport | None = None
        self.last_error: str | None = None
        self.last_sync_at: float | None = None

    @property
    def confirmations(self) -> int:
        return self.source.confirmations

    def chain_identity(self) -> IndexIdentity:
        """What the index must have been built from for this client's chain and deployment."""
        record = self.source.record
        header = self.source.headers([record.deploy_block], fresh=True).get(record.deploy_block)
        return IndexIdentity(
            chain_id=self.client.chain_id,
            deploy_block=record.deploy_block,
            addresses=dict(record.addresses),
            deploy_block_hash=header.hash if header is not None else None,
        )

    # -- syncing

    def sync(self, *, to_block: int | None = None, max_blocks: int | None = None) -> SyncReport:
        """Index the confirmed blocks not yet indexed (up to ``to_block`` and at most
        ``max_blocks`` of them, if given). Rebuilds first when the index belongs to another
        chain or deployment; rolls back first when a reorganisation replaced indexed blocks."""
        t0 = time.monotonic()
        with self._sync_lock, self._file_lock:
            head = self.source.head()
            ident = self.chain_identity()
            rebuilt = ident.mismatch(self.identity())
            if rebuilt is not None:
                if self.identity() is not None:
                    log.warning("rebuilding index %s: %s", self.path, rebuilt)
                self.reset(ident)
            reorg_depth = 0
            if rebuilt is None:
                reorg_depth, reason = self._handle_reorg(ident)
                if reason is not None:
                    rebuilt = reason
            start = self.last_block + 1
            safe = self.source.safe_head(head)
            target = safe if to_block is None else min(to_block, safe)
            if max_blocks is not None:
                target = min(target, start + max_blocks - 1)
            n_events = 0
            chunks = 0
            if start <= target:
                for chunk in _prefetch(self.source.chunks(start, target)):
                    n_events += self.ingest(
                        chunk.events,
                        from_block=chunk.from_block,
                        to_block=chunk.to_block,
                        block_hashes=chunk.block_hashes,
                        end_timestamp=chunk.end_timestamp,
                    )
                    chunks += 1
            report = SyncReport(
                from_block=start,
                to_block=self.last_block,
                head=head,
                safe_head=safe,
                events=n_events,
                chunks=chunks,
                seconds=time.monotonic() - t0,
                rebuilt=rebuilt,
                reorg_depth=reorg_depth,
            )
            self.last_report = report
            self.last_sync_at = time.time()
            self.last_error = None
            if n_events or rebuilt or reorg_depth:
                log.info(
                    "indexed blocks %d..%d: %d events in %.2f s%s",
                    report.from_block,
                    report.to_block,
                    n_events,
                    report.seconds,
                    f" ({rebuilt})" if rebuilt else "",
                )
            return report

    def _handle_reorg(self, ident: IndexIdentity) -> tuple[int, str | None]:
        """Compare the stored hash of the last indexed block with the chain's; on a mismatch roll
        back to the newest stored block that still matches (or rebuild if none does). Returns
        (blocks rolled back, rebuild reason or None)."""
        last = self.last_block
        if last < ident.deploy_block:
            return 0, None
        stored = self.stored_block_hashes()
        last_hash = stored.get(last) or self.last_block_hash()
        current = self.source.headers([last], fresh=True).get(last)
        if current is not None and (not last_hash or current.hash == last_hash):
            return 0, None
        numbers = sorted(stored, reverse=True)
        chain = self.source.headers(numbers, fresh=True)
        ancestor = next((n for n in numbers if n in chain and chain[n].hash == stored[n]), None)
        self.source.forget_headers(above=ancestor if ancestor is not None else -1)
        if ancestor is None:
            reason = "a reorganisation replaced every block the index remembers"
            log.warning("rebuilding index %s: %s", self.path, reason)
            self.reset(ident)
            return last - ident.deploy_block + 1, reason
        removed = self.rollback_to(ancestor)
        log.warning("reorganisation: rolled the index back from block %d to %d (%d events)", last, ancestor, removed)
        return last - ancestor, None

    def rebuild(self) -> SyncReport:
        """Drop the index and read everything again from the deploy block."""
        with self._sync_lock, self._file_lock:
            self.reset(self.chain_identity())
        report = self.sync()
        report.rebuilt = report.rebuilt or "requested"
        return report

    # -- following

    def run_forever(self, interval: float = 2.0) -> None:
        """Sync every ``interval`` seconds until ``stop()``; errors are logged, kept in
        ``last_error`` and retried with backoff (up to a minute)."""
        self._stop.clear()
        failures = 0
        while not self._stop.is_set():
            try:
                self.sync()
                failures = 0
                delay = interval
            except Exception as exc:
                failures += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                delay = min(60.0, interval * (2 ** min(failures, 6)))
                log.warning("index sync failed (%d in a row): %s; retrying in %.1f s", failures, exc, delay)
            self._stop.wait(delay)

    def start(self, interval: float = 2.0) -> None:
        """Follow the chain in a background thread."""
        if self.running:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self.run_forever, args=(interval,), name="ledger-indexer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the background thread (after the chunk it is writing)."""
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def close(self) -> None:
        self.stop()
        super().close()

    def __enter__(self) -> Indexer:
        return self

    # -- state

    def lag(self) -> int:
        """Blocks between the chain head and the last indexed block."""
        return self.source.head() - self.last_block

    def status(self) -> JSON:
        """Where the index stands, for health checks."""
        m = self.meta()
        last = int(m.get("last_block", -1))
        out: JSON = {
            "path": str(self.path),
            "chain_id": int(m["chain_id"]) if "chain_id" in m else None,
            "deploy_block": int(m["deploy_block"]) if "deploy_block" in m else None,
            "addresses": json.loads(m["addresses"]) if "addresses" in m else {},
            "last_block": last,
            "last_block_hash": m.get("last_block_hash") or None,
            "last_block_timestamp": int(m["last_block_timestamp"]) if m.get("last_block_timestamp") else None,
            "confirmations": self.confirmations,
            "running": self.running,
            "last_sync_at": self.last_sync_at,
            "last_error": self.last_error,
            "last_report": self.last_report.to_json() if self.last_report else None,
            "head": None,
            "safe_head": None,
            "lag": None,
        }
        try:
            head = self.source.head()
            out.update(head=head, safe_head=self.source.safe_head(head), lag=head - last)
        except LedgerError as exc:
            out["node_error"] = str(exc)
        return out


# ---------------------------------------------------------------------------------------------
# the index as the history source of ledger.coverage


class IndexEventSource:
    """``ledger.coverage.EventSource`` answered from the index instead of ``eth_getLogs``: the
    same records ``LogEventSource`` returns, read through indexes. With an ``Indexer`` and
    ``fresh`` (the default), every call first syncs the confirmed blocks not yet indexed."""

    def __init__(self, store: IndexStore, *, fresh: bool = True) -> None:
        self.store = store
        self.fresh = fresh

    def _sync(self) -> None:
        if self.fresh and isinstance(self.store, Indexer):
            self.store.sync()

    def consent_events_until(self, block: int, subjects: Iterable[str] | None = None) -> list[ConsentEvent]:
        from ledger.core.records import ScopeKind
        from ledger.history.sources import ConsentEvent, ConsentEventKind

        self._sync()
        who = None if subjects is None else sorted({norm_address(x) for x in subjects})
        if who is not None and not who:
            return []
        with self.store._snapshot() as c:
            rows = self.store._consent_event_rows(c, block, None, None, who)
        out: list[ConsentEvent] = []
        for r in rows:
            common: dict[str, Any] = {
                "block": int(r[11]),
                "log_index": int(r[0]) & ((1 << SEQ_SHIFT) - 1),
                "tx_hash": r[12],
                "subject": r[2],
            }
            action = r[3]
            if r[14] is not None:
                if action == "appointed":
                    out.append(
                        ConsentEvent(ConsentEventKind.DELEGATE_APPOINTED, **common, delegate=r[14], expiry=int(r[9]))
                    )
                else:
                    out.append(ConsentEvent(ConsentEventKind.DELEGATE_REVOKED, **common, delegate=r[14]))
            elif action == "given":
                out.append(
                    ConsentEvent(
                        ConsentEventKind.GIVEN,
                        **common,
                        consent_id=bytes.fromhex(r[1][2:]),
                        scope_kind=ScopeKind(int(r[4])),
                        scope=bytes.fromhex(r[5][2:]),
                        grantee=r[6],
                        purposes=int(r[7]),
                        disease=int(r[8]),
                        expiry=int(r[9]),
                        actor=r[10],
                    )
                )
            elif action == "renewed":
                out.append(
                    ConsentEvent(
                        ConsentEventKind.RENEWED,
                        **common,
                        consent_id=bytes.fromhex(r[1][2:]),
                        expiry=int(r[9]),
                        actor=r[10],
                    )
                )
            else:
                out.append(
                    ConsentEvent(ConsentEventKind.WITHDRAWN, **common, consent_id=bytes.fromhex(r[1][2:]), actor=r[10])
                )
        return out

    def withdrawals_of(self, subject: str) -> list[ConsentEvent]:
        from ledger.history.sources import ConsentEvent, ConsentEventKind

        self._sync()
        page = self.store.withdrawals_of(subject, limit=None)
        return [
            ConsentEvent(
                ConsentEventKind.WITHDRAWN,
                block=int(h["block_number"]),
                log_index=int(h["seq"]) & ((1 << SEQ_SHIFT) - 1),
                tx_hash=h["tx_hash"],
                subject=h["subject"],
                consent_id=bytes.fromhex(h["consent_id"][2:]),
                actor=h["actor"],
            )
            for h in page["items"]
        ]

    def children_of(self, root: bytes) -> list[bytes]:
        self._sync()
        return [bytes.fromhex(c["content_root"][2:]) for c in self.store.children_of(root)]

    def approvals_for(self, dataset: bytes, from_block: int = 0) -> list[ApprovalEvent]:
        from ledger.history.sources import ApprovalEvent

        self._sync()
        items = self.store.approvals_for(dataset, from_block, limit=None)["items"]
        return [
            ApprovalEvent(
                request_id=int(a["request_id"]),
                dataset=bytes.fromhex(a["dataset"][2:]),
                requester=a["requester"],
                reviewer=a["reviewer"],
                purpose=int(a["purposes"]),
                disease=int(a["disease"]),
                expiry=int(a["expiry"]),
                conditions_digest=bytes.fromhex(a["conditions_digest"][2:]),
                block=int(a["block_number"]),
                tx_hash=a["tx_hash"],
            )
            for a in items
        ]

    def uses_of(self, dataset: bytes, from_block: int = 0) -> list[UseEvent]:
        from ledger.history.sources import UseEvent

        self._sync()
        items = self.store.uses_of(dataset, from_block, limit=None)["items"]
        return [
            UseEvent(
                dataset=bytes.fromhex(u["dataset"][2:]),
                user=u["user"],
                request_id=int(u["request_id"]),
                purpose=int(u["purposes"]),
                disease=int(u["disease"]),
                result_digest=bytes.fromhex(u["result_digest"][2:]),
                use_number=int(u["use_number"]),
                block=int(u["block_number"]),
                tx_hash=u["tx_hash"],
            )
            for u in items
        ]
