"""Queries of the index: consents, their history, delegates, and the consent events up to a block
(to replay the consent state at that block)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Any

from ledger.history.events import block_seq_start
from ledger.history.index.base import StoreBase
from ledger.history.index.rows import (
    HISTORY_COLS,
    JSON,
    Page,
    consent_json,
    history_json,
    norm_address,
    norm_root,
    paged,
    sql_limit,
)


class ConsentQueries(StoreBase):
    def consent(self, consent_id: str | bytes) -> JSON | None:
        cid = norm_root(consent_id)
        with self._snapshot() as c:
            cur = c.execute("SELECT * FROM consents WHERE consent_id = ?", (cid,))
            row = cur.fetchone()
            if row is None:
                return None
            return consent_json(dict(zip([d[0] for d in cur.description], row, strict=True)), self._now(c))

    def consent_history(self, consent_id: str | bytes) -> list[JSON]:
        """Every change of one consent (given, renewed, withdrawn), oldest first; each row carries
        the consent's scope, grantee and terms as they were after the change."""
        cid = norm_root(consent_id)
        with self._snapshot() as c:
            rows = c.execute(
                f"SELECT {HISTORY_COLS} FROM consent_history WHERE consent_id = ? ORDER BY seq", (cid,)
            ).fetchall()
        return [history_json(r) for r in rows]

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
                (addr, sql_limit(limit), offset),
            )
            cols = [d[0] for d in cur.description]
            consents = [consent_json(dict(zip(cols, r, strict=True)), when) for r in cur.fetchall()]
            history: dict[str, list[JSON]] = {}
            for r in c.execute(f"SELECT {HISTORY_COLS} FROM consent_history WHERE subject = ? ORDER BY seq", (addr,)):
                history.setdefault(r[1], []).append(history_json(r))
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
                f"SELECT {HISTORY_COLS} FROM consent_history WHERE subject = ? AND seq > ? "
                "AND action = 'withdrawn' ORDER BY seq LIMIT ?",
                (addr, -1 if after is None else after, sql_limit(limit)),
            ).fetchall()
        return paged([history_json(r) for r in rows], limit)

    def _consent_event_rows(
        self, c: sqlite3.Connection, block: int, after: int | None, limit: int | None, subjects: list[str] | None
    ) -> list[tuple[Any, ...]]:
        end = block_seq_start(block + 1)
        start = -1 if after is None else after
        lim = sql_limit(limit)

        def query(who: list[str] | None) -> list[tuple[Any, ...]]:
            cond = ""
            params: list[Any] = [start, end]
            if who is not None:
                cond = f" AND subject IN ({','.join('?' * len(who))})"
                params += who
            # a compound SELECT ordered by its first column: SQLite merges the two rowid-ordered
            # scans and stops at the limit (no temporary sort of the whole range)
            sql = f"""
                SELECT {HISTORY_COLS}, NULL AS delegate FROM consent_history
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
                items.append(history_json(r[:14]))
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
        return paged(items, limit)

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
