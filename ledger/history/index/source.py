"""The index as an ``EventSource`` (ledger.history.sources): the same records ``LogEventSource``
reads with ``eth_getLogs``, answered from the index's tables."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ledger.core.records import ScopeKind
from ledger.history.events import SEQ_SHIFT
from ledger.history.index.rows import norm_address
from ledger.history.index.store import IndexStore
from ledger.history.index.sync import Indexer
from ledger.history.sources import ApprovalEvent, ConsentEvent, ConsentEventKind, UseEvent


class IndexEventSource:
    """``ledger.history.sources.EventSource`` answered from the index instead of ``eth_getLogs``: the
    same records ``LogEventSource`` returns, read through indexes. With an ``Indexer`` and
    ``fresh`` (the default), every call first syncs the confirmed blocks not yet indexed."""

    def __init__(self, store: IndexStore, *, fresh: bool = True) -> None:
        self.store = store
        self.fresh = fresh

    def _sync(self) -> None:
        if self.fresh and isinstance(self.store, Indexer):
            self.store.sync()

    def consent_events_until(self, block: int, subjects: Iterable[str] | None = None) -> list[ConsentEvent]:
        self._sync()
        who = None if subjects is None else sorted({norm_address(x) for x in subjects})
        if who is not None and not who:
            return []
        with self.store._snapshot() as c:
            rows = self.store._consent_event_rows(c, block, None, None, who)
        out: list[ConsentEvent] = []
        for r in rows:
            common: dict[str, Any] = {
                "block": int(r[11]),
                "log_index": int(r[0]) & ((1 << SEQ_SHIFT) - 1),
                "tx_hash": r[12],
                "subject": r[2],
            }
            action = r[3]
            if r[14] is not None:
                if action == "appointed":
                    out.append(
                        ConsentEvent(ConsentEventKind.DELEGATE_APPOINTED, **common, delegate=r[14], expiry=int(r[9]))
                    )
                else:
                    out.append(ConsentEvent(ConsentEventKind.DELEGATE_REVOKED, **common, delegate=r[14]))
            elif action == "given":
                out.append(
                    ConsentEvent(
                        ConsentEventKind.GIVEN,
                        **common,
                        consent_id=bytes.fromhex(r[1][2:]),
                        scope_kind=ScopeKind(int(r[4])),
                        scope=bytes.fromhex(r[5][2:]),
                        grantee=r[6],
                        purposes=int(r[7]),
                        disease=int(r[8]),
                        expiry=int(r[9]),
                        actor=r[10],
                    )
                )
            elif action == "renewed":
                out.append(
                    ConsentEvent(
                        ConsentEventKind.RENEWED,
                        **common,
                        consent_id=bytes.fromhex(r[1][2:]),
                        expiry=int(r[9]),
                        actor=r[10],
                    )
                )
            else:
                out.append(
                    ConsentEvent(ConsentEventKind.WITHDRAWN, **common, consent_id=bytes.fromhex(r[1][2:]), actor=r[10])
                )
        return out

    def withdrawals_of(self, subject: str) -> list[ConsentEvent]:
        self._sync()
        page = self.store.withdrawals_of(subject, limit=None)
        return [
            ConsentEvent(
                ConsentEventKind.WITHDRAWN,
                block=int(h["block_number"]),
                log_index=int(h["seq"]) & ((1 << SEQ_SHIFT) - 1),
                tx_hash=h["tx_hash"],
                subject=h["subject"],
                consent_id=bytes.fromhex(h["consent_id"][2:]),
                actor=h["actor"],
            )
            for h in page["items"]
        ]

    def children_of(self, root: bytes) -> list[bytes]:
        self._sync()
        return [bytes.fromhex(c["content_root"][2:]) for c in self.store.children_of(root)]

    def approvals_for(self, dataset: bytes, from_block: int = 0) -> list[ApprovalEvent]:
        self._sync()
        items = self.store.approvals_for(dataset, from_block, limit=None)["items"]
        return [
            ApprovalEvent(
                request_id=int(a["request_id"]),
                dataset=bytes.fromhex(a["dataset"][2:]),
                requester=a["requester"],
                reviewer=a["reviewer"],
                purpose=int(a["purposes"]),
                disease=int(a["disease"]),
                expiry=int(a["expiry"]),
                conditions_digest=bytes.fromhex(a["conditions_digest"][2:]),
                block=int(a["block_number"]),
                tx_hash=a["tx_hash"],
            )
            for a in items
        ]

    def uses_of(self, dataset: bytes, from_block: int = 0) -> list[UseEvent]:
        self._sync()
        items = self.store.uses_of(dataset, from_block, limit=None)["items"]
        return [
            UseEvent(
                dataset=bytes.fromhex(u["dataset"][2:]),
                user=u["user"],
                request_id=int(u["request_id"]),
                purpose=int(u["purposes"]),
                disease=int(u["disease"]),
                result_digest=bytes.fromhex(u["result_digest"][2:]),
                use_number=int(u["use_number"]),
                block=int(u["block_number"]),
                tx_hash=u["tx_hash"],
            )
            for u in items
        ]
