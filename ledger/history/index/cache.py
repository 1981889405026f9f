"""The projector's write-back cache of current-state rows."""

from __future__ import annotations

import sqlite3
from typing import Any


class StateTable:
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
