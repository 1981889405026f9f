"""Following the chain into the index: ``Indexer.sync`` reads the confirmed blocks it has not seen
(``LogSource``), one transaction per chunk of blocks, and records the last block it processed with
its hash. It rebuilds by itself when the database was made for another chain or deployment (chain
id, contract addresses, deploy block and its hash are stored), and rolls back to the newest block
whose stored hash still matches the chain when a reorganisation replaced blocks it had indexed (or
rebuilds when none of the stored hashes match).

One writer (a thread lock within the process and a lock file across processes); any number of
readers.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ledger.core.errors import LedgerError
from ledger.history.index.rows import JSON
from ledger.history.index.schema import IndexIdentity
from ledger.history.index.store import IndexStore
from ledger.history.logs import LogSource

if sys.platform != "win32":  # elsewhere SQLite's own locking still applies
    import fcntl

if TYPE_CHECKING:
    from ledger.chain.client import ChainClient
    from ledger.core.config import Settings

log = logging.getLogger(__name__)


@dataclass
class SyncReport:
    """What one ``sync`` did."""

    from_block: int
    to_block: int
    head: int
    safe_head: int
    events: int
    chunks: int
    seconds: float
    rebuilt: str | None = None
    reorg_depth: int = 0

    @property
    def blocks(self) -> int:
        return max(0, self.to_block - self.from_block + 1)

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> JSON:
        d = asdict(self)
        d["blocks"] = self.blocks
        d["events_per_second"] = round(self.events_per_second, 1)
        return d


_T = TypeVar("_T")


def _prefetch(source: Iterator[_T], depth: int = 2) -> Iterator[_T]:
    """Run ``source`` in a background thread, ``depth`` items ahead (fetching the next chunk
    while the current one is written)."""
    q: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in source:
                while not stop.is_set():
                    try:
                        q.put(("item", item), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(("end", None))
        except BaseException as exc:  # handed to the consumer
            q.put(("error", exc))

    thread = threading.Thread(target=produce, name="index-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = q.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        while thread.is_alive():
            with contextlib.suppress(queue.Empty):
                q.get_nowait()
            thread.join(0.05)


class _FileLock:
    """An advisory lock file next to the database: one writing process at a time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def __enter__(self) -> _FileLock:
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        if sys.platform != "win32":
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            if sys.platform != "win32":
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


class Indexer(IndexStore):
    """Follows the ledger's events from the chain into the index (``sync``, or a background
    thread with ``start``/``stop``) and answers the audit queries of ``IndexStore``."""

    def __init__(
        self,
        settings: Settings,
        client: ChainClient,
        *,
        path: Path | str | None = None,
        chunk_blocks: int = 2000,
        confirmations: int | None = None,
        keep_blocks: int = 256,
    ) -> None:
        super().__init__(path if path is not None else settings.index_path, keep_blocks=keep_blocks)
        self.settings = settings
        self.client = client
        self.source = LogSource(client, chunk_blocks=chunk_blocks, confirmations=confirmations)
        self._sync_lock = threading.RLock()
        self._file_lock = _FileLock(self.path.with_name(self.path.name + ".lock"))
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.last_report: SyncReport | None = None
        self.last_error: str | None = None
        self.last_sync_at: float | None = None

    @property
    def confirmations(self) -> int:
        return self.source.confirmations

    def chain_identity(self) -> IndexIdentity:
        """What the index must have been built from for this client's chain and deployment."""
        record = self.source.record
        header = self.source.headers([record.deploy_block], fresh=True).get(record.deploy_block)
        return IndexIdentity(
            chain_id=self.client.chain_id,
            deploy_block=record.deploy_block,
            addresses=dict(record.addresses),
            deploy_block_hash=header.hash if header is not None else None,
        )

    # -- syncing

    def sync(self, *, to_block: int | None = None, max_blocks: int | None = None) -> SyncReport:
        """Index the confirmed blocks not yet indexed (up to ``to_block`` and at most
        ``max_blocks`` of them, if given). Rebuilds first when the index belongs to another
        chain or deployment; rolls back first when a reorganisation replaced indexed blocks."""
        t0 = time.monotonic()
        with self._sync_lock, self._file_lock:
            head = self.source.head()
            ident = self.chain_identity()
            rebuilt = ident.mismatch(self.identity())
            if rebuilt is not None:
                if self.identity() is not None:
                    log.warning("rebuilding index %s: %s", self.path, rebuilt)
                self.reset(ident)
            reorg_depth = 0
            if rebuilt is None:
                reorg_depth, reason = self._handle_reorg(ident)
                if reason is not None:
                    rebuilt = reason
            start = self.last_block + 1
            safe = self.source.safe_head(head)
            target = safe if to_block is None else min(to_block, safe)
            if max_blocks is not None:
                target = min(target, start + max_blocks - 1)
            n_events = 0
            chunks = 0
            if start <= target:
                for chunk in _prefetch(self.source.chunks(start, target)):
                    n_events += self.ingest(
                        chunk.events,
                        from_block=chunk.from_block,
                        to_block=chunk.to_block,
                        block_hashes=chunk.block_hashes,
                        end_timestamp=chunk.end_timestamp,
                    )
                    chunks += 1
            report = SyncReport(
                from_block=start,
                to_block=self.last_block,
                head=head,
                safe_head=safe,
                events=n_events,
                chunks=chunks,
                seconds=time.monotonic() - t0,
                rebuilt=rebuilt,
                reorg_depth=reorg_depth,
            )
            self.last_report = report
            self.last_sync_at = time.time()
            self.last_error = None
            if n_events or rebuilt or reorg_depth:
                log.info(
                    "indexed blocks %d..%d: %d events in %.2f s%s",
                    report.from_block,
                    report.to_block,
                    n_events,
                    report.seconds,
                    f" ({rebuilt})" if rebuilt else "",
                )
            return report

    def _handle_reorg(self, ident: IndexIdentity) -> tuple[int, str | None]:
        """Compare the stored hash of the last indexed block with the chain's; on a mismatch roll
        back to the newest stored block that still matches (or rebuild if none does). Returns
        (blocks rolled back, rebuild reason or None)."""
        last = self.last_block
        if last < ident.deploy_block:
            return 0, None
        stored = self.stored_block_hashes()
        last_hash = stored.get(last) or self.last_block_hash()
        current = self.source.headers([last], fresh=True).get(last)
        if current is not None and (not last_hash or current.hash == last_hash):
            return 0, None
        numbers = sorted(stored, reverse=True)
        chain = self.source.headers(numbers, fresh=True)
        ancestor = next((n for n in numbers if n in chain and chain[n].hash == stored[n]), None)
        self.source.forget_headers(above=ancestor if ancestor is not None else -1)
        if ancestor is None:
            reason = "a reorganisation replaced every block the index remembers"
            log.warning("rebuilding index %s: %s", self.path, reason)
            self.reset(ident)
            return last - ident.deploy_block + 1, reason
        removed = self.rollback_to(ancestor)
        log.warning("reorganisation: rolled the index back from block %d to %d (%d events)", last, ancestor, removed)
        return last - ancestor, None

    def rebuild(self) -> SyncReport:
        """Drop the index and read everything again from the deploy block."""
        with self._sync_lock, self._file_lock:
            self.reset(self.chain_identity())
        report = self.sync()
        report.rebuilt = report.rebuilt or "requested"
        return report

    # -- following

    def run_forever(self, interval: float = 2.0) -> None:
        """Sync every ``interval`` seconds until ``stop()``; errors are logged, kept in
        ``last_error`` and retried with backoff (up to a minute)."""
        self._stop.clear()
        failures = 0
        while not self._stop.is_set():
            try:
                self.sync()
                failures = 0
                delay = interval
            except Exception as exc:
                failures += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                delay = min(60.0, interval * (2 ** min(failures, 6)))
                log.warning("index sync failed (%d in a row): %s; retrying in %.1f s", failures, exc, delay)
            self._stop.wait(delay)

    def start(self, interval: float = 2.0) -> None:
        """Follow the chain in a background thread."""
        if self.running:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self.run_forever, args=(interval,), name="ledger-indexer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the background thread (after the chunk it is writing)."""
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def close(self) -> None:
        self.stop()
        super().close()

    # -- state

    def lag(self) -> int:
        """Blocks between the chain head and the last indexed block."""
        return self.source.head() - self.last_block

    def status(self) -> JSON:
        """Where the index stands, for health checks."""
        m = self.meta()
        last = int(m.get("last_block", -1))
        out: JSON = {
            "path": str(self.path),
            "chain_id": int(m["chain_id"]) if "chain_id" in m else None,
            "deploy_block": int(m["deploy_block"]) if "deploy_block" in m else None,
            "addresses": json.loads(m["addresses"]) if "addresses" in m else {},
            "last_block": last,
            "last_block_hash": m.get("last_block_hash") or None,
            "last_block_timestamp": int(m["last_block_timestamp"]) if m.get("last_block_timestamp") else None,
            "confirmations": self.confirmations,
            "running": self.running,
            "last_sync_at": self.last_sync_at,
            "last_error": self.last_error,
            "last_report": self.last_report.to_json() if self.last_report else None,
            "head": None,
            "safe_head": None,
            "lag": None,
        }
        try:
            head = self.source.head()
            out.update(head=head, safe_head=self.source.safe_head(head), lag=head - last)
        except LedgerError as exc:
            out["node_error"] = str(exc)
        return out
