"""The index's store: schema upkeep, transactional ingestion of decoded events, re-projection,
and every query (the query modules are its bases). Knows nothing of the chain (``Indexer`` feeds
it); benchmarks feed it synthetic events."""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from ledger.history.events import LedgerEvent, block_seq_start
from ledger.history.index.access import AccessQueries
from ledger.history.index.accounts import AccountQueries
from ledger.history.index.consents import ConsentQueries
from ledger.history.index.datasets import DatasetQueries
from ledger.history.index.projector import Projector
from ledger.history.index.schema import DERIVED, INDEXES, SCHEMA_VERSION, TABLES, IndexIdentity, IndexStateError

log = logging.getLogger(__name__)


class IndexStore(DatasetQueries, ConsentQueries, AccessQueries, AccountQueries):
    """The SQLite index: schema, transactional ingestion of decoded events, and the queries.
    Knows nothing of the chain (``Indexer`` feeds it); benchmarks feed it synthetic events."""

    def __init__(self, path: Path | str, *, keep_blocks: int = 256) -> None:
        super().__init__(path)
        self.keep_blocks = keep_blocks
        self._projector = Projector()
        self._progress = threading.Condition()
        self._ensure_schema()

    # -- schema and meta

    def _ensure_schema(self) -> None:
        with self._write_lock:
            c = self._conn
            have = {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            version = None
            if "meta" in have:
                row = c.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
                version = int(row[0]) if row else None
            stale = bool(have) and (version != SCHEMA_VERSION or not set(TABLES) <= have)
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
        for sql in TABLES.values():
            self._conn.execute(sql)
        for sql in INDEXES:
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
        for table in DERIVED:
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

    # -- statistics

    def stats(self) -> dict[str, int]:
        """Row counts of every table, and the last indexed block."""
        with self._snapshot() as c:
            out = {t: int(c.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]) for t in TABLES if t != "meta"}
            last = self._meta_get(c, "last_block")
        out["last_block"] = int(last) if last is not None else -1
        return out
