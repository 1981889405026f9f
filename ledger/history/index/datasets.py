"""Queries of the index: datasets, their trails and versions, and lineage walks."""

from __future__ import annotations

import sqlite3
from typing import Any

from ledger.history.index.base import StoreBase
from ledger.history.index.rows import JSON, MAX_LIMIT, Page, dataset_json, norm_address, norm_root, paged, sql_limit
from ledger.history.index.schema import STATUS_NAMES, TIER_NAMES


class DatasetQueries(StoreBase):
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
        return dataset_json(dict(zip([d[0] for d in cur.description], row, strict=True)))

    def datasets_of(self, holder: str, *, after: int | None = None, limit: int | None = 100) -> Page:
        """Datasets registered by ``holder``, oldest first."""
        with self._snapshot() as c:
            cur = c.execute(
                "SELECT * FROM datasets WHERE holder = ? AND registered_seq > ? ORDER BY registered_seq LIMIT ?",
                (norm_address(holder), -1 if after is None else after, sql_limit(limit)),
            )
            cols = [d[0] for d in cur.description]
            items = []
            for row in cur.fetchall():
                r = dict(zip(cols, row, strict=True))
                items.append({"seq": r["registered_seq"], **dataset_json(r)})
        return paged(items, limit)

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
