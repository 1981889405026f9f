"""The benchmark harness: every scenario against the real stack, each beside a baseline measured
in the same run, repeated; writes results.json and RESULTS.md.

    bash scripts/bench.sh            # full sizes (about a quarter of an hour on two cores)
    bash scripts/bench.sh --quick    # small sizes, under two minutes

The harness starts its own anvil and js-ipfs on free ports in a temporary directory (through
ledger.nodes; the ports of a developer's ./run.sh are never touched), deploys the contracts,
starts the service as its own uvicorn process pointed at those nodes (so its memory can be
sampled), and runs:

1. relayed consent grants, client-signed (pre-signed before the clock), POSTed to the service
   by many client threads, to mined and indexed; baseline: one transaction per grant;
2. consent checks through the service; baseline: the same check as a direct eth_call;
3. dataset registration with metadata pinned to IPFS, batched; baseline: sequential;
4. lineage verification of a DAG (a chain plus fan-in); baseline: a naive per-node walk;
5. audit trails over a large synthetic index, and indexer catch-up from this run's chain;
   baseline: a scan of the generic events table, and raw eth_getLogs;
6. the content root of a large folder; baseline: sha256sum over the same files;
7. the memory of the service, anvil and js-ipfs under scenario 1; baseline: the same idle.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import bench_audit  # noqa: E402
import bench_consent  # noqa: E402
import bench_datasets  # noqa: E402
import bench_hash  # noqa: E402
import bench_report  # noqa: E402
from bench_common import Stack, commit, log, machine, versions  # noqa: E402

from ledger.chain.client import load_artifacts  # noqa: E402

FULL: dict[str, Any] = {
    "repeats": 3,
    "grants": 10_000,
    "subjects": 1_000,
    "holders": 10,
    "baseline_grants": 500,
    "grant_clients": 32,
    "checks": 2_000,
    "check_clients": 8,
    "datasets": 1_000,
    "baseline_datasets": 200,
    "register_batch": 100,
    "dag_depth": 100,
    "dag_fan_in": 9,
    "events": 1_000_000,
    "audit_queries": 300,
    "scan_queries": 6,
    "folder_mib": 1024,
}
QUICK: dict[str, Any] = {
    **FULL,
    "repeats": 2,
    "grants": 500,
    "subjects": 100,
    "holders": 5,
    "baseline_grants": 100,
    "grant_clients": 16,
    "checks": 300,
    "datasets": 100,
    "baseline_datasets": 40,
    "dag_depth": 20,
    "dag_fan_in": 4,
    "events": 100_000,
    "audit_queries": 100,
    "scan_queries": 4,
    "folder_mib": 64,
}
#: sizes that --scale multiplies (with a floor so every scenario still measures something)
SCALED = {
    "grants": 20,
    "subjects": 10,
    "baseline_grants": 10,
    "checks": 40,
    "datasets": 10,
    "baseline_datasets": 5,
    "dag_depth": 3,
    "events": 20_000,
    "audit_queries": 10,
    "folder_mib": 16,
}
SCENARIOS = ("1", "2", "3", "4", "5", "6", "7")
KEYS = {
    "1": "1_consent_grants",
    "2": "2_consent_checks",
    "3": "3_dataset_registration",
    "4": "4_lineage_verification",
    "5": "5_audit_queries",
    "6": "6_content_root",
    "7": "7_memory",
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes (under two minutes)")
    ap.add_argument("--scale", type=float, default=1.0, help="multiply the mode's sizes (the smoke test uses < 1)")
    ap.add_argument("--repeats", type=int, help="repeats per measurement (default: full 3, quick 2)")
    ap.add_argument("--only", default=",".join(SCENARIOS), help="scenarios to run, e.g. 1,2,7")
    ap.add_argument("--out-dir", type=Path, default=HERE, help="where results.json and RESULTS.md go")
    ap.add_argument("--batch-size", type=int, default=200, help="the service's relay batch size")
    ap.add_argument("--batch-delay", type=float, default=0.05, help="the service's relay batch delay (s)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory (node logs, service log)")
    ap.add_argument("--seed", type=int, default=20250115)
    ap.add_argument(
        "--render", type=Path, metavar="RESULTS_JSON", help="only rewrite RESULTS.md (in --out-dir) from a results.json"
    )
    return ap.parse_args(argv)


def config(args: argparse.Namespace) -> dict[str, Any]:
    cfg = dict(QUICK if args.quick else FULL)
    if args.scale != 1.0:
        for key, floor in SCALED.items():
            cfg[key] = max(floor, int(cfg[key] * args.scale))
        cfg["subjects"] = min(cfg["subjects"], cfg["grants"])
    if args.repeats:
        cfg["repeats"] = args.repeats
    return cfg


def run(args: argparse.Namespace) -> dict[str, Any]:
    cfg = config(args)
    wanted = {s.strip() for s in args.only.split(",") if s.strip()}
    if "7" in wanted:
        wanted.add("1")
    rng = random.Random(args.seed)
    started = time.perf_counter()
    results: dict[str, Any] = {
        "schema": 1,
        "mode": "quick" if args.quick else "full",
        "date": datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        "command": "bash scripts/bench.sh"
        + (" --quick" if args.quick else "")
        + (f" --scale {args.scale}" if args.scale != 1.0 else ""),
        "config": {**cfg, "batch_size": args.batch_size, "batch_delay_s": args.batch_delay},
        "machine": machine(),
        "commit": commit(),
        "scenarios": {},
    }
    scenarios: dict[str, Any] = results["scenarios"]
    build_at_start = build_stamp()
    workdir = Path(tempfile.mkdtemp(prefix="medledger-bench-"))
    stack = Stack(workdir, batch_size=args.batch_size, batch_delay=args.batch_delay)

    def attempt(number: str, fn: Any) -> None:
        if number not in wanted:
            return
        t = time.perf_counter()
        log(f"scenario {number}: {KEYS[number]}")
        try:
            out = fn()
        except Exception as exc:
            traceback.print_exc()
            scenarios[KEYS[number]] = {"error": f"{type(exc).__name__}: {exc}"}
            if number == "1" and "7" in wanted:
                scenarios[KEYS["7"]] = {"error": f"scenario 1 failed: {exc}"}
            return
        if number == "1":
            s1, s7 = out
            s1["seconds"] = round(time.perf_counter() - t, 1)
            scenarios[KEYS["1"]] = s1
            if "7" in wanted:
                scenarios[KEYS["7"]] = s7
        else:
            out["seconds"] = round(time.perf_counter() - t, 1)
            scenarios[KEYS[number]] = out

    try:
        needs_stack = bool(wanted & {"1", "2", "3", "4", "5"})
        if needs_stack:
            log(f"starting anvil, js-ipfs and the service under {workdir}")
            stack.start_nodes()
            stack.start_service()
            results["stack"] = {
                "anvil": stack.anvil.url,
                "ipfs_api": stack.ipfs.api_multiaddr,
                "service_port": stack.service_port,
                **stack.timings,
            }
            log(f"stack ready: {stack.timings}")
        world: bench_consent.ConsentWorld | None = None
        if wanted & {"1", "2"}:
            t = time.perf_counter()
            world = bench_consent.setup_world(stack, cfg["subjects"], cfg["holders"], cfg["repeats"], rng)
            log(f"consent world ready in {time.perf_counter() - t:.1f} s")
        attempt("1", lambda: bench_consent.scenario_grants(stack, _made(world), cfg, rng))
        attempt("2", lambda: bench_consent.scenario_checks(stack, _made(world), cfg, rng))
        attempt("3", lambda: bench_datasets.scenario_registration(stack, cfg, rng))
        attempt("4", lambda: bench_datasets.scenario_lineage(stack, cfg, rng))
        if stack.service is not None:
            stack.service.terminate()  # the rest needs no service: less noise for 5 and 6
            stack.service.wait(30)
        attempt("5", lambda: bench_audit.scenario_audit(stack, workdir, cfg, rng))
        attempt("6", lambda: bench_hash.scenario_hash(workdir, cfg))
        results["versions"] = versions(stack if needs_stack else None)
    finally:
        if stack.service_log is not None and stack.service_log.exists():
            results["service_log_tail"] = stack.tail_log(15).splitlines()
        stack.stop()
        if args.keep:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    results["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    if build_stamp() != build_at_start:
        results.setdefault("warnings", []).append(rebuilt_note(stack))
    results["duration_s"] = round(time.perf_counter() - started, 1)
    return results


def rebuilt_note(stack: Stack) -> str:
    note = (
        "the contracts were rebuilt in build/ by another process while this run went on; the service and "
        "the bench had loaded their artifacts at the start"
    )
    if stack.record is None:
        return note
    try:
        arts = load_artifacts(stack.settings.artifacts_dir)
        changed = [n for n, h in stack.record.abi_hashes.items() if n in arts and arts[n].abi_hash != h]
    except Exception as exc:  # a report, not a failure
        return f"{note} (ABIs not compared: {exc})"
    if not changed:
        return f"{note}; the rebuilt ABIs equal the deployed ones, so later processes decoded the same events"
    return f"{note}; ABIs changed for {', '.join(changed)}: processes started later decoded with them"


def build_stamp() -> str:
    """A fingerprint of the compiled contracts (bootstrap's stamp and the artifacts' sizes)."""
    build = HERE.parent / "build"
    parts = [(build / ".medledger-stamp").read_text() if (build / ".medledger-stamp").exists() else ""]
    parts += [f"{p.name}:{p.stat().st_size}" for p in sorted((build / "contracts").glob("*.json"))]
    return "|".join(parts)


def write(results: dict[str, Any], out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (out_dir / "RESULTS.md").write_text(bench_report.render(results))


def _made(world: bench_consent.ConsentWorld | None) -> bench_consent.ConsentWorld:
    """The consent world, which scenarios 1 and 2 set up before they run."""
    if world is None:
        raise RuntimeError("the consent world was not set up")
    return world


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.render is not None:
        results = json.loads(args.render.read_text())
        (args.out_dir / "RESULTS.md").write_text(bench_report.render(results))
        return 0
    results = run(args)
    write(results, args.out_dir)
    print(bench_report.render(results).split("## Versions")[0])
    failed = [k for k, v in results["scenarios"].items() if "error" in v]
    log(
        f"done in {results['duration_s']:.0f} s; wrote {args.out_dir / 'results.json'} and RESULTS.md"
        + (f"; FAILED: {', '.join(failed)}" if failed else "")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
