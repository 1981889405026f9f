"""Scenarios 1, 2 and 7: relayed consent grants through the service (with the memory of the
service, chain and IPFS processes sampled meanwhile), and consent checks through the service."""

from __future__ import annotations

import json
import os
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from bench_common import (
    Rpc,
    RssSampler,
    Stack,
    cpu_seconds,
    cpu_share,
    latency_ms,
    log,
    mib,
    ratio,
    run_closed_loop,
    summary,
)

from ledger.chain import typed_data
from ledger.chain.client import ChainClient
from ledger.core.records import ZERO_ADDRESS
from ledger.relay.relayer import SignedConsent
from ledger.rules import datause
from ledger.services.ledger import Ledger

HMB = 1 << 2  # DataUse: health/medical/biomedical research


@dataclass
class ConsentWorld:
    """The parties of the consent scenarios: holders (each with one registered dataset), subjects,
    and one grantee per repeat so every repeat writes consents of its own."""

    holders: list[Any]
    datasets: list[str]
    subjects: list[Any]
    registry: str
    chain_id: int
    grantees: list[str] = field(default_factory=list)


def setup_world(stack: Stack, n_subjects: int, n_holders: int, repeats: int, rng: random.Random) -> ConsentWorld:
    from eth_account import Account

    ledger: Ledger = stack.ledger
    admin = Account.from_key(stack.settings.relayer_private_key())
    holders = [Account.create() for _ in range(n_holders)]
    datasets: list[str] = []
    from bench_datasets import make_metadata

    for h in holders:
        ledger.grant_role(admin, "holder", h.address)
        reg = ledger.register_dataset(h, make_metadata(h.address, rng))
        datasets.append("0x" + reg.content_root.hex())
    subjects = [Account.create() for _ in range(n_subjects)]
    grantees = [ZERO_ADDRESS] + [Account.create().address for _ in range(repeats * 2 + 2)]
    return ConsentWorld(
        holders=holders,
        datasets=datasets,
        subjects=subjects,
        registry=str(ledger.consents.address),
        chain_id=ledger.client.chain_id,
        grantees=grantees,
    )


def consent_id(subject: str, scope: bytes, grantee: str) -> str:
    from eth_abi.abi import encode
    from eth_utils.crypto import keccak

    return "0x" + keccak(encode(["address", "uint8", "bytes32", "address"], [subject, 0, scope, grantee])).hex()


def presign_grants(
    world: ConsentWorld, n: int, grantee: str, deadline: int, rng: random.Random
) -> tuple[list[bytes], list[str]]:
    """``n`` Grant messages signed by their subjects (each subject grants to the holders in turn),
    as POST /consents bodies, and their consent ids. Signed before the clock starts."""
    bodies: list[bytes] = []
    ids: list[str] = []
    expiry = int(time.time()) + 365 * 86400
    for k in range(n):
        subject = world.subjects[k % len(world.subjects)]
        holder = world.holders[(k // len(world.subjects)) % len(world.holders)]
        scope = b"\x00" * 12 + bytes.fromhex(holder.address[2:])
        msg = {
            "subject": subject.address,
            "scopeKind": 0,
            "scope": scope,
            "grantee": grantee,
            "purposes": HMB,
            "diseaseCode": 0,
            "expiry": expiry,
            "nonce": rng.getrandbits(53),  # below 2**53, as the service hands them out
            "deadline": deadline,
        }
        typed = typed_data.consent_message("Grant", chain_id=world.chain_id, registry=world.registry, message=msg)
        sig = typed_data.sign(typed, subject.key)
        bodies.append(
            json.dumps({"kind": "Grant", "message": typed["message"], "signature": "0x" + sig.hex()}).encode()
        )
        ids.append(consent_id(subject.address, scope, grantee))
    return bodies, ids


class MinedWatcher(threading.Thread):
    """Polls the chain every few milliseconds and notes when each ConsentGiven first appears."""

    def __init__(self, url: str, registry: str, topic0: str, from_block: int) -> None:
        super().__init__(name="mined-watcher", daemon=True)
        self.rpc = Rpc(url)
        self.registry = registry
        self.topic0 = topic0
        self.last = from_block
        self.seen: dict[str, tuple[float, int]] = {}
        self.failed = 0
        self.blocks: dict[int, float] = {}
        self._stop_event = threading.Event()
        self.lock = threading.Lock()

    def run(self) -> None:
        while not self._stop_event.is_set():
            head = int(self.rpc.call("eth_blockNumber"), 16)
            if head > self.last:
                now = time.perf_counter()
                logs = self.rpc.call(
                    "eth_getLogs",
                    {"fromBlock": hex(self.last + 1), "toBlock": hex(head), "address": self.registry},
                )
                with self.lock:
                    for b in range(self.last + 1, head + 1):
                        self.blocks[b] = now
                    for entry in logs:
                        topics = entry["topics"]
                        if topics and topics[0] == self.topic0:
                            self.seen.setdefault(topics[1], (now, int(entry["blockNumber"], 16)))
                        elif topics:
                            self.failed += 1
                self.last = head
            self._stop_event.wait(0.005)
        self.rpc.close()

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def consent_given_topic(stack: Stack) -> str:
    from eth_utils.crypto import keccak

    abi = next(e for e in stack.ledger.consents.abi if e.get("type") == "event" and e["name"] == "ConsentGiven")
    sig = f"ConsentGiven({','.join(i['type'] for i in abi['inputs'])})"
    return "0x" + keccak(text=sig).hex()


def _post_consent(conn: Any, body: bytes) -> None:
    status, data = conn.request("POST", "/consents", body)
    if status != 202:
        raise RuntimeError(f"POST /consents answered {status}: {data[:300]!r}")


def grants_product_once(
    stack: Stack, world: ConsentWorld, bodies: list[bytes], ids: list[str], concurrency: int, topic0: str
) -> dict[str, Any]:
    rpc = Rpc(stack.anvil.url)
    start_block = int(rpc.call("eth_blockNumber"), 16)
    rpc.close()
    watcher = MinedWatcher(stack.anvil.url, world.registry, topic0, start_block)
    watcher.start()
    pids = process_ids(stack)
    cpu0 = cpu_seconds(pids)
    t0, t_accepted, starts, http_lat = run_closed_loop(
        bodies, _post_consent, concurrency, stack.http, lambda c: c.close()
    )
    wanted = set(ids)
    deadline = time.monotonic() + max(120.0, len(ids) / 20)
    while time.monotonic() < deadline:
        with watcher.lock:
            if wanted.issubset(watcher.seen):
                break
        time.sleep(0.01)
    watcher.stop()
    missing = len(wanted - set(watcher.seen))
    mined = [watcher.seen[i] for i in ids if i in watcher.seen]
    t_mined = max(t for t, _ in mined)
    last_block = max(b for _, b in mined)
    blocks_used = len({b for _, b in mined})
    t_deadline = time.monotonic() + 60
    while stack.indexed_block() < last_block and time.monotonic() < t_deadline:
        time.sleep(0.01)
    t_indexed = time.perf_counter()
    cpu = cpu_share(cpu0, cpu_seconds(pids), t_indexed - t0)
    to_mined = [watcher.seen[i][0] - s for i, s in zip(ids, starts, strict=True) if i in watcher.seen]
    n = len(ids)
    return {
        "accepted_per_s": n / (t_accepted - t0),
        "mined_per_s": (n - missing) / (t_mined - t0),
        "indexed_per_s": (n - missing) / (t_indexed - t0),
        "latency_to_mined_ms": latency_ms(to_mined),
        "http_latency_ms": latency_ms(http_lat),
        "batches": blocks_used,
        "missing": missing,
        "failed_calls": watcher.failed,
        "seconds": t_indexed - t0,
        "cpu_cores": cpu,
    }


def process_ids(stack: Stack) -> dict[str, int]:
    pids = {
        "service": stack.service.pid if stack.service else 0,
        "anvil": stack.anvil.pid or 0,
        "js-ipfs": stack.ipfs.pid or 0,
        "bench client": os.getpid(),
    }
    return {k: v for k, v in pids.items() if v}


def grants_baseline_once(stack: Stack, bodies: list[bytes]) -> dict[str, Any]:
    """One transaction per grant, unbatched: the library relays each subject-signed grantBySig as
    its own transaction and waits for it (Ledger.write_consent: check, simulate, send, receipt)."""
    ledger = stack.ledger
    lat: list[float] = []
    t0 = time.perf_counter()
    for body in bodies:
        t = time.perf_counter()
        ledger.write_consent(SignedConsent.from_json(json.loads(body)))
        lat.append(time.perf_counter() - t)
    dt = time.perf_counter() - t0
    return {"mined_per_s": len(bodies) / dt, "latency_to_mined_ms": latency_ms(lat)}


def check_prepare_matches(stack: Stack, world: ConsentWorld) -> None:
    """The typed data the bench signs is what POST /consents/prepare hands a client."""
    conn = stack.http()
    subject = world.subjects[0]
    status, body = conn.json(
        "POST",
        "/consents/prepare",
        {
            "kind": "Grant",
            "subject": subject.address,
            "scope_kind": "holder",
            "scope": world.holders[0].address,
            "purposes": ["HMB"],
            "expiry": int(time.time()) + 86400,
        },
    )
    conn.close()
    if status != 200:
        raise RuntimeError(f"/consents/prepare answered {status}: {body}")
    domain = body["typed_data"]["domain"]
    if domain["verifyingContract"].lower() != world.registry.lower() or domain["chainId"] != world.chain_id:
        raise RuntimeError(f"the service's consent domain differs from the bench's: {domain}")


def scenario_grants(
    stack: Stack, world: ConsentWorld, cfg: dict[str, Any], rng: random.Random
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Scenario 1 (grants) and scenario 7 (memory meanwhile)."""
    repeats = cfg["repeats"]
    n, nb, conc = cfg["grants"], cfg["baseline_grants"], cfg["grant_clients"]
    check_prepare_matches(stack, world)
    topic0 = consent_given_topic(stack)
    deadline = int(time.time()) + 4 * 3600
    t = time.perf_counter()
    signed = [presign_grants(world, n, world.grantees[1 + r], deadline, rng) for r in range(repeats)]
    baseline_signed = [
        presign_grants(world, nb, world.grantees[1 + repeats + r], deadline, rng)[0] for r in range(repeats)
    ]
    presign_s = time.perf_counter() - t
    log(f"scenario 1: {repeats * (n + nb)} grants pre-signed in {presign_s:.1f} s")

    sampler = RssSampler(process_ids(stack))
    idle: dict[str, list[int]] = {k: [] for k in sampler.pids}
    for _ in range(10):
        for k, v in sampler.sample_once().items():
            idle[k].append(v)
        time.sleep(0.1)
    sampler.samples = {k: [] for k in sampler.pids}
    product: list[dict[str, Any]] = []
    baseline: list[dict[str, Any]] = []
    for r in range(repeats):
        with sampler:
            res = grants_product_once(stack, world, *signed[r], conc, topic0)
        product.append(res)
        log(
            f"scenario 1 product {r + 1}/{repeats}: {res['mined_per_s']:.0f} grants/s mined, "
            f"{res['indexed_per_s']:.0f}/s indexed, p99 to mined {res['latency_to_mined_ms']['p99']:.0f} ms, "
            f"{res['batches']} batches, missing {res['missing']}"
        )
        b = grants_baseline_once(stack, baseline_signed[r])
        baseline.append(b)
        log(
            f"scenario 1 baseline {r + 1}/{repeats}: {b['mined_per_s']:.0f} grants/s, "
            f"p99 {b['latency_to_mined_ms']['p99']:.0f} ms"
        )

    mined = summary([p["mined_per_s"] for p in product], "grants/s", 1)
    base = summary([b["mined_per_s"] for b in baseline], "grants/s", 1)
    p99 = summary([p["latency_to_mined_ms"]["p99"] for p in product], "ms", 1)
    s1 = {
        "title": "Relayed consent grants, client-signed, through the service to mined and indexed",
        "params": {
            "grants": n,
            "subjects": len(world.subjects),
            "holders": len(world.holders),
            "client_threads": conc,
            "batch_size": stack.batch_size,
            "batch_delay_s": stack.batch_delay,
            "baseline_grants": nb,
            "presign_s_all_repeats": round(presign_s, 1),
        },
        "product": {
            "mined_per_s": mined,
            "indexed_per_s": summary([p["indexed_per_s"] for p in product], "grants/s", 1),
            "accepted_per_s": summary([p["accepted_per_s"] for p in product], "grants/s", 1),
            "p50_to_mined_ms": summary([p["latency_to_mined_ms"]["p50"] for p in product], "ms", 1),
            "p99_to_mined_ms": p99,
            "http_p99_ms": summary([p["http_latency_ms"]["p99"] for p in product], "ms", 1),
            "batches": summary([p["batches"] for p in product], "transactions", 0),
            **{
                f"cpu_cores_{name.replace(' ', '_')}": summary(
                    [p["cpu_cores"].get(name, 0.0) for p in product], "cores", 2
                )
                for name in product[0]["cpu_cores"]
            },
            "missing": sum(p["missing"] for p in product),
        },
        "baseline": {
            "name": "one transaction per grant: Ledger.write_consent (check, simulate, relay grantBySig alone, wait)",
            "mined_per_s": base,
            "p50_to_mined_ms": summary([b["latency_to_mined_ms"]["p50"] for b in baseline], "ms", 1),
            "p99_to_mined_ms": summary([b["latency_to_mined_ms"]["p99"] for b in baseline], "ms", 1),
        },
        "ratio": {"mined_per_s": ratio(mined["median"], base["median"])},
        "targets": {
            "mined_per_s >= 1000": mined["median"] >= 1000,
            "p99_to_mined_ms <= 2000": p99["median"] <= 2000,
        },
        "runs": {"product": product, "baseline": baseline},
    }
    peaks = {k: mib(max(v)) if v else 0.0 for k, v in sampler.samples.items()}
    idles = {k: mib(int(sum(v) / len(v))) if v else 0.0 for k, v in idle.items()}
    s7 = {
        "title": "Memory (RSS peak) of the service, chain and IPFS processes under scenario 1",
        "params": {
            "sampling_interval_s": sampler.interval,
            "note": "the service process holds the API, the relay queue worker and the event indexer "
            "(threads of one uvicorn worker); the indexer alone is measured catching up in scenario 5",
        },
        "product": {f"{k}_peak_mib": summary([peaks[k]], "MiB", 1) for k in peaks},
        "baseline": {
            "name": "the same processes idle just before the load",
            **{f"{k}_idle_mib": summary([idles[k]], "MiB", 1) for k in idles},
        },
        "ratio": {f"{k}_peak_over_idle": ratio(peaks[k], idles[k]) for k in peaks},
        "targets": {},
    }
    return s1, s7


# ---------------------------------------------------------------------------------------------
# scenario 2


def scenario_checks(stack: Stack, world: ConsentWorld, cfg: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    from bench_common import ANVIL_SECOND_KEY
    from eth_abi.abi import encode
    from eth_utils.crypto import keccak

    repeats, n = cfg["repeats"], cfg["checks"]
    conc = cfg["check_clients"]
    purpose = datause.Purpose.of("HMB", [], None)

    def items_for(count: int = n) -> list[tuple[str, str, str | None]]:
        out = []
        for _ in range(count):
            s = rng.choice(world.subjects).address
            d = rng.choice(world.datasets)
            g = rng.choice(world.grantees[1:4]) if rng.random() < 0.3 else None
            out.append((s, d, g))
        return out

    def service_check(conn: Any, item: tuple[str, str, str | None]) -> None:
        s, d, g = item
        path = f"/consents/check?subject={s}&dataset={d}&category=HMB" + (f"&grantee={g}" if g else "")
        status, data = conn.request("GET", path)
        if status != 200:
            raise RuntimeError(f"GET /consents/check answered {status}: {data[:300]!r}")

    def make_ledger() -> Ledger:
        client = ChainClient(stack.settings, private_key=ANVIL_SECOND_KEY, record=stack.record, check_record=False)
        return Ledger(stack.settings, client)

    def direct_check(led: Ledger, item: tuple[str, str, str | None]) -> None:
        s, d, g = item
        led.consent_in_force(s, d, purpose, g)

    selector = keccak(text="isInForce(address,bytes32,uint64,uint32,address)")[:4]

    def raw_call(rpc: Rpc, item: tuple[str, str, str | None]) -> None:
        s, d, g = item
        data = selector + encode(
            ["address", "bytes32", "uint64", "uint32", "address"],
            [s, bytes.fromhex(d[2:]), purpose.mask, 0, g or ZERO_ADDRESS],
        )
        rpc.call("eth_call", {"to": world.registry, "data": "0x" + data.hex()}, "latest")

    # sanity: the service and the chain agree on a few answers, and some checks are true
    conn = stack.http()
    sample = items_for()[:20]
    led = make_ledger()
    agree = 0
    true = 0
    for s, d, g in sample:
        q = f"/consents/check?subject={s}&dataset={d}&category=HMB" + (f"&grantee={g}" if g else "")
        _, body = conn.json("GET", q)
        direct = led.consent_in_force(s, d, purpose, g)
        agree += body["in_force"] == direct
        true += bool(direct)
    conn.close()
    if agree != len(sample):
        raise RuntimeError("the service's consent check disagrees with the contract")

    runs: dict[str, list[dict[str, Any]]] = {
        "service": [],
        "service_1": [],
        "direct": [],
        "direct_1": [],
        "raw": [],
        "health": [],
    }

    def health(conn: Any, _: Any) -> None:
        status, data = conn.request("GET", "/health")
        if status != 200:
            raise RuntimeError(f"GET /health answered {status}: {data[:300]!r}")

    def once(name: str, work: Any, make: Any, close: Any, c: int) -> None:
        items = items_for(n if c > 1 else max(20, n // 4))
        pids = process_ids(stack)
        cpu0 = cpu_seconds(pids)
        t0, t1, _, lat = run_closed_loop(items, work, c, make, close)
        cpu = cpu_share(cpu0, cpu_seconds(pids), t1 - t0)
        runs[name].append({"per_s": len(items) / (t1 - t0), "latency_ms": latency_ms(lat), "cpu_cores": cpu})

    for r in range(repeats):
        once("service", service_check, stack.http, lambda c: c.close(), conc)
        once("direct", direct_check, make_ledger, None, conc)
        once("service_1", service_check, stack.http, lambda c: c.close(), 1)
        once("direct_1", direct_check, make_ledger, None, 1)
        once("raw", raw_call, lambda: Rpc(stack.anvil.url), lambda c: c.close(), conc)
        once("health", health, stack.http, lambda c: c.close(), conc)
        log(
            f"scenario 2 {r + 1}/{repeats}: service {runs['service'][-1]['per_s']:.0f}/s "
            f"(p99 {runs['service'][-1]['latency_ms']['p99']:.1f} ms), direct {runs['direct'][-1]['per_s']:.0f}/s, "
            f"raw eth_call {runs['raw'][-1]['per_s']:.0f}/s, GET /health {runs['health'][-1]['per_s']:.0f}/s; "
            f"one client: service p99 "
            f"{runs['service_1'][-1]['latency_ms']['p99']:.1f} ms"
        )

    def stat(name: str, key: str) -> dict[str, Any]:
        if key == "per_s":
            return summary([x["per_s"] for x in runs[name]], "checks/s", 1)
        return summary([x["latency_ms"][key] for x in runs[name]], "ms", 2)

    rate, base = stat("service", "per_s"), stat("direct", "per_s")
    p99 = stat("service", "p99")
    return {
        "title": "Consent checks through the service (GET /consents/check), one uvicorn worker",
        "params": {
            "checks_per_run": n,
            "one_client_checks_per_run": max(20, n // 4),
            "client_threads": conc,
            "sample_in_force": f"{true}/{len(sample)}",
        },
        "product": {
            "checks_per_s": rate,
            "p50_ms": stat("service", "p50"),
            "p99_ms": p99,
            "one_client_p50_ms": stat("service_1", "p50"),
            "one_client_p99_ms": stat("service_1", "p99"),
            "reference_get_health_per_s": stat("health", "per_s"),
            **{
                f"cpu_cores_{k.replace(' ', '_')}": summary(
                    [x["cpu_cores"].get(k, 0.0) for x in runs["service"]], "cores", 2
                )
                for k in runs["service"][0]["cpu_cores"]
            },
        },
        "baseline": {
            "name": "the same check as a direct eth_call isInForce through the library (Ledger.consent_in_force)",
            "checks_per_s": base,
            "p50_ms": stat("direct", "p50"),
            "p99_ms": stat("direct", "p99"),
            "one_client_p99_ms": stat("direct_1", "p99"),
            "cpu_cores_bench_client": summary(
                [x["cpu_cores"].get("bench client", 0.0) for x in runs["direct"]], "cores", 2
            ),
            "raw_eth_call_per_s": stat("raw", "per_s"),
            "raw_eth_call_p99_ms": stat("raw", "p99"),
        },
        "ratio": {
            "checks_per_s": ratio(rate["median"], base["median"]),
            "checks_per_s_vs_raw_eth_call": ratio(rate["median"], stat("raw", "per_s")["median"]),
            "checks_per_s_vs_get_health": ratio(rate["median"], stat("health", "per_s")["median"]),
        },
        "targets": {"checks_per_s >= 3000": rate["median"] >= 3000, "p99_ms <= 10": p99["median"] <= 10},
        "runs": runs,
    }
