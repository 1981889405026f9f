"""The index's SQLite schema, the names its integer columns stand for, and the identity of what an
index was built from.

Tables: ``events`` (every decoded event, args as JSON; the primary key ``seq`` is
``block << 20 | log_index``, so it orders like the chain and doubles as the pagination cursor),
``touches`` (which dataset roots and accounts an event concerns: the trails), and normalised,
indexed tables for the audit queries: ``datasets``, ``lineage``, ``consents`` with
``consent_history``, ``delegates`` with ``delegate_history``, ``access_requests`` with
``access_decisions``, ``uses``, ``suspensions``, ``roles`` with ``role_history`` and ``forwards``
(executed ERC-2771 forward requests).

A database with another ``SCHEMA_VERSION`` is dropped and rebuilt from the chain (it is a cache).
"""

from __future__ import annotations

from dataclasses import dataclass

from eth_utils.crypto import keccak

from ledger.core.errors import LedgerError
from ledger.core.records import ZERO32_HEX

#: version 2: ``datasets.overridden_embargo`` (the embargo end an auditor's override was made for)
SCHEMA_VERSION = 2

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


TABLES: dict[str, str] = {
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
        overridden_embargo INTEGER NOT NULL,
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


INDEXES: tuple[str, ...] = (
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
DERIVED = tuple(t for t in TABLES if t not in ("meta", "blocks", "events"))


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
