"""What the index benchmark measures besides its queries: latency percentiles of a call, the
decoding rate of raw logs (``EventDecoder``) and catch-up from a real anvil (``Indexer.sync``)."""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from eth_abi.abi import encode
from eth_account import Account
from indexer_synth import CONTRACTS, HMB, synthesise

from ledger.chain.client import ChainClient, load_artifacts
from ledger.chain.deployment import ensure_deployed
from ledger.core.config import PROJECT_ROOT, load_settings
from ledger.core.records import ZERO32
from ledger.history.events import EventDecoder
from ledger.history.index import Indexer
from ledger.services.ledger import Ledger


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
            base = usage.functions.recordUse(root, 0, HMB, 0, ZERO32).build_transaction(params)
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
