"""Connections of the SQLite index: one writer, any number of readers (WAL mode, one connection
per reading thread, a snapshot per query), and the reads every query module shares."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Self

from ledger.history.events import block_seq_start
from ledger.history.index.rows import EVENT_COLS, Page, event_json, paged, sql_limit
from ledger.history.index.schema import IndexStateError


class StoreBase:
    """The database connections and the generic event reads; the query modules build on it."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._write_lock = threading.RLock()
        self._conn = self._connect()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._local = threading.local()
        self._addresses: dict[str, str] = {}
        self._closed = False

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

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _meta_get(self, conn: sqlite3.Connection, key: str) -> str | None:
        row = conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None or row[0] is None else str(row[0])

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
        sql = f"SELECT {EVENT_COLS} FROM events e WHERE {' AND '.join(where)} ORDER BY e.seq LIMIT ?"
        with self._snapshot() as c:
            items = [event_json(r, self._addresses) for r in c.execute(sql, (*params, sql_limit(limit)))]
        return paged(items, limit)

    def _trail(self, c: sqlite3.Connection, entity: str, from_block: int, after: int | None, limit: int | None) -> Page:
        rows = c.execute(
            f"SELECT {EVENT_COLS}, t.role FROM touches t JOIN events e ON e.seq = t.seq "
            "WHERE t.entity = ? AND t.seq >= ? AND t.seq > ? ORDER BY t.seq LIMIT ?",
            (entity, block_seq_start(from_block), -1 if after is None else after, sql_limit(limit)),
        ).fetchall()
        return paged([event_json(r, self._addresses, r[9]) for r in rows], limit)
