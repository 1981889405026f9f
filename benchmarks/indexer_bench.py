"""Benchmark of the event indexer: catch-up throughput and audit-query latency at scale.

Synthesises N ledger events with a realistic mix (uses, consents, access requests and decisions,
relayed forward executions, dataset registrations with lineage, roles, suspensions) and writes them
straight into an index through ``IndexStore.ingest`` (the indexer's own write path, bypassing the
chain), in chunks like a sync would. Then measures the latency of each audit query with random
keys (p50 / p95 / p99 / max), and the decoding rate of raw logs (``EventDecoder``).

    python benchmarks/indexer_bench.py                  # 1,000,000 events (about a minute or two)
    python benchmarks/indexer_bench.py --events 50000   # quick
    python benchmarks/indexer_bench.py --json out.json --keep /tmp/index.sqlite3
    python benchmarks/indexer_bench.py --events 10000 --chain 20000   # plus catch-up from a real anvil
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from indexer_measures import bench_chain, bench_decode, measure
from indexer_synth import CONTRACTS, synthesise

from ledger.history.index import IndexIdentity, IndexStore


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=1_000_000, help="synthetic events (at least 10,000)")
    ap.add_argument("--blocks-per-chunk", type=int, default=2000, help="blocks per ingest transaction (sync chunk)")
    ap.add_argument("--repeat", type=int, default=300, help="calls per query (random keys)")
    ap.add_argument("--decode", type=int, default=200_000, help="raw logs to decode (0: skip)")
    ap.add_argument("--keep", type=Path, help="write the index here and keep it")
    ap.add_argument("--json", type=Path, help="write the results as JSON")
    ap.add_argument("--chain", type=int, default=0, help="also sync this many uses from a real anvil (e.g. 20000)")
    args = ap.parse_args()
    args.events = max(args.events, 10_000)

    tmp = None
    if args.keep:
        path = args.keep
        if path.exists():
            path.unlink()
    else:
        tmp = tempfile.TemporaryDirectory()
        path = Path(tmp.name) / "index.sqlite3"
    store = IndexStore(path)
    store.reset(IndexIdentity(chain_id=31337, deploy_block=100, addresses=CONTRACTS))

    # synthesise first (not timed as ingest), then ingest chunk by chunk like a sync
    t = time.perf_counter()
    blocks = list(synthesise(args.events))
    synth_s = time.perf_counter() - t
    total = sum(len(b) for b in blocks)
    n_blocks = len(blocks)
    t = time.perf_counter()
    first = 100
    for i in range(0, len(blocks), args.blocks_per_chunk):
        part = blocks[i : i + args.blocks_per_chunk]
        evs = [e for b in part for e in b]
        last = first + len(part) - 1
        store.ingest(
            evs,
            from_block=first,
            to_block=last,
            block_hashes={last: "0x" + f"{last:064x}"},
            end_timestamp=1_700_000_000 + 2 * last,
        )
        first = last + 1
    ingest_s = time.perf_counter() - t
    del blocks  # a million live event objects would make every garbage collection a pause
    gc.collect()
    store._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db_mb = path.stat().st_size / 2**20

    # keys for the queries
    rng = random.Random(3)
    con = store._reader()
    datasets = [r[0] for r in con.execute("SELECT root FROM datasets")]
    busy = [r[0] for r in con.execute("SELECT dataset FROM uses GROUP BY dataset ORDER BY COUNT(*) DESC LIMIT 20")]
    users = [r[0] for r in con.execute("SELECT account FROM roles WHERE role = 'user'")]
    subjects = [r[0] for r in con.execute("SELECT subject FROM consents LIMIT 20000")]
    withdrawers = [
        r[0] for r in con.execute("SELECT subject FROM consent_history WHERE action = 'withdrawn' LIMIT 5000")
    ]
    consent_ids = [r[0] for r in con.execute("SELECT consent_id FROM consents LIMIT 20000")]
    parents = [r[0] for r in con.execute("SELECT parent FROM lineage GROUP BY parent LIMIT 20000")]
    signers = [r for r in con.execute("SELECT signer, nonce FROM forwards LIMIT 20000")]
    cursors = {root: _cursor(store, root) for root in busy}
    last_block = store.last_block
    mid_block = (100 + last_block) // 2

    queries: dict[str, Callable[[], Any]] = {
        "dataset_trail (random, 100)": lambda: store.dataset_trail(rng.choice(datasets), limit=100),
        "dataset_trail (busiest, 100)": lambda: store.dataset_trail(rng.choice(busy), limit=100),
        "dataset_trail (busiest, page 5)": lambda: store.dataset_trail(
            (root := rng.choice(busy)), after=cursors[root], limit=100
        ),
        "user_trail (100)": lambda: store.user_trail(rng.choice(users), limit=100),
        "subject_consents": lambda: store.subject_consents(rng.choice(subjects)),
        "consent_history": lambda: store.consent_history(rng.choice(consent_ids)),
        "consent_events_until (page of 100)": lambda: store.consent_events_until(
            rng.randint(100, last_block), limit=100
        ),
        "consent_events_until (page of 1000)": lambda: store.consent_events_until(
            rng.randint(100, last_block), limit=1000
        ),
        "consent_events_until (2 subjects)": lambda: store.consent_events_until(
            mid_block, subjects=rng.sample(subjects, 2), limit=None
        ),
        "withdrawals_of": lambda: store.withdrawals_of(rng.choice(withdrawers)),
        "approvals_for (100)": lambda: store.approvals_for(rng.choice(datasets), limit=100),
        "approvals_for (busiest, from mid)": lambda: store.approvals_for(rng.choice(busy), mid_block, limit=100),
        "uses_of (busiest, 100)": lambda: store.uses_of(rng.choice(busy), limit=100),
        "uses_of (from mid, 100)": lambda: store.uses_of(rng.choice(datasets), mid_block, limit=100),
        "children_of": lambda: store.children_of(rng.choice(parents)),
        "descendants_of (busiest)": lambda: store.descendants_of(rng.choice(busy), limit=1000),
        "descendants_of (random)": lambda: store.descendants_of(rng.choice(parents), limit=1000),
        "relay_status": lambda: store.relay_status(*rng.choice(signers)),
        "dataset": lambda: store.dataset(rng.choice(datasets)),
        "events by name (100)": lambda: store.events(
            event="ConsentWithdrawn", after=rng.randint(0, 1 << 40), limit=100
        ),
    }
    latencies = {name: measure(fn, args.repeat) for name, fn in queries.items()}
    t = time.perf_counter()
    stats = store.stats()
    stats_ms = (time.perf_counter() - t) * 1000
    decode_rate = bench_decode(args.decode) if args.decode else None
    chain = bench_chain(args.chain, args.blocks_per_chunk) if args.chain else {}

    result = {
        "events": total,
        "blocks": n_blocks,
        "synthesis_s": round(synth_s, 2),
        "ingest_s": round(ingest_s, 2),
        "ingest_events_per_s": round(total / ingest_s),
        "decode_logs_per_s": round(decode_rate) if decode_rate else None,
        "db_mb": round(db_mb, 1),
        "stats_ms": round(stats_ms, 1),
        "rows": stats,
        "queries": latencies,
        "worst_p99_ms": max(v["p99_ms"] for v in latencies.values()),
        **chain,
    }
    print(f"{total:,} events in {n_blocks:,} blocks; DB {db_mb:,.0f} MiB")
    print(f"ingest: {ingest_s:.1f} s = {total / ingest_s:,.0f} events/s (synthesis {synth_s:.1f} s, not counted)")
    if decode_rate:
        print(f"decode: {decode_rate:,.0f} raw logs/s")
    if chain:
        print(
            f"catch-up from anvil: {chain['chain_events']:,} events in {chain['chain_blocks']:,} blocks synced in "
            f"{chain['chain_sync_s']} s = {chain['chain_sync_events_per_s']:,} events/s"
        )
    print(f"stats(): {stats_ms:.0f} ms")
    print(f"{'query':38} {'p50':>7} {'p95':>7} {'p99':>7} {'max':>7} {'cpu p99':>8}  (ms, {args.repeat} calls each)")
    for name, v in latencies.items():
        print(
            f"{name:38} {v['p50_ms']:7.2f} {v['p95_ms']:7.2f} {v['p99_ms']:7.2f} {v['max_ms']:7.2f}"
            f" {v['cpu_p99_ms']:8.2f}"
        )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    store.close()
    if tmp is not None:
        tmp.cleanup()


def _cursor(store: IndexStore, root: str) -> int | None:
    """A cursor 400 events into a dataset's trail (a later page)."""
    cursor = store.dataset_trail(root, limit=400)["next_cursor"]
    return int(cursor) if cursor is not None else None


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
