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
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ledger.core.records import ZERO_ADDRESS
from ledger.history.events import LedgerEvent, checksum
from ledger.history.index import ROLE_NAMES, IndexIdentity, IndexStore

CONTRACTS = {
    "LedgerForwarder": "0x5FbDB2315678afecb367f032d93F642f64180aa3",
    "LedgerRoles": "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512",
    "DatasetRegistry": "0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0",
    "ConsentRegistry": "0xCf7Ed3AccA5a467e9e704C703E8D87F634fB0Fc9",
    "AccessRegistry": "0xDc64a140Aa3E981100a9becA4E685f962f0cF6C9",
    "UsageRegistry": "0x5FC8d32690cc91D4c39d9d3abcBD16989F875707",
}
ROLE_IDS = {name: role_id for role_id, name in ROLE_NAMES.items()}
HMB, GRU, DS = 1 << 2, 1 << 1, 1 << 3


@dataclass
class World:
    """What has happened so far, to draw consistent references from."""

    rng: random.Random
    holders: list[str]
    users: list[str]
    reviewers: list[str]
    auditors: list[str]
    subjects: list[str]
    datasets: list[str] = field(default_factory=list)
    pending: list[tuple[int, str, str]] = field(default_factory=list)  # request id, dataset, user
    approved: list[tuple[int, str, str]] = field(default_factory=list)
    consents: list[tuple[str, str]] = field(default_factory=list)  # consent id, subject (given/renewed)
    next_request: int = 1
    nonces: dict[str, int] = field(default_factory=dict)

    def h32(self) -> str:
        return f"0x{self.rng.getrandbits(256):064x}"

    def popular(self, items: list[Any]) -> Any:
        """Zipf-like choice: recent and early items are hot, the tail is long."""
        n = len(items)
        i = min(n - 1, int(n * self.rng.random() ** 3))
        return items[i]


def addresses(rng: random.Random, n: int) -> list[str]:
    return [checksum(f"0x{rng.getrandbits(160):040x}") for _ in range(n)]


def synthesise(n_events: int, seed: int = 7, per_block: int = 10) -> Iterator[list[LedgerEvent]]:
    """Blocks of events (lists), ``per_block`` events on average each, ``n_events`` in total."""
    rng = random.Random(seed)
    w = World(
        rng=rng,
        holders=addresses(rng, 200),
        users=addresses(rng, 5000),
        reviewers=addresses(rng, 50),
        auditors=addresses(rng, 10),
        subjects=addresses(rng, max(1000, n_events // 10)),
    )
    block = 100
    made = 0
    t0 = 1_700_000_000

    def ev(contract: str, name: str, args: dict[str, Any], log_index: int, tx: str) -> LedgerEvent:
        return LedgerEvent(contract, name, block, t0 + 2 * block, tx, log_index, args, 0, CONTRACTS[contract])

    # roles and first datasets
    first: list[LedgerEvent] = []
    li = 0
    for role, people in (("holder", w.holders), ("user", w.users), ("reviewer", w.reviewers), ("auditor", w.auditors)):
        for p in people:
            first.append(
                ev(
                    "LedgerRoles",
                    "RoleGranted",
                    {"role": ROLE_IDS[role], "account": p, "sender": ZERO_ADDRESS},
                    li,
                    w.h32(),
                )
            )
            li += 1
    for _ in range(100):
        root = w.h32()
        w.datasets.append(root)
        first.append(
            ev("DatasetRegistry", "DatasetRegistered", _registered(w, root, rng.choice(w.holders), []), li, w.h32())
        )
        li += 1
    made += len(first)
    yield first
    block += 1

    while made < n_events:
        events: list[LedgerEvent] = []
        li = 0
        for _ in range(rng.randint(per_block // 2, per_block * 3 // 2)):
            tx = w.h32()
            r = rng.random()
            signer = None
            if r < 0.45:  # a use
                if w.approved and rng.random() < 0.7:
                    rid, ds, user = w.popular(w.approved)
                else:
                    rid, ds, user = 0, w.popular(w.datasets), rng.choice(w.users)
                args = {
                    "dataset": ds,
                    "user": user,
                    "requestId": rid,
                    "purpose": HMB,
                    "diseaseCode": 0,
                    "resultDigest": w.h32(),
                    "useNumber": rng.randint(1, 10_000),
                }
                events.append(ev("UsageRegistry", "UseRecorded", args, li, tx))
                signer = user
            elif r < 0.62:  # consent given
                subject = rng.choice(w.subjects)
                cid = w.h32()
                holder_scope = rng.random() < 0.7
                scope = (
                    ("0x" + "00" * 12 + rng.choice(w.holders)[2:].lower()) if holder_scope else w.popular(w.datasets)
                )
                args = {
                    "consentId": cid,
                    "subject": subject,
                    "scope": scope,
                    "scopeKind": 0 if holder_scope else 1,
                    "grantee": ZERO_ADDRESS if rng.random() < 0.8 else rng.choice(w.users),
                    "purposes": rng.choice((HMB, GRU, DS)),
                    "diseaseCode": 0,
                    "expiry": t0 + 10**8,
                    "actor": subject,
                }
                if args["purposes"] == DS:
                    args["diseaseCode"] = 5148
                w.consents.append((cid, subject))
                events.append(ev("ConsentRegistry", "ConsentGiven", args, li, tx))
            elif r < 0.655 and w.consents:  # withdrawn
                cid, subject = w.consents.pop(rng.randrange(len(w.consents)))
                events.append(
                    ev(
                        "ConsentRegistry",
                        "ConsentWithdrawn",
                        {"consentId": cid, "subject": subject, "actor": subject},
                        li,
                        tx,
                    )
                )
            elif r < 0.67 and w.consents:  # renewed
                cid, subject = rng.choice(w.consents)
                args = {"consentId": cid, "subject": subject, "expiry": t0 + 2 * 10**8, "actor": subject}
                events.append(ev("ConsentRegistry", "ConsentRenewed", args, li, tx))
            elif r < 0.75:  # access requested
                ds, user = w.popular(w.datasets), rng.choice(w.users)
                rid = w.next_request
                w.next_request += 1
                w.pending.append((rid, ds, user))
                args = {
                    "requestId": rid,
                    "dataset": ds,
                    "requester": user,
                    "purpose": HMB,
                    "diseaseCode": 0,
                    "protocolDigest": w.h32(),
                }
                events.append(ev("AccessRegistry", "AccessRequested", args, li, tx))
                signer = user
            elif r < 0.82 and w.pending:  # decided
                req = w.pending.pop(rng.randrange(len(w.pending)))
                reviewer = rng.choice(w.reviewers)
                if rng.random() < 0.85:
                    w.approved.append(req)
                    args = {
                        "requestId": req[0],
                        "reviewer": reviewer,
                        "conditionsDigest": w.h32(),
                        "expiry": t0 + 10**8,
                    }
                    events.append(ev("AccessRegistry", "AccessApproved", args, li, tx))
                else:
                    args = {"requestId": req[0], "reviewer": reviewer, "reasonDigest": w.h32()}
                    events.append(ev("AccessRegistry", "AccessDenied", args, li, tx))
                signer = reviewer
            elif r < 0.83 and w.approved:  # revoked
                req = w.approved.pop(rng.randrange(len(w.approved)))
                args = {"requestId": req[0], "reviewer": rng.choice(w.reviewers), "reasonDigest": w.h32()}
                events.append(ev("AccessRegistry", "AccessRevoked", args, li, tx))
            elif r < 0.86:  # dataset registered, derived from 0-3 parents
                root = w.h32()
                parents = sorted({w.popular(w.datasets) for _ in range(rng.choice((0, 1, 1, 2, 3)))})
                holder = rng.choice(w.holders)
                for p in parents:
                    events.append(ev("DatasetRegistry", "DerivedFrom", {"child": root, "parent": p}, li, tx))
                    li += 1
                events.append(ev("DatasetRegistry", "DatasetRegistered", _registered(w, root, holder, parents), li, tx))
                w.datasets.append(root)
                signer = holder
            elif r < 0.865:  # suspension circuit breaker
                ds, auditor = w.popular(w.datasets), rng.choice(w.auditors)
                events.append(
                    ev(
                        "AccessRegistry",
                        "UserSuspendedBy",
                        {"user": rng.choice(w.users), "auditor": auditor, "reasonDigest": w.h32()},
                        li,
                        tx,
                    )
                )
            elif r < 0.87:
                ds = w.popular(w.datasets)
                events.append(
                    ev("DatasetRegistry", "SharingChanged", {"contentRoot": ds, "tier": 2, "embargoEnd": 0}, li, tx)
                )
            elif r < 0.875:
                subject, delegate = rng.choice(w.subjects), rng.choice(w.subjects)
                events.append(
                    ev(
                        "ConsentRegistry",
                        "DelegateAppointed",
                        {"subject": subject, "delegate": delegate, "expiry": t0 + 10**8},
                        li,
                        tx,
                    )
                )
            else:  # nothing domain-level: a relayed call that reverted
                signer = rng.choice(w.users)
            li += 1
            if signer is not None or r >= 0.875:
                who = signer or rng.choice(w.users)
                nonce = w.nonces.get(who, 0)
                w.nonces[who] = nonce + 1
                args = {"signer": who, "nonce": nonce, "success": signer is not None}
                events.append(ev("LedgerForwarder", "ExecutedForwardRequest", args, li, tx))
                li += 1
        made += len(events)
        yield events
        block += 1


def _registered(w: World, root: str, holder: str, parents: list[str]) -> dict[str, Any]:
    return {
        "contentRoot": root,
        "holder": holder,
        "metadataDigest": w.h32(),
        "activityDigest": w.h32(),
        "subjectRoot": w.h32(),
        "parents": parents,
        "tier": 2,
        "classification": 0x0101,
        "embargoEnd": 0,
    }


# ---------------------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    s = sorted(values)
    k = min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))
    return s[k]


def measure(fn: Callable[[], Any], repeat: int) -> dict[str, float]:
    """Wall-clock percentiles, and the p99 of the thread's CPU time (on a shared machine the wall
    clock also counts time the process waited for a core)."""
    fn()  # warm the statement cache
    wall, cpu = [], []
    for _ in range(repeat):
        t, c = time.perf_counter(), time.thread_time()
        fn()
        cpu.append((time.thread_time() - c) * 1000)
        wall.append((time.perf_counter() - t) * 1000)
    return {
        "p50_ms": round(statistics.median(wall), 3),
        "p95_ms": round(percentile(wall, 95), 3),
        "p99_ms": round(percentile(wall, 99), 3),
        "max_ms": round(max(wall), 3),
        "cpu_p99_ms": round(percentile(cpu, 99), 3),
    }


def bench_decode(n: int) -> float:
    """Raw logs per second through EventDecoder (topic lookup + hex slicing)."""
    from eth_abi.abi import encode

    from ledger.chain.client import load_artifacts
    from ledger.core.config import load_settings
    from ledger.history.events import EventDecoder

    arts = load_artifacts(load_settings(env={}).artifacts_dir)
    dec = EventDecoder(arts, CONTRACTS)
    specs = {(s.contract, s.name): s for s in dec.specs()}
    samples = []
    for events in synthesise(max(n // 5, 2000), seed=11):
        for e in events:
            spec = specs[(e.contract, e.event)]
            topics = [spec.topic0]
            for name, t in spec.indexed:
                v = e.args[name]
                topics.append("0x" + encode([t], [bytes.fromhex(v[2:]) if t.startswith("bytes") else v]).hex())
            data_vals = [
                [bytes.fromhex(x[2:]) for x in e.args[name]]
                if t == "bytes32[]"
                else bytes.fromhex(e.args[name][2:])
                if t.startswith("bytes")
                else e.args[name]
                for name, t in spec.data
            ]
            data = "0x" + encode([t for _, t in spec.data], data_vals).hex()
            samples.append(
                {
                    "address": CONTRACTS[e.contract].lower(),
                    "topics": topics,
                    "data": data,
                    "blockNumber": hex(e.block_number),
                    "transactionHash": e.tx_hash,
                    "logIndex": hex(e.log_index),
                    "transactionIndex": "0x0",
                    "blockHash": "0x" + "ab" * 32,
                    "blockTimestamp": hex(e.block_timestamp),
                }
            )
    reps = max(1, n // len(samples))
    start = time.perf_counter()
    for _ in range(reps):
        for raw in samples:
            dec.decode(raw)
    dt = time.perf_counter() - start
    check = dec.decode(samples[0])
    assert check is not None
    return reps * len(samples) / dt


def bench_chain(n_uses: int, chunk_blocks: int) -> dict[str, Any]:
    """End-to-end catch-up from a real anvil: ``n_uses`` UseRecorded events (direct transactions,
    many per block), then one ``Indexer.sync`` from the deploy block: eth_getLogs in chunks,
    decoding, timestamps, SQLite."""
    import socket
    import subprocess
    import urllib.request

    from eth_account import Account

    from ledger.chain.client import ChainClient
    from ledger.chain.deployment import ensure_deployed
    from ledger.core.config import PROJECT_ROOT, load_settings
    from ledger.history.index import Indexer
    from ledger.services.ledger import Ledger

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    anvil = PROJECT_ROOT / "node_modules" / ".bin" / "anvil"
    proc = subprocess.Popen(
        [str(anvil), "--port", str(port), "--silent", "--gas-limit", "3000000000"], stdout=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                body = b'{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}'
                req = urllib.request.Request(url, body, {"Content-Type": "application/json"})
                urllib.request.urlopen(req, timeout=1).read()
                break
            except OSError:
                time.sleep(0.1)
        with tempfile.TemporaryDirectory() as tmp:
            settings = load_settings(env={}, rpc_url=url, data_dir=tmp, manage_nodes=False)
            ensure_deployed(settings)
            client = ChainClient(settings)
            ledger = Ledger(settings, client)
            admin = Account.from_key(settings.relayer_private_key())
            holder = Account.create()
            ledger.grant_role(admin, "holder", holder.address)
            client.fund([holder.address], 10**21)
            root = os.urandom(32)
            ledger.write(
                holder,
                "DatasetRegistry",
                "register",
                root,
                os.urandom(32),
                [],
                os.urandom(32),
                0,
                0x0101,
                0,
                os.urandom(32),
            )
            w3 = client.w3
            w3.provider.make_request("evm_setAutomine", [False])  # type: ignore[arg-type]
            usage = client.contract("UsageRegistry")
            params: Any = {"from": holder.address, "chainId": client.chain_id, "gas": 120_000, "nonce": 0}
            params.update(client.fees())
            base = usage.functions.recordUse(root, 0, HMB, 0, b"\x00" * 32).build_transaction(params)
            nonce = w3.eth.get_transaction_count(holder.address)
            t = time.perf_counter()
            for i in range(n_uses):
                tx = {
                    **base,
                    "nonce": nonce + i,
                    "data": usage.encode_abi("recordUse", args=[root, 0, HMB, 0, i.to_bytes(32, "big")]),
                }
                w3.eth.send_raw_transaction(holder.sign_transaction(tx).raw_transaction)
                if i % 500 == 499:
                    w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
            w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
            w3.provider.make_request("evm_setAutomine", [True])  # type: ignore[arg-type]
            send_s = time.perf_counter() - t
            idx = Indexer(settings, client, chunk_blocks=chunk_blocks)
            report = idx.sync()
            uses = len(idx.uses_of(root, limit=None)["items"])
            idx.close()
    finally:
        proc.terminate()
        proc.wait(10)
    assert uses == n_uses, (uses, n_uses)
    return {
        "chain_events": report.events,
        "chain_blocks": report.blocks,
        "chain_sync_s": round(report.seconds, 2),
        "chain_sync_events_per_s": round(report.events_per_second),
        "chain_fill_s": round(send_s, 1),
    }


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
