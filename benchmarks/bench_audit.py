"""Scenario 5: audit queries over a large index, and indexer catch-up.

The large index is synthesised by benchmarks/indexer_synth.py's generator (a realistic mix of
ledger events: uses, consents, access requests and decisions, relayed forward executions, dataset
registrations with lineage) and written through ``IndexStore.ingest``, the indexer's own write
path, in chunks of 2,000 blocks like a sync. Catch-up from a real chain is measured too: an ``Indexer`` in its own
process indexes this run's chain from the deploy block."""

from __future__ import annotations

import json
import random
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench_common import ROOT, Rpc, RssSampler, Stack, latency_ms, log, ratio, summary
from indexer_synth import CONTRACTS, synthesise

from ledger.history.index import IndexIdentity, IndexStore

T0 = 1_700_000_000


def build_index(path: Path, n_events: int, chunk_blocks: int = 2000) -> dict[str, Any]:
    """Synthesise and ingest; only the ingest calls are timed (catch-up rate of the write path)."""
    store = IndexStore(path)
    store.reset(IndexIdentity(chain_id=31337, deploy_block=100, addresses=CONTRACTS))
    ingest_s = 0.0
    synth_t = time.perf_counter()
    total = 0
    pending: list[tuple[int, list[Any]]] = []

    def flush() -> None:
        nonlocal ingest_s, total
        evs = [e for _, b in pending for e in b]
        first, last = pending[0][0], pending[-1][0]
        t = time.perf_counter()
        total += store.ingest(
            evs, from_block=first, to_block=last, block_hashes={last: f"0x{last:064x}"}, end_timestamp=T0 + 2 * last
        )
        ingest_s += time.perf_counter() - t
        pending.clear()

    for block, events in enumerate(synthesise(n_events), start=100):
        pending.append((block, events))
        if len(pending) >= chunk_blocks:
            flush()
    if pending:
        flush()
    wall = time.perf_counter() - synth_t
    store.close()
    return {
        "events": total,
        "ingest_s": ingest_s,
        "synthesis_s": wall - ingest_s,
        "db_mib": round(sum(p.stat().st_size for p in path.parent.glob(path.name + "*")) / 2**20, 1),
    }


def _scan(con: sqlite3.Connection, key: str) -> list[dict[str, Any]]:
    """The baseline: answer 'every event that names this key' by scanning the generic events table
    and its JSON arguments, without the normalised tables and their indexes."""
    rows = con.execute(
        "SELECT seq, block, log_index, tx_index, tx_hash, timestamp, contract, event, args FROM events "
        "WHERE instr(args, ?) > 0 ORDER BY seq",
        (key,),
    ).fetchall()
    return [{"seq": r[0], "block_number": r[1], "event": r[7], "args": json.loads(r[8])} for r in rows]


def audit_queries(path: Path, cfg: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    store = IndexStore(path)
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    datasets = [r[0] for r in con.execute("SELECT root FROM datasets")]
    subjects = [r[0] for r in con.execute("SELECT DISTINCT subject FROM consents LIMIT 50000")]
    busiest = [
        r[0]
        for r in con.execute(
            "SELECT entity FROM touches WHERE entity LIKE '0x%' AND length(entity) = 66 "
            "GROUP BY entity ORDER BY COUNT(*) DESC LIMIT 10"
        )
    ]
    q = cfg["audit_queries"]
    kinds: dict[str, Callable[[], dict[str, Any]]] = {
        "dataset_full_trail": lambda: store.dataset_trail(rng.choice(datasets), limit=None),
        "subject_full_trail": lambda: store.user_trail(rng.choice(subjects), limit=None),
        "busiest_dataset_full_trail": lambda: store.dataset_trail(rng.choice(busiest), limit=None),
        "busiest_dataset_first_page_500": lambda: store.dataset_trail(rng.choice(busiest), limit=500),
    }
    out: dict[str, Any] = {}
    for name, fn in kinds.items():
        fn()
        lat = []
        items = 0
        for _ in range(q if not name.startswith("busiest_dataset_full") else max(10, q // 10)):
            t = time.perf_counter()
            page = fn()
            lat.append(time.perf_counter() - t)
            items += len(page["items"])
        out[name] = {**latency_ms(lat), "mean_items": round(items / len(lat), 1)}
    # baseline: the same questions answered by a scan of the generic events table
    scan_lat = []
    agree = []
    for i in range(cfg["scan_queries"]):
        if i % 2 == 0:
            key = rng.choice(datasets)
            expected = len(store.dataset_trail(key, limit=None)["items"])
        else:
            key = rng.choice(subjects)
            expected = len(store.user_trail(key, limit=None)["items"])
        t = time.perf_counter()
        found = _scan(con, key)
        scan_lat.append(time.perf_counter() - t)
        agree.append((expected, len(found)))
    out["scan"] = {**latency_ms(scan_lat), "trail_vs_scan_items": agree}
    con.close()
    store.close()
    return out


INDEXER_SCRIPT = r"""
import json, sys, time
from ledger.chain.client import ChainClient, DeploymentRecord
from ledger.core.config import load_settings
from ledger.history.index import Indexer

settings = load_settings()
# this run's own deployment record, taken as it is (a rebuild of the contracts elsewhere while the
# run goes on must not stop the measurement)
record = DeploymentRecord.load(settings.deployment_path)
indexer = Indexer(settings, ChainClient(settings, record=record, check_record=False), path=sys.argv[1])
t = time.perf_counter()
report = indexer.sync()
seconds = time.perf_counter() - t
indexer.close()
with open("/proc/self/status") as handle:  # this program's own peak RSS
    vmhwm = next(int(line.split()[1]) for line in handle if line.startswith("VmHWM:"))
print(json.dumps({"events": report.events, "blocks": report.blocks, "seconds": seconds, "vmhwm_mib": vmhwm / 1024}))
"""


def chain_catch_up(stack: Stack, workdir: Path, run: int) -> dict[str, Any]:
    """An Indexer in its own process indexes this run's chain from the deploy block; beside it the
    baseline: the same range fetched with raw eth_getLogs (no decoding, no writing)."""
    path = workdir / f"catch-up-{run}.sqlite3"
    proc = subprocess.Popen(
        [sys.executable, "-c", INDEXER_SCRIPT, str(path)],
        cwd=str(ROOT),
        env=stack.service_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    with RssSampler({"indexer": proc.pid}, interval=0.05) as sampler:
        out, err = proc.communicate(timeout=900)
    if proc.returncode != 0:
        raise RuntimeError(f"the catch-up indexer failed: {err.decode(errors='replace')[-2000:]}")
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    result["rss_peak_mib"] = max(sampler.peak_mib("indexer"), round(result["vmhwm_mib"], 1))
    rpc = Rpc(stack.anvil.url)
    head = int(rpc.call("eth_blockNumber"), 16)
    addresses = list(stack.record.addresses.values())
    t = time.perf_counter()
    logs = 0
    for start in range(stack.record.deploy_block, head + 1, 2000):
        logs += len(
            rpc.call(
                "eth_getLogs", {"fromBlock": hex(start), "toBlock": hex(min(head, start + 1999)), "address": addresses}
            )
        )
    raw_s = time.perf_counter() - t
    rpc.close()
    result["raw_logs"] = logs
    result["raw_get_logs_s"] = raw_s
    for p in workdir.glob(path.name + "*"):
        p.unlink()
    return result


def scenario_audit(stack: Stack, workdir: Path, cfg: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    repeats = cfg["repeats"]
    path = workdir / "audit-index.sqlite3"
    t = time.perf_counter()
    built = build_index(path, cfg["events"])
    log(
        f"scenario 5: {built['events']:,} events synthesised and ingested ({built['ingest_s']:.1f} s ingest, "
        f"{built['db_mib']} MiB) in {time.perf_counter() - t:.1f} s"
    )
    runs = []
    for r in range(repeats):
        res = audit_queries(path, cfg, rng)
        runs.append(res)
        log(
            f"scenario 5 {r + 1}/{repeats}: dataset trail p99 {res['dataset_full_trail']['p99']:.1f} ms, "
            f"subject trail p99 {res['subject_full_trail']['p99']:.1f} ms, "
            f"busiest {res['busiest_dataset_full_trail']['p99']:.0f} ms, scan p50 {res['scan']['p50']:.0f} ms"
        )
    catch = []
    for r in range(repeats):
        c = chain_catch_up(stack, workdir, r)
        catch.append(c)
        log(
            f"scenario 5 chain catch-up {r + 1}/{repeats}: {c['events']} events in {c['seconds']:.2f} s, "
            f"raw eth_getLogs {c['raw_logs']} logs in {c['raw_get_logs_s']:.2f} s, RSS {c['rss_peak_mib']} MiB"
        )
    for p in path.parent.glob(path.name + "*"):
        p.unlink()

    def lat(name: str, key: str) -> dict[str, Any]:
        return summary([r[name][key] for r in runs], "ms", 2)

    worst_p99 = [max(r["dataset_full_trail"]["p99"], r["subject_full_trail"]["p99"]) for r in runs]
    p99 = summary(worst_p99, "ms", 2)
    scan_p50 = lat("scan", "p50")
    chain_rate = summary([c["events"] / c["seconds"] for c in catch], "events/s", 0)
    raw_rate = summary([c["raw_logs"] / c["raw_get_logs_s"] for c in catch], "logs/s", 0)
    return {
        "title": "Audit query (one dataset's or one subject's full trail) over a large index; indexer catch-up",
        "params": {
            "indexed_events": built["events"],
            "index_db_mib": built["db_mib"],
            "queries_per_kind": cfg["audit_queries"],
            "scan_queries": cfg["scan_queries"],
            "chain_events_caught_up": catch[0]["events"],
            "catch_up_events_equal_raw_logs": all(c["events"] == c["raw_logs"] for c in catch),
        },
        "product": {
            "full_trail_p99_ms": p99,
            "dataset_full_trail_p50_ms": lat("dataset_full_trail", "p50"),
            "dataset_full_trail_p99_ms": lat("dataset_full_trail", "p99"),
            "subject_full_trail_p50_ms": lat("subject_full_trail", "p50"),
            "subject_full_trail_p99_ms": lat("subject_full_trail", "p99"),
            "busiest_dataset_full_trail_p99_ms": lat("busiest_dataset_full_trail", "p99"),
            "busiest_dataset_first_page_500_p99_ms": lat("busiest_dataset_first_page_500", "p99"),
            "busiest_dataset_mean_items": summary(
                [r["busiest_dataset_full_trail"]["mean_items"] for r in runs], "events", 0
            ),
            "synthetic_ingest_events_per_s": summary([built["events"] / built["ingest_s"]], "events/s", 0),
            "chain_catch_up_events_per_s": chain_rate,
            "catch_up_indexer_rss_peak_mib": summary([c["rss_peak_mib"] for c in catch], "MiB", 1),
        },
        "baseline": {
            "name": "full scan of the generic events table (JSON args, no normalised tables); "
            "for catch-up: raw eth_getLogs over the same range, nothing decoded or written",
            "scan_p50_ms": scan_p50,
            "scan_p99_ms": lat("scan", "p99"),
            "raw_get_logs_per_s": raw_rate,
        },
        "ratio": {
            "scan_p50_over_trail_p99": ratio(scan_p50["median"], p99["median"]),
            "catch_up_over_raw_get_logs": ratio(chain_rate["median"], raw_rate["median"]),
        },
        "targets": {"full_trail_p99_ms <= 50": p99["median"] <= 50},
        "runs": {"queries": runs, "chain_catch_up": catch, "build": built},
    }
