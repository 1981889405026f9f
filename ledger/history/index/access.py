"""Queries of the index: access requests, their decisions, and uses of datasets."""

from __future__ import annotations

from ledger.history.events import block_seq_start
from ledger.history.index.base import StoreBase
from ledger.history.index.rows import (
    JSON,
    USE_COLS,
    Page,
    norm_address,
    norm_root,
    paged,
    request_json,
    sql_limit,
    sqlint,
    terms_json,
    use_json,
)
from ledger.history.index.schema import REQUEST_STATUSES


class AccessQueries(StoreBase):
    def request(self, request_id: int) -> JSON | None:
        with self._snapshot() as c:
            cur = c.execute("SELECT * FROM access_requests WHERE request_id = ?", (sqlint(request_id),))
            row = cur.fetchone()
            if row is None:
                return None
            return request_json(dict(zip([d[0] for d in cur.description], row, strict=True)))

    def requests_for(self, dataset: str | bytes, *, after: int | None = None, limit: int | None = 100) -> Page:
        """Access requests filed for a dataset with their current status, oldest first."""
        with self._snapshot() as c:
            cur = c.execute(
                "SELECT * FROM access_requests WHERE dataset = ? AND requested_seq > ? ORDER BY requested_seq LIMIT ?",
                (norm_root(dataset), -1 if after is None else after, sql_limit(limit)),
            )
            cols = [d[0] for d in cur.description]
            items = []
            for row in cur.fetchall():
                r = dict(zip(cols, row, strict=True))
                items.append({"seq": r["requested_seq"], **request_json(r)})
        return paged(items, limit)

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
                (norm_root(dataset), block_seq_start(from_block), -1 if after is None else after, sql_limit(limit)),
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
                **terms_json(r[9], r[10]),
                "protocol_digest": r[12],
                "request_status": REQUEST_STATUSES[r[11]] if r[11] is not None else None,
            }
            for r in rows
        ]
        return paged(items, limit)

    def decisions_for(self, request_id: int) -> list[JSON]:
        """Every decision on one request (approved, denied, revoked), oldest first."""
        with self._snapshot() as c:
            rows = c.execute(
                "SELECT seq, decision, reviewer, digest, expiry, block, tx_hash, timestamp FROM access_decisions "
                "WHERE request_id = ? ORDER BY seq",
                (sqlint(request_id),),
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

    def uses_of(
        self, dataset: str | bytes, from_block: int = 0, *, after: int | None = None, limit: int | None = 100
    ) -> Page:
        """Uses recorded of a dataset from ``from_block`` on, in chain order."""
        with self._snapshot() as c:
            rows = c.execute(
                f"SELECT {USE_COLS} FROM uses WHERE dataset = ? AND seq >= ? AND seq > ? ORDER BY seq LIMIT ?",
                (norm_root(dataset), block_seq_start(from_block), -1 if after is None else after, sql_limit(limit)),
            ).fetchall()
        return paged([use_json(r) for r in rows], limit)

    def uses_by(self, user: str, from_block: int = 0, *, after: int | None = None, limit: int | None = 100) -> Page:
        """Uses recorded by an account from ``from_block`` on, in chain order."""
        with self._snapshot() as c:
            rows = c.execute(
                f"SELECT {USE_COLS} FROM uses WHERE user = ? AND seq >= ? AND seq > ? ORDER BY seq LIMIT ?",
                (norm_address(user), block_seq_start(from_block), -1 if after is None else after, sql_limit(limit)),
            ).fetchall()
        return paged([use_json(r) for r in rows], limit)

    def uses_under(self, request_id: int) -> list[JSON]:
        """Uses recorded under one approval."""
        with self._snapshot() as c:
            rows = c.execute(
                f"SELECT {USE_COLS} FROM uses WHERE request_id = ? AND request_id != 0 ORDER BY seq",
                (sqlint(request_id),),
            ).fetchall()
        return [use_json(r) for r in rows]
