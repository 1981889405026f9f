"""Scenarios 3 and 4: dataset registration with metadata pinned to IPFS (sequential vs batched),
and lineage verification of a large DAG (level-by-level vs a naive per-node walk)."""

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Sequence
from typing import Any

from bench_common import Stack, log, parallel_map, ratio, summary

from ledger.chain import typed_data
from ledger.content.metadata import DatasetMetadata
from ledger.relay.relayer import ForwardRequest
from ledger.services.ledger import registration_call
from ledger.services.verification import verify_dataset, verify_lineage

CREATED = "2025-01-15T08:00:00Z"
#: gas of all requests of one executeBatch stays below this (anvil's block gas limit is 30M)
BATCH_GAS_BUDGET = 24_000_000


def make_metadata(holder: str, rng: random.Random, parents: Sequence[str] = (), n_files: int = 3) -> Any:
    """A valid metadata document with synthetic file entries (random digests: unique content)."""
    md: dict[str, Any] = {
        "title": {"en": f"Synthetic cohort {rng.getrandbits(32):08x}"},
        "description": {"en": "Synthetic records keyed by pseudonymous addresses."},
        "classification": "0x0101",
        "tier": "controlled",
        "licence": {"spdx": "CC-BY-4.0"},
        "data_use": ["DUO:0000006"],
        "files": [
            {
                "path": f"data/part-{j:03d}.csv",
                "size": rng.randint(1, 1 << 30),
                "sha256": f"{rng.getrandbits(256):064x}",
            }
            for j in range(n_files)
        ],
        "holder": holder,
        "created": CREATED,
    }
    if parents:
        md["parents"] = sorted(parents)
        md["activity"] = {
            "type": "merge",
            "agent": holder,
            "started": CREATED,
            "ended": CREATED,
            "software": {"name": "bench", "version": "1"},
        }
    return DatasetMetadata.model_validate(md)


def register_batched(
    ledger: Any,
    items: Sequence[tuple[Any, Any]],
    *,
    gas: int | None = None,
    batch: int = 100,
    pin_workers: int = 16,
    stages: dict[str, float] | None = None,
) -> list[bytes]:
    """The batched registration path: compute every registration, pin all documents
    concurrently, have each holder sign its requests (consecutive forwarder nonces), then relay
    them in ``executeBatch`` transactions (sent back to back, then awaited). ``gas`` per request
    is estimated once from the first request when not given. Returns the content roots."""
    stages = stages if stages is not None else {}
    relayer = ledger.relayer
    t = time.perf_counter()
    calls = [registration_call(md) for _, md in items]
    stages["prepare_s"] = stages.get("prepare_s", 0.0) + time.perf_counter() - t

    t = time.perf_counter()
    docs = list({d: None for c in calls for d in c.documents})
    parallel_map(ledger.ipfs.put, docs, pin_workers)
    stages["pin_s"] = stages.get("pin_s", 0.0) + time.perf_counter() - t

    t = time.perf_counter()
    chain_id = ledger.client.chain_id
    forwarder = str(relayer.forwarder.address)
    nonces: dict[str, int] = {}
    deadline = relayer.now() + 3600
    reqs: list[ForwardRequest] = []
    for (holder, _), call in zip(items, calls, strict=True):
        to, data = relayer.encode("DatasetRegistry", "register", *call.args)
        if gas is None:
            gas = relayer.estimate_inner_gas(holder.address, to, data)
        if holder.address not in nonces:
            nonces[holder.address] = relayer.chain_nonce(holder.address)
        nonce = nonces[holder.address]
        nonces[holder.address] += 1
        req = ForwardRequest(holder.address, to, 0, gas, nonce, deadline, data, b"")
        sig = typed_data.sign(req.typed(chain_id, forwarder), holder.key)
        reqs.append(dataclasses.replace(req, signature=sig))
    stages["sign_s"] = stages.get("sign_s", 0.0) + time.perf_counter() - t

    t = time.perf_counter()
    chunks: list[list[ForwardRequest]] = [[]]
    for req in reqs:
        if len(chunks[-1]) >= batch or sum(r.gas for r in chunks[-1]) + req.gas > BATCH_GAS_BUDGET:
            chunks.append([])
        chunks[-1].append(req)
    hashes = [relayer.send_batch(chunk) for chunk in chunks]
    failures = []
    for chunk, tx_hash in zip(chunks, hashes, strict=True):
        receipt = ledger.client.wait(bytes.fromhex(tx_hash[2:]))
        failures += [o.error for o in relayer.outcomes(chunk, receipt) if not o.ok]
    stages["chain_s"] = stages.get("chain_s", 0.0) + time.perf_counter() - t
    stages["transactions"] = stages.get("transactions", 0) + len(chunks)
    if failures:
        raise RuntimeError(f"{len(failures)} batched registrations failed, first: {failures[0]}")
    return [c.content_root for c in calls]


def _holders(stack: Stack, n: int) -> list[Any]:
    from eth_account import Account

    admin = Account.from_key(stack.settings.relayer_private_key())
    holders = [Account.create() for _ in range(n)]
    for h in holders:
        stack.ledger.grant_role(admin, "holder", h.address)
    return holders


def scenario_registration(stack: Stack, cfg: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    repeats, n, nb = cfg["repeats"], cfg["datasets"], cfg["baseline_datasets"]
    holders = _holders(stack, 4)
    ledger = stack.ledger
    product: list[dict[str, Any]] = []
    baseline: list[float] = []
    for r in range(repeats):
        items = [(h := holders[i % len(holders)], make_metadata(h.address, rng)) for i in range(n)]
        base_items = [(h := holders[i % len(holders)], make_metadata(h.address, rng)) for i in range(nb)]
        stages: dict[str, float] = {}
        t = time.perf_counter()
        roots = register_batched(ledger, items, batch=cfg["register_batch"], stages=stages)
        dt = time.perf_counter() - t
        assert len(roots) == n
        product.append({"per_s": n / dt, "seconds": dt, **{k: round(v, 3) for k, v in stages.items()}})
        t = time.perf_counter()
        for holder, md in base_items:
            ledger.register_dataset(holder, md)
        bdt = time.perf_counter() - t
        baseline.append(nb / bdt)
        log(f"scenario 3 {r + 1}/{repeats}: batched {n / dt:.0f} datasets/s {stages}, sequential {nb / bdt:.1f}/s")
    # a sample of the batched registrations reads back from the chain with their metadata
    rate = summary([p["per_s"] for p in product], "datasets/s", 1)
    base = summary(baseline, "datasets/s", 1)
    return {
        "title": "Dataset registration with metadata pinned to IPFS",
        "params": {
            "datasets_per_run": n,
            "baseline_datasets_per_run": nb,
            "holders": len(holders),
            "requests_per_executeBatch": cfg["register_batch"],
            "pin_threads": 16,
            "note": "timed from validated metadata documents to mined records: content roots and CIDs, "
            "pinning, the holders' EIP-712 signatures and the relayed transactions",
        },
        "product": {
            "datasets_per_s": rate,
            **{
                f"stage_{k}": summary([p[k] for p in product], "s" if k.endswith("_s") else "count", 3)
                for k in ("prepare_s", "pin_s", "sign_s", "chain_s", "transactions")
            },
        },
        "baseline": {"name": "sequential Ledger.register_dataset, one at a time", "datasets_per_s": base},
        "ratio": {"datasets_per_s": ratio(rate["median"], base["median"])},
        "targets": {"datasets_per_s >= 100": rate["median"] >= 100},
        "runs": {"product": product, "baseline": baseline},
    }


# ---------------------------------------------------------------------------------------------
# scenario 4


def build_dag(stack: Stack, depth: int, fan_in: int, rng: random.Random) -> tuple[bytes, int]:
    """A chain of ``depth`` derived datasets, each also derived from ``fan_in`` primary datasets
    of its own: depth * (fan_in + 1) datasets. Returns the newest dataset's root and the count."""
    ledger = stack.ledger
    holders = _holders(stack, 2)
    leaves_md = [[make_metadata(holders[0].address, rng) for _ in range(fan_in)] for _ in range(depth)]
    flat = [(holders[0], md) for level in leaves_md for md in level]
    leaf_roots = register_batched(ledger, flat, batch=100)
    leaf_hex = [["0x" + leaf_roots[i * fan_in + j].hex() for j in range(fan_in)] for i in range(depth)]
    chain: list[str] = []
    first = make_metadata(holders[1].address, rng, leaf_hex[0])
    chain += ["0x" + r.hex() for r in register_batched(ledger, [(holders[1], first)])]
    if depth > 1:
        second = make_metadata(holders[1].address, rng, [*leaf_hex[1], chain[0]])
        chain += ["0x" + r.hex() for r in register_batched(ledger, [(holders[1], second)])]
    rest = []
    prev = chain[-1]
    for i in range(2, depth):
        # parents registered earlier in the same executeBatch exist when the child runs
        md = make_metadata(holders[1].address, rng, [*leaf_hex[i], prev])
        rest.append((holders[1], md))
        prev = "0x" + _root_of(md).hex()
    if rest:
        to, data = ledger.relayer.encode("DatasetRegistry", "register", *registration_call(rest[0][1]).args)
        gas = int(ledger.relayer.estimate_inner_gas(holders[1].address, to, data) * 1.1)
        register_batched(ledger, rest, gas=gas, batch=100)
    top = bytes.fromhex(prev[2:])
    return top, depth * (fan_in + 1)


def _root_of(md: Any) -> bytes:
    return bytes(registration_call(md).content_root)


def naive_walk(stack: Stack, root: bytes) -> dict[str, Any]:
    """One getDataset call and one IPFS get per node, sequentially (verify_dataset per node)."""
    seen: set[bytes] = set()
    todo = [root]
    rpc = ipfs = 0
    ok = True
    t = time.perf_counter()
    while todo:
        r = todo.pop()
        if r in seen:
            continue
        seen.add(r)
        res = verify_dataset(stack.ledger, r)
        rpc += 1
        ipfs += res.record is not None
        ok = ok and res.ok
        if res.record is not None:
            todo += [p for p in res.record.parents if p not in seen]
    return {"seconds": time.perf_counter() - t, "nodes": len(seen), "rpc_calls": rpc, "ipfs_calls": ipfs, "ok": ok}


def scenario_lineage(stack: Stack, cfg: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    depth, fan_in = cfg["dag_depth"], cfg["dag_fan_in"]
    t = time.perf_counter()
    top, count = build_dag(stack, depth, fan_in, rng)
    log(f"scenario 4: DAG of {count} datasets (depth {depth}) registered in {time.perf_counter() - t:.1f} s")
    product: list[dict[str, Any]] = []
    baseline: list[dict[str, Any]] = []
    for r in range(cfg["repeats"]):
        # alternate the order so neither path always meets a warmer IPFS node
        order = ("product", "baseline") if r % 2 == 0 else ("baseline", "product")
        for which in order:
            if which == "product":
                rep = verify_lineage(stack.ledger, top)
                product.append(
                    {
                        "seconds": rep.seconds,
                        "nodes": len(rep.nodes),
                        "rpc_calls": rep.rpc_calls,
                        "ipfs_calls": rep.ipfs_calls,
                        "ok": rep.ok,
                    }
                )
            else:
                baseline.append(naive_walk(stack, top))
        log(
            f"scenario 4 {r + 1}/{cfg['repeats']}: verify_lineage {product[-1]['seconds']:.2f} s "
            f"({product[-1]['rpc_calls']} rpc, {product[-1]['ipfs_calls']} ipfs), naive {baseline[-1]['seconds']:.2f} s"
        )
    for p in product + baseline:
        if not p["ok"] or p["nodes"] != count:
            raise RuntimeError(f"lineage verification did not pass over {count} nodes: {p}")
    secs = summary([p["seconds"] for p in product], "s", 3)
    base = summary([b["seconds"] for b in baseline], "s", 3)
    return {
        "title": "Lineage verification of a DAG (chain plus fan-in), metadata fetched and CIDs recomputed",
        "params": {"datasets": count, "depth": depth, "fan_in_per_level": fan_in, "levels": depth + 1},
        "product": {
            "seconds": secs,
            "rpc_calls": summary([p["rpc_calls"] for p in product], "calls", 0),
            "ipfs_calls": summary([p["ipfs_calls"] for p in product], "calls", 0),
        },
        "baseline": {
            "name": "naive sequential walk: verify_dataset per node (one getDataset, one IPFS get each)",
            "seconds": base,
            "rpc_calls": summary([b["rpc_calls"] for b in baseline], "calls", 0),
            "ipfs_calls": summary([b["ipfs_calls"] for b in baseline], "calls", 0),
        },
        "ratio": {"speedup": ratio(base["median"], secs["median"])},
        "targets": {"seconds <= 2": secs["median"] <= 2.0},
        "runs": {"product": product, "baseline": baseline},
    }
