"""The relayer's persistent queue: signed requests wait in SQLite until a worker submits them in
batches (flushed by size or after a short delay).

Guarantees:
- a request is accepted only after its signature, nonce and deadline are checked and, where no
  earlier request of the same signer is still queued, its call is simulated; the caller gets a
  ticket id at once;
- a queued request is never lost across a restart: rows live in SQLite (WAL), and the hash of a
  batch is stored before the worker waits for it;
- a request is never executed twice: the forwarder's per-signer nonce and the consent registry's
  used-nonce bitmap make a second execution impossible on chain, and on restart a row that was
  being submitted is settled from its stored transaction or, if that never landed, from the
  on-chain nonce (executed -> look up the result; not executed -> queued again);
- signed withdrawals are submitted before anything else, in their own batch if need be;
- what a request pinned for itself (a registration's metadata) is handed to ``release_pins``
  when the request fails, so nothing stays pinned for a write that did not anchor.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_utils.address import to_checksum_address
from web3.logs import DISCARD
from web3.types import TxReceipt

from ledger.core.errors import InvalidInput, LedgerError, NotFound, SignatureError, TransactionFailed
from ledger.relay.calls import decode_call
from ledger.relay.relayer import DEFAULT_DEADLINE_SECONDS, ForwardRequest, Outcome, Relayer, SignedConsent

SCHEMA = """
CREATE TABLE IF NOT EXISTS relay_requests (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,              -- 'forward' | 'consent'
    priority INTEGER NOT NULL,       -- 0 withdrawals, 1 everything else
    signer TEXT NOT NULL,
    nonce TEXT NOT NULL,             -- decimal (consent nonces exceed 64 bits)
    payload TEXT NOT NULL,
    pins TEXT NOT NULL DEFAULT '[]', -- CIDs pinned for this request; unpinned if it fails
    status TEXT NOT NULL,            -- queued | submitting | mined | failed
    tx_hash TEXT,
    block INTEGER,
    error TEXT,
    result TEXT,                     -- what the write created (request id, content root), JSON
    created REAL NOT NULL,
    updated REAL NOT NULL,
    UNIQUE(kind, signer, nonce)
);
CREATE INDEX IF NOT EXISTS relay_status ON relay_requests(status, priority, created);
CREATE INDEX IF NOT EXISTS relay_signer ON relay_requests(kind, signer, status);
"""


@dataclass(frozen=True)
class Ticket:
    id: str
    status: str
    kind: str
    signer: str
    nonce: int
    tx_hash: str | None = None
    block: int | None = None
    error: dict[str, Any] | None = None
    result: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "kind": self.kind,
            "signer": self.signer,
            "nonce": str(self.nonce),
            "tx_hash": self.tx_hash,
            "block": self.block,
            "error": self.error,
            "result": self.result,
        }


def _error_json(err: LedgerError) -> dict[str, Any]:
    out: dict[str, Any] = {"type": err.code, "message": err.message}
    if err.hint:
        out["hint"] = err.hint
    name = getattr(err, "name", None)
    if name:
        out["error"] = name
        out["args"] = getattr(err, "args_", {})
    return out


class RelayQueue:
    """Persistent queue + batching worker over a Relayer. ``release_pins`` is the compensation of
    a failed request's pins (``ledger.services.datasets.release_pins`` over the service's store)."""

    def __init__(
        self,
        relayer: Relayer,
        path: Path,
        *,
        batch_size: int = 100,
        batch_delay: float = 0.2,
        release_pins: Callable[[Sequence[str]], None] | None = None,
    ) -> None:
        self.relayer = relayer
        self.batch_size = batch_size
        self.batch_delay = batch_delay
        self.release_pins = release_pins
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        columns = {r[1] for r in self._db.execute("PRAGMA table_info(relay_requests)")}
        if "result" not in columns:  # queues created before results were recorded
            self._db.execute("ALTER TABLE relay_requests ADD COLUMN result TEXT")
        self._lock = threading.RLock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._submit_lock = threading.Lock()  # one batch at a time: the relayer's nonces stay ordered

    # ------------------------------------------------------------------ accepting

    def _nonces_ahead(self, signer: str, chain_nonce: int) -> list[int]:
        """Nonces of this signer's requests not yet executed: queued or being submitted, at or
        above the chain's nonce (a row still marked submitting whose batch already mined is not)."""
        rows = self._db.execute(
            "SELECT nonce FROM relay_requests WHERE kind='forward' AND signer=? AND status IN ('queued','submitting')",
            (signer,),
        ).fetchall()
        return sorted(n for n in (int(r[0]) for r in rows) if n >= chain_nonce)

    def _expected_nonce(self, signer: str) -> tuple[int, bool]:
        """The nonce the signer's next request must carry, and whether earlier ones are pending."""
        chain = self.relayer.chain_nonce(signer)
        ahead = self._nonces_ahead(signer, chain)
        return (ahead[-1] + 1 if ahead else chain), bool(ahead)

    def next_nonce(self, signer: str) -> int:
        """The forward-request nonce the signer's next request must carry (chain + queued)."""
        signer = to_checksum_address(signer)
        with self._lock:
            return self._expected_nonce(signer)[0]

    def prepare(
        self, sender: str, to: str, data: bytes, *, deadline: int | None = None, gas_if_pending: int = 1_000_000
    ) -> ForwardRequest:
        """The unsigned forward request a client signs next: the nonce after this signer's queued
        requests, the gas estimated by simulation (or ``gas_if_pending`` when earlier requests are
        still queued, since the call may depend on them), a deadline an hour ahead by default."""
        sender = to_checksum_address(sender)
        with self._lock:
            nonce, pending = self._expected_nonce(sender)
        gas = gas_if_pending if pending else self.relayer.estimate_inner_gas(sender, to, data)
        deadline = deadline or self.relayer.now() + DEFAULT_DEADLINE_SECONDS
        return ForwardRequest(sender, to, 0, gas, nonce, deadline, data, b"")

    def _existing(self, kind: str, signer: str, nonce: int, payload: str) -> Ticket | None:
        row = self._db.execute(
            "SELECT id, payload FROM relay_requests WHERE kind=? AND signer=? AND nonce=?", (kind, signer, str(nonce))
        ).fetchone()
        if row is None:
            return None
        if row[1] != payload:
            raise SignatureError(
                f"another request from {signer} with nonce {nonce} is already queued",
                hint="fetch the next nonce and sign again",
            )
        return self.get(row[0])  # the same request sent twice: same ticket

    def submit_forward(self, req: ForwardRequest, *, pins: list[str] | None = None) -> Ticket:
        """Check and queue a signed forward request."""
        payload = json.dumps(req.to_json(), sort_keys=True)
        signer = to_checksum_address(req.sender)
        with self._lock:
            existing = self._existing("forward", signer, req.nonce, payload)
            if existing is not None:
                return existing
            expected, pending = self._expected_nonce(signer)
            # With earlier requests of this signer still queued, the chain state this one depends on
            # does not exist yet: check signature and nonce now, the outcome comes with the batch.
            self.relayer.check(req, expected_nonce=expected, simulate=not pending)
            return self._insert("forward", 1, signer, req.nonce, payload, pins or [])

    def submit_consent(self, sc: SignedConsent, *, pins: list[str] | None = None) -> Ticket:
        """Check and queue a signed consent message."""
        payload = json.dumps(sc.to_json(), sort_keys=True)
        try:
            nonce = int(sc.message["nonce"])
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInput("consent message needs an integer nonce") from exc
        with self._lock:
            signer = self.relayer.check_consent(sc)
            existing = self._existing("consent", signer, nonce, payload)
            if existing is not None:
                return existing
            priority = 0 if sc.kind == "Withdraw" else 1
            return self._insert("consent", priority, signer, nonce, payload, pins or [])

    def _insert(self, kind: str, priority: int, signer: str, nonce: int, payload: str, pins: list[str]) -> Ticket:
        tid = uuid.uuid4().hex
        now = time.time()
        self._db.execute(
            "INSERT INTO relay_requests (id, kind, priority, signer, nonce, payload, pins, status, created, updated)"
            " VALUES (?,?,?,?,?,?,?,?,?,?)",
            (tid, kind, priority, signer, str(nonce), payload, json.dumps(pins), "queued", now, now),
        )
        self._wake.set()
        return Ticket(tid, "queued", kind, signer, nonce)

    # ------------------------------------------------------------------ reading

    def get(self, ticket_id: str) -> Ticket:
        row = self._db.execute(
            "SELECT id, status, kind, signer, nonce, tx_hash, block, error, result FROM relay_requests WHERE id=?",
            (ticket_id,),
        ).fetchone()
        if row is None:
            raise NotFound(f"no relayed request {ticket_id}", hint="use the id returned when the request was queued")
        error = json.loads(row[7]) if row[7] else None
        result = json.loads(row[8]) if row[8] else None
        return Ticket(row[0], row[1], row[2], row[3], int(row[4]), row[5], row[6], error, result)

    def counts(self) -> dict[str, int]:
        rows = self._db.execute("SELECT status, COUNT(*) FROM relay_requests GROUP BY status").fetchall()
        return {str(r[0]): int(r[1]) for r in rows}

    def pending(self) -> int:
        row = self._db.execute("SELECT COUNT(*) FROM relay_requests WHERE status IN ('queued','submitting')").fetchone()
        return int(row[0])

    # ------------------------------------------------------------------ submitting

    def flush(self) -> int:
        """Submit up to ``batch_size`` queued requests (withdrawals first); returns how many."""
        with self._submit_lock:
            with self._lock:
                rows = self._db.execute(
                    "SELECT id, kind, payload, signer, nonce FROM relay_requests WHERE status='queued'"
                    " ORDER BY priority, created LIMIT ?",
                    (self.batch_size,),
                ).fetchall()
            if not rows:
                return 0
            consents = [r for r in rows if r[1] == "consent"]
            forwards = [r for r in rows if r[1] == "forward"]
            if consents:
                self._flush_consents(consents)
            if forwards:
                forwards.sort(key=lambda r: (r[3], int(r[4])))
                self._flush_forwards(forwards)
            return len(rows)

    def _mark_submitting(self, ids: list[str], tx_hash: str) -> None:
        now = time.time()
        with self._lock:
            self._db.executemany(
                "UPDATE relay_requests SET status='submitting', tx_hash=?, updated=? WHERE id=?",
                [(tx_hash, now, i) for i in ids],
            )

    def _settle(self, ids: list[str], outcomes: list[Outcome], results: list[Any] | None = None) -> None:
        now = time.time()
        failed_pins: list[str] = []
        with self._lock:
            for n, (i, o) in enumerate(zip(ids, outcomes, strict=True)):
                err = json.dumps(_error_json(o.error)) if o.error is not None else None
                res = json.dumps(results[n]) if results is not None and results[n] is not None and o.ok else None
                self._db.execute(
                    "UPDATE relay_requests SET status=?, tx_hash=?, block=?, error=?, result=?, updated=? WHERE id=?",
                    ("mined" if o.ok else "failed", o.tx_hash, o.block, err, res, now, i),
                )
                if not o.ok:
                    row = self._db.execute("SELECT pins FROM relay_requests WHERE id=?", (i,)).fetchone()
                    failed_pins += json.loads(row[0])
        if self.release_pins is not None and failed_pins:
            self.release_pins(failed_pins)

    def _flush_forwards(self, rows: list[Any]) -> None:
        reqs = [ForwardRequest.from_json(json.loads(r[2])) for r in rows]
        ids = [r[0] for r in rows]
        try:
            tx_hash = self.relayer.send_batch(reqs)
        except LedgerError as exc:
            self._send_failed(ids, exc)
            return
        self._mark_submitting(ids, tx_hash)
        self._settle_forwards(ids, reqs, self.relayer.client.wait(bytes.fromhex(tx_hash[2:])))

    def _settle_forwards(self, ids: list[str], reqs: list[ForwardRequest], receipt: TxReceipt) -> None:
        outcomes = self.relayer.outcomes(reqs, receipt)
        self._settle(ids, outcomes, self._results(reqs, outcomes, receipt))

    def _results(self, reqs: list[ForwardRequest], outcomes: list[Outcome], receipt: TxReceipt) -> list[Any]:
        """What each mined request created: the access request id, or the registered content root."""
        access = self.relayer.client.contract("AccessRegistry")
        new_ids: dict[str, list[int]] = {}
        for ev in access.events.AccessRequested().process_receipt(receipt, errors=DISCARD):
            new_ids.setdefault(str(ev["args"]["requester"]), []).append(int(ev["args"]["requestId"]))
        out: list[Any] = []
        for req, outcome in zip(reqs, outcomes, strict=True):
            result: dict[str, Any] | None = None
            if outcome.ok:
                try:
                    op, args = decode_call(self.relayer, req.to, req.data)
                except LedgerError:
                    op, args = None, {}
                if op is not None and op.name == "requestAccess" and new_ids.get(req.sender):
                    result = {"request_id": new_ids[req.sender].pop(0)}
                elif op is not None and op.name == "registerDataset":
                    result = {"content_root": "0x" + bytes(args["contentRoot"]).hex()}
            out.append(result)
        return out

    def _flush_consents(self, rows: list[Any]) -> None:
        items = [SignedConsent.from_json(json.loads(r[2])) for r in rows]
        ids = [r[0] for r in rows]
        try:
            tx_hash = self.relayer.send_consents(items)
        except LedgerError as exc:
            self._send_failed(ids, exc)
            return
        self._mark_submitting(ids, tx_hash)
        receipt = self.relayer.client.wait(bytes.fromhex(tx_hash[2:]))
        self._settle(ids, self.relayer.consent_outcomes(items, receipt))

    def _send_failed(self, ids: list[str], exc: LedgerError) -> None:
        """The batch could not be sent (node down, fee too low): the requests stay queued; only
        requests whose deadline passed meanwhile fail."""
        now = time.time()
        with self._lock:
            for i in ids:
                row = self._db.execute("SELECT kind, payload FROM relay_requests WHERE id=?", (i,)).fetchone()
                payload = json.loads(row[1])
                deadline = int(payload["deadline"] if row[0] == "forward" else payload["message"]["deadline"])
                if deadline <= now:
                    err = TransactionFailed(f"deadline passed while the relayer could not send: {exc.message}")
                    self._db.execute(
                        "UPDATE relay_requests SET status='failed', error=?, updated=? WHERE id=?",
                        (json.dumps(_error_json(err)), now, i),
                    )
        time.sleep(min(1.0, self.batch_delay * 5))

    # ------------------------------------------------------------------ recovery

    def recover(self) -> int:
        """Settle rows left 'submitting' by a previous process. Returns how many were settled."""
        rows = self._db.execute(
            "SELECT id, kind, payload, signer, nonce, tx_hash FROM relay_requests WHERE status='submitting'"
        ).fetchall()
        by_tx: dict[str, list[Any]] = {}
        for r in rows:
            by_tx.setdefault(r[5], []).append(r)
        w3 = self.relayer.client.w3
        for tx_hash, group in by_tx.items():
            receipt = None
            with contextlib.suppress(Exception):
                receipt = w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
            ids = [r[0] for r in group]
            if receipt is not None:
                if group[0][1] == "forward":
                    self._settle_forwards(ids, [ForwardRequest.from_json(json.loads(r[2])) for r in group], receipt)
                else:
                    items = [SignedConsent.from_json(json.loads(r[2])) for r in group]
                    self._settle(ids, self.relayer.consent_outcomes(items, receipt))
                continue
            # The batch never landed: requeue what the chain has not executed.
            for r in group:
                executed = self._executed_on_chain(r[1], r[3], int(r[4]))
                with self._lock:
                    if executed is None:
                        self._db.execute(
                            "UPDATE relay_requests SET status='queued', tx_hash=NULL, updated=? WHERE id=?",
                            (time.time(), r[0]),
                        )
                    else:
                        self._db.execute(
                            "UPDATE relay_requests SET status=?, tx_hash=?, block=?, updated=? WHERE id=?",
                            ("mined" if executed[0] else "failed", executed[1], executed[2], time.time(), r[0]),
                        )
        return len(rows)

    def _executed_on_chain(self, kind: str, signer: str, nonce: int) -> tuple[bool, str | None, int | None] | None:
        if kind == "forward":
            if self.relayer.chain_nonce(signer) <= nonce:
                return None
            fwd = self.relayer.forwarder
            logs = fwd.events.ExecutedForwardRequest().get_logs(from_block=0, argument_filters={"signer": signer})
            for ev in logs:
                if int(ev["args"]["nonce"]) == nonce:
                    return (
                        bool(ev["args"]["success"]),
                        "0x" + bytes(ev["transactionHash"]).hex(),
                        int(ev["blockNumber"]),
                    )
            return True, None, None
        used = self.relayer.client.call(self.relayer.consent.functions.nonceUsed(signer, nonce))
        return (True, None, None) if used else None

    # ------------------------------------------------------------------ worker

    def start(self) -> None:
        if self._thread is not None:
            return
        self.recover()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="relay-worker", daemon=True)
        self._thread.start()
        self._wake.set()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(timeout=1.0)
            self._wake.clear()
            if self._stop.is_set():
                break
            # let a batch fill up: flush at batch_size, or after batch_delay
            deadline = time.monotonic() + self.batch_delay
            while time.monotonic() < deadline and self.pending() < self.batch_size and not self._stop.is_set():
                time.sleep(min(0.01, self.batch_delay))
            try:
                while self.flush() and not self._stop.is_set():
                    pass
            except Exception:  # keep the worker alive; rows stay queued/submitting and recover() settles them
                time.sleep(0.5)
                with contextlib.suppress(Exception):
                    self.recover()
                self._wake.set()

    def close(self) -> None:
        self.stop()
        self._db.close()
