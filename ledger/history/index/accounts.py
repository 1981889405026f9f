"""Queries of the index: accounts (roles, audit trails, suspensions) and relayed forward requests."""

from __future__ import annotations

import sqlite3

from ledger.history.index.base import StoreBase
from ledger.history.index.rows import JSON, Page, norm_address, norm_root, paged, sql_limit, sqlint
from ledger.history.index.schema import STATUS_NAMES


class AccountQueries(StoreBase):
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

    # -- queries: relay

    def relay_status(self, signer: str, nonce: int) -> JSON:
        """Whether the forward request (signer, nonce) was executed as of the last indexed block,
        and if so whether its call succeeded, in which transaction and block."""
        addr = norm_address(signer)
        with self._snapshot() as c:
            row = c.execute(
                "SELECT seq, success, block, tx_hash, timestamp FROM forwards WHERE signer = ? AND nonce = ? "
                "ORDER BY seq LIMIT 1",
                (addr, sqlint(nonce)),
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
                (addr, -1 if after is None else after, sql_limit(limit)),
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
        return paged(items, limit)
