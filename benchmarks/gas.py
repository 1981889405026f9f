#!/usr/bin/env python3
"""Gas used by every ledger operation: sent directly, and relayed in batches of 1, 10 and 100.

Run with `bash scripts/gas_report.sh` (it sources scripts/bootstrap.sh first). The script loads the
brownie project, starts its own anvil on a free port (prague hardfork, 1e9 block gas limit, so
batches of 100 fit in one block), deploys the ledger with fresh keys as the parties, measures, and
writes benchmarks/gas.md.

Method:
- direct: the acting party sends the transaction itself; the figure is the receipt's gasUsed
  (21,000 intrinsic + calldata + execution - refunds);
- relayed: n requests signed by the acting parties go in one transaction; the figure is the
  transaction's gasUsed / n. Forwarded writes go through LedgerForwarder.executeBatch (atomic,
  refundReceiver = 0); signed consent messages through ConsentRegistry.relayBatch;
- institutions (admin, holder, reviewer, user, auditor) sign their own batches (one key, consecutive
  forwarder nonces); each data subject signs for itself (one key per request). Every key has used
  its forwarder nonce, and its consent-nonce bitmap word, before it is measured (steady state; a
  key's first-ever request costs about 17,100 more for the 0 -> 1 nonce slot);
- every request in a batch works on its own records (its own dataset, request, consent), so no
  request profits from another's warm storage beyond the contracts' shared code and counters.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "contracts"))

from brownie import web3  # noqa: E402
from brownie._config import CONFIG  # noqa: E402
from brownie.network.main import connect, disconnect  # noqa: E402
from brownie.project.main import load as load_project  # noqa: E402
from gas_chain import BATCH_SIZES, BLOCK_GAS_LIMIT, HARDFORK, START_TIME, deploy, log  # noqa: E402
from gas_measure import measure, trace_direct  # noqa: E402
from gas_operations import OPERATIONS  # noqa: E402
from gas_report import environment, render  # noqa: E402
from web3.types import RPCEndpoint  # noqa: E402

# ---------------------------------------------------------------------------------------------- main


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_anvil(tracing: bool) -> None:
    port = free_port()
    settings = CONFIG.networks["development"]
    settings["cmd_settings"] = {
        **(settings.get("cmd_settings") or {}),
        "port": port,
        "gas_limit": BLOCK_GAS_LIMIT,
        "evm_version": HARDFORK,
        "accounts": 10,
        "base_fee": 0,
        # opcode traces (for the breakdown) are kept in memory for every transaction: only in the
        # short tracing run, and pruned to the last few blocks
        "steps_tracing": tracing,
    }
    cmd = "anvil --transaction-block-keeper 8" if tracing else "anvil"
    settings["cmd"] = cmd
    log(f"starting anvil on port {port}{' with opcode tracing' if tracing else ''}")
    connect("development")
    # block timestamps independent of the wall clock (start fixed, +1 s per block): deadlines and
    # expiries, hence signatures and calldata, and so the figures, are the same in every run
    for method, params in (
        ("evm_setNextBlockTimestamp", [START_TIME]),
        ("anvil_setBlockTimestampInterval", [1]),
        ("evm_mine", []),
    ):
        response = web3.provider.make_request(RPCEndpoint(method), params)
        if "error" in response:
            raise RuntimeError(f"{method}: {response['error']}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "gas.md")
    parser.add_argument("--sizes", default=",".join(map(str, BATCH_SIZES)), help="batch sizes, comma-separated")
    parser.add_argument(
        "--only", default="", help="measure only operations whose name contains one of these comma-separated texts"
    )
    parser.add_argument(
        "--project",
        type=Path,
        default=ROOT,
        help="measure another brownie project, e.g. a copy of this one with a proposed contract change "
        "(the report is then written only if --out is given)",
    )
    args = parser.parse_args()
    other_project = args.project.resolve() != ROOT
    if other_project and "--out" not in sys.argv:
        args.out = None
    sizes = tuple(int(s) for s in args.sizes.split(","))
    wanted = [w.strip() for w in args.only.split(",")]
    operations = [op for op in OPERATIONS if any(w in op.name for w in wanted)]

    os.chdir(args.project)
    p = load_project(args.project, name="MedLedgerGas")
    CONFIG.argv["silent"] = True
    anvil_version = subprocess.run(["anvil", "--version"], capture_output=True, text=True).stdout.splitlines()[0]

    # 1. where the gas of each direct transaction goes (opcode traces)
    start_anvil(tracing=True)
    try:
        ledger = deploy(p, 1)
        parts = {op.name: trace_direct(ledger, op) for op in operations}
    finally:
        disconnect()
    # 2. direct and relayed figures, on a node without tracing
    start_anvil(tracing=False)
    try:
        ledger = deploy(p, max(sizes))
        results = [measure(ledger, op, sizes, parts[op.name]) for op in operations]
    finally:
        disconnect()
    if args.only or args.out is None:
        log("report not written (--only, or another --project without --out)")
        return 0
    args.out.write_text(render(results, environment(anvil_version, args.project), sizes))
    log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
