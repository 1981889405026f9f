"""The event index: follows the ledger's events into a local SQLite database for the reads that
need history (audit trails, a subject's consents, uses of a dataset, lineage walks).

The database is a cache of the chain and can always be rebuilt from it. Modules, by concept:
``schema`` (tables, names, what an index was built from), ``projector`` (events -> rows, with the
contracts' rules from ``ledger.rules``), ``store`` (ingestion and re-projection) with its query
modules ``datasets``, ``consents``, ``access`` and ``accounts``, ``sync`` (following the chain,
reorganisations, locking: ``Indexer``) and ``source`` (the index as an ``EventSource``).
"""

from ledger.history.index.rows import JSON, MAX_LIMIT, Page, norm_address, norm_root
from ledger.history.index.schema import (
    CONSENT_STATES,
    REQUEST_STATUSES,
    ROLE_NAMES,
    SCHEMA_VERSION,
    STATUS_NAMES,
    TIER_NAMES,
    IndexIdentity,
    IndexStateError,
)
from ledger.history.index.source import IndexEventSource
from ledger.history.index.store import IndexStore
from ledger.history.index.sync import Indexer, SyncReport

__all__ = [
    "CONSENT_STATES",
    "JSON",
    "MAX_LIMIT",
    "REQUEST_STATUSES",
    "ROLE_NAMES",
    "SCHEMA_VERSION",
    "STATUS_NAMES",
    "TIER_NAMES",
    "IndexEventSource",
    "IndexIdentity",
    "IndexStateError",
    "IndexStore",
    "Indexer",
    "Page",
    "SyncReport",
    "norm_address",
    "norm_root",
]
