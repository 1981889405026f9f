"""The projection: decoded events -> the index's rows.

Current-state rows (datasets, consents, requests, delegates, roles) are kept in a write-back cache
and written once per chunk; history rows are inserted with ``executemany``. Where a row states a
rule of the contracts (an embargo override in force), the projection asks ``ledger.rules`` so it
says what the contract's view says.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ledger.core.records import ZERO_ADDRESS
from ledger.history.events import SEQ_SHIFT, LedgerEvent, checksum
from ledger.history.index.cache import StateTable
from ledger.history.index.rows import dumps, sqlint
from ledger.history.index.schema import ROLE_NAMES
from ledger.rules import access

log = logging.getLogger(__name__)

APPEND_SQL: dict[str, str] = {
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
DECISIONS: dict[str, tuple[str, int, str]] = {
    "AccessApproved": ("approved", 2, "conditionsDigest"),
    "AccessDenied": ("denied", 3, "reasonDigest"),
    "AccessRevoked": ("revoked", 4, "reasonDigest"),
}


def _columns(names: str) -> tuple[str, ...]:
    return tuple(names.split())


class Projector:
    """Turns events into table rows (one instance per writer connection)."""

    def __init__(self) -> None:
        self.datasets = StateTable(
            "datasets",
            _columns(
                "root holder metadata_digest activity_digest subject_root parents tier classification embargo_end "
                "status successor embargo_overridden overridden_embargo registered_block registered_seq "
                "registered_tx registered_at updated_block"
            ),
            ("root",),
        )
        self.consents = StateTable(
            "consents",
            _columns(
                "consent_id subject scope_kind scope grantee purposes disease expiry state actor given_block "
                "given_seq updated_block updated_seq"
            ),
            ("consent_id",),
        )
        self.delegates = StateTable(
            "delegates",
            _columns("subject delegate expiry active appointed_block updated_block"),
            ("subject", "delegate"),
        )
        self.requests = StateTable(
            "access_requests",
            _columns(
                "request_id dataset requester purpose disease protocol_digest status expiry reviewer "
                "decision_digest requested_block requested_seq tx_hash timestamp decided_block"
            ),
            ("request_id",),
        )
        self.roles = StateTable(
            "roles", _columns("role account active sender granted_block updated_block"), ("role", "account")
        )
        self.states = (self.datasets, self.consents, self.delegates, self.requests, self.roles)
        self.rows: dict[str, list[tuple[Any, ...]]] = {t: [] for t in APPEND_SQL}
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
                    dumps(ev.args),
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
                conn.executemany(APPEND_SQL[table], rows)
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

    def _history(self, table: str, ev: LedgerEvent, seq: int, *fields: Any) -> None:
        """One row of an append-only history table: ``seq``, ``fields``, then the event's block,
        transaction and block time (the columns every such table ends with)."""
        self.rows[table].append((seq, *fields, ev.block_number, ev.tx_hash, ev.block_timestamp))

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
                "parents": dumps(a["parents"]),
                "tier": a["tier"],
                "classification": a["classification"],
                "embargo_end": a["embargoEnd"],
                "status": 1,
                "successor": None,
                "embargo_overridden": 0,
                "overridden_embargo": 0,
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
        row = self.datasets.get(conn, a["contentRoot"])
        # an override covers only the embargo end it was made for: a new end lapses it
        overridden = access.override_applies(row["overridden_embargo"], a["embargoEnd"]) if row else False
        self._update_dataset(
            conn, ev, a["contentRoot"], tier=a["tier"], embargo_end=a["embargoEnd"], embargo_overridden=int(overridden)
        )
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
        self._history(
            "suspensions", ev, seq, "dataset", a["contentRoot"], "suspended", a["auditor"], a["reasonDigest"], None
        )
        self._touch(t, a["contentRoot"], "dataset")
        self._touch(t, a["auditor"], "auditor")

    def _dataset_reinstated(self, conn: sqlite3.Connection, ev: LedgerEvent, seq: int, t: dict[str, str]) -> None:
        a = ev.args
        self._update_dataset(conn, ev, a["contentRoot"], status=a["restored"])
        self._history(
            "suspensions", ev, seq, "dataset", a["contentRoot"], "reinstated", a["auditor"], None, a["restored"]
        )
        self._touch(t, a["contentRoot"], "dataset")
        self._touch(t, a["auditor"], "auditor")

    # -- ConsentRegistry

    def _consent_history(self, ev: LedgerEvent, seq: int, action: str, row: Mapping[str, Any], actor: str) -> None:
        self._history(
            "consent_history",
            ev,
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
            "purposes": sqlint(a["purposes"]),
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
        self._history("delegate_history", ev, seq, a["subject"], a["delegate"], "appointed", a["expiry"])
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
        self._history("delegate_history", ev, seq, a["subject"], a["delegate"], "revoked", 0)
        self._touch(t, a["subject"], "subject")
        self._touch(t, a["delegate"], "delegate")

    # -- AccessRegistry

    def _access_requested(self, conn: sqlite3.Connection, ev: LedgerEvent, seq: int, t: dict[str, str]) -> None:
        a = ev.args
        rid = sqlint(a["requestId"])
        self.requests.put(
            rid,
            {
                "request_id": rid,
                "dataset": a["dataset"],
                "requester": a["requester"],
                "purpose": sqlint(a["purpose"]),
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
        decision, status, digest_field = DECISIONS[ev.event]
        rid = sqlint(a["requestId"])
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
        self._history(
            "access_decisions",
            ev,
            seq,
            rid,
            row["dataset"],
            row["requester"],
            a["reviewer"],
            decision,
            a[digest_field],
            a.get("expiry"),
        )
        self._touch(t, row["dataset"], "decision")
        self._touch(t, row["requester"], "requester")

    def _embargo_overridden(self, conn: sqlite3.Connection, ev: LedgerEvent, seq: int, t: dict[str, str]) -> None:
        a = ev.args
        row = self.datasets.get(conn, a["dataset"])
        # the contract records the embargo end in force when the override is made
        end = row["embargo_end"] if row else 0
        self._update_dataset(
            conn,
            ev,
            a["dataset"],
            overridden_embargo=end,
            embargo_overridden=int(access.override_applies(end, end)),
        )
        self._touch(t, a["dataset"], "dataset")
        self._touch(t, a["auditor"], "auditor")

    def _user_suspension(self, conn: sqlite3.Connection, ev: LedgerEvent, seq: int, t: dict[str, str]) -> None:
        a = ev.args
        action = "suspended" if ev.event == "UserSuspendedBy" else "reinstated"
        self._history("suspensions", ev, seq, "user", a["user"], action, a["auditor"], a.get("reasonDigest"), None)
        self._touch(t, a["user"], "user")
        self._touch(t, a["auditor"], "auditor")

    # -- UsageRegistry

    def _use_recorded(self, conn: sqlite3.Connection, ev: LedgerEvent, seq: int, t: dict[str, str]) -> None:
        a = ev.args
        self._history(
            "uses",
            ev,
            seq,
            a["dataset"],
            a["user"],
            sqlint(a["requestId"]),
            sqlint(a["purpose"]),
            a["diseaseCode"],
            a["resultDigest"],
            sqlint(a["useNumber"]),
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
        self._history("role_history", ev, seq, role, a["account"], "granted" if granted else "revoked", a["sender"])
        self._touch(t, a["account"], "account")
        self._touch(t, a["sender"], "admin")

    def _forward_executed(self, conn: sqlite3.Connection, ev: LedgerEvent, seq: int, t: dict[str, str]) -> None:
        a = ev.args
        self._history("forwards", ev, seq, a["signer"], sqlint(a["nonce"]), 1 if a["success"] else 0)
