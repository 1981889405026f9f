"""Shared pieces of the benchmark harness: statistics, a keep-alive HTTP client, a raw JSON-RPC
client, the local stack (anvil, js-ipfs, the service as its own uvicorn process), RSS sampling,
and the description of the machine and the versions a run measured."""

from __future__ import annotations

import contextlib
import http.client
import importlib.metadata
import json
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ledger.chain.client import ChainClient
from ledger.chain.deployment import ensure_deployed
from ledger.core.config import load_settings
from ledger.devstack.nodes import AnvilNode, IpfsNode, free_port, free_ports
from ledger.services.ledger import Ledger
from ledger.storage.ipfs import IpfsStore

ROOT = Path(__file__).resolve().parent.parent

# anvil's second development account: the baseline relayer of scenario 1 uses it so that its
# transactions never race the service's relayer (anvil's first account) for nonces
ANVIL_SECOND_KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# statistics


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sequence."""
    s = sorted(values)
    if not s:
        raise ValueError("percentile of nothing")
    k = min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))
    return float(s[k])


def latency_ms(seconds: Sequence[float]) -> dict[str, float]:
    """p50 / p99 / max of latencies given in seconds, in milliseconds."""
    ms = [s * 1000 for s in seconds]
    return {
        "p50": round(percentile(ms, 50), 3),
        "p99": round(percentile(ms, 99), 3),
        "max": round(max(ms), 3),
        "n": len(ms),
    }


def summary(values: Sequence[float], unit: str, digits: int = 3) -> dict[str, Any]:
    """Median, spread (min, max, IQR) of one metric over the repeats."""
    vals = [float(v) for v in values]
    if not vals:
        raise ValueError("no values")
    q = statistics.quantiles(vals, n=4, method="inclusive") if len(vals) > 1 else [vals[0]] * 3
    return {
        "median": round(statistics.median(vals), digits),
        "min": round(min(vals), digits),
        "max": round(max(vals), digits),
        "iqr": round(q[2] - q[0], digits),
        "n": len(vals),
        "unit": unit,
        "values": [round(v, digits) for v in vals],
    }


def ratio(product: float, baseline: float) -> float | None:
    if not baseline:
        return None
    return round(product / baseline, 3)


# ---------------------------------------------------------------------------------------------
# clients


class Http:
    """One keep-alive HTTP/1.1 connection (not thread-safe: one per client thread)."""

    def __init__(self, host: str, port: int, timeout: float = 120.0) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.conn = http.client.HTTPConnection(host, port, timeout=timeout)

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        for attempt in range(2):
            try:
                self.conn.request(method, path, body=body, headers=headers)
                response = self.conn.getresponse()
                return response.status, response.read()
            except (http.client.HTTPException, ConnectionError):
                self.conn.close()
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def json(self, method: str, path: str, payload: Any = None) -> tuple[int, Any]:
        status, data = self.request(method, path, json.dumps(payload).encode() if payload is not None else None)
        return status, json.loads(data) if data else None

    def close(self) -> None:
        self.conn.close()


class Rpc:
    """Raw JSON-RPC over one keep-alive connection (the watcher's view of the chain)."""

    def __init__(self, url: str) -> None:
        hostport = url.split("://", 1)[1].rstrip("/")
        host, port = hostport.rsplit(":", 1)
        self.http = Http(host, int(port))
        self._id = 0

    def call(self, method: str, *params: Any) -> Any:
        self._id += 1
        status, body = self.http.json(
            "POST", "/", {"jsonrpc": "2.0", "id": self._id, "method": method, "params": list(params)}
        )
        if status != 200 or "error" in body:
            raise RuntimeError(f"{method} failed: {status} {body}")
        return body["result"]

    def close(self) -> None:
        self.http.close()


def run_closed_loop(
    items: Sequence[Any],
    work: Callable[[Any, Any], None],
    concurrency: int,
    make_state: Callable[[], Any],
    close_state: Callable[[Any], None] | None = None,
) -> tuple[float, float, list[float], list[float]]:
    """Run ``work(state, item)`` for every item on ``concurrency`` threads, each with its own
    ``make_state()`` (a connection). Returns (first start, last end, start times, latencies)."""
    n = len(items)
    starts = [0.0] * n
    lat = [0.0] * n
    counter = iter(range(n))
    lock = threading.Lock()
    errors: list[BaseException] = []
    states = [make_state() for _ in range(concurrency)]
    barrier = threading.Barrier(concurrency + 1)

    def loop(state: Any) -> None:
        barrier.wait()
        while True:
            with lock:
                i = next(counter, None)
            if i is None or errors:
                return
            t = time.perf_counter()
            try:
                work(state, items[i])
            except BaseException as exc:  # surfaced after the run
                errors.append(exc)
                return
            starts[i] = t
            lat[i] = time.perf_counter() - t

    threads = [threading.Thread(target=loop, args=(s,), daemon=True) for s in states]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    t1 = time.perf_counter()
    if close_state is not None:
        for s in states:
            close_state(s)
    if errors:
        raise errors[0]
    return t0, t1, starts, lat


def parallel_map(fn: Callable[[Any], Any], items: Iterable[Any], workers: int) -> list[Any]:
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(fn, items))


# ---------------------------------------------------------------------------------------------
# memory sampling


#: processes measured without their children (the bench process is the parent of every node)
OWN_ONLY = {"bench client"}


class RssSampler:
    """Samples the resident set size of named processes (with their children, except those in
    OWN_ONLY) every ``interval``."""

    def __init__(self, pids: dict[str, int], interval: float = 0.1) -> None:
        import psutil

        self._psutil = psutil
        self.pids = dict(pids)
        self.interval = interval
        self.samples: dict[str, list[int]] = {name: [] for name in pids}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def rss(self, pid: int, children: bool = True) -> int:
        try:
            proc = self._psutil.Process(pid)
            total = proc.memory_info().rss
            for child in proc.children(recursive=True) if children else ():
                with contextlib.suppress(self._psutil.Error):
                    total += child.memory_info().rss
            return int(total)
        except self._psutil.Error:
            return 0

    def sample_once(self) -> dict[str, int]:
        out = {name: self.rss(pid, children=name not in OWN_ONLY) for name, pid in self.pids.items()}
        for name, value in out.items():
            if value:
                self.samples[name].append(value)
        return out

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample_once()
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def peak_mib(self, name: str) -> float:
        values = self.samples.get(name) or [0]
        return round(max(values) / 2**20, 1)


def cpu_seconds(pids: dict[str, int]) -> dict[str, float]:
    """User + system CPU seconds consumed so far by each named process (with its children, except
    those in OWN_ONLY)."""
    import psutil

    out: dict[str, float] = {}
    for name, pid in pids.items():
        total = 0.0
        try:
            proc = psutil.Process(pid)
            procs = [proc] if name in OWN_ONLY else [proc, *proc.children(recursive=True)]
        except psutil.Error:
            procs = []
        for p in procs:
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except psutil.Error:
                pass
        out[name] = total
    return out


def cpu_share(before: dict[str, float], after: dict[str, float], seconds: float) -> dict[str, float]:
    """Cores each process kept busy over ``seconds`` (1.0 = one core fully)."""
    return {name: round((after[name] - before[name]) / seconds, 2) for name in before if name in after}


def mib(value: int) -> float:
    return round(value / 2**20, 1)


# ---------------------------------------------------------------------------------------------
# the stack


@dataclass
class Stack:
    """anvil and js-ipfs on free ports under ``workdir`` (started through ledger.nodes), the
    contracts deployed, a library Ledger for the baselines, and the service in its own process."""

    workdir: Path
    batch_size: int
    batch_delay: float
    anvil: Any = None
    ipfs: Any = None
    settings: Any = None
    ledger: Any = None
    store: Any = None
    record: Any = None
    service: subprocess.Popen[bytes] | None = None
    service_port: int = 0
    service_log: Path | None = None
    timings: dict[str, float] = field(default_factory=dict)

    def start_nodes(self) -> None:
        t = time.perf_counter()
        # no state file: the chain lives only as long as the run (nothing is written every 5 s)
        self.anvil = AnvilNode(self.workdir / "anvil", free_port(), None, silent=True)
        self.anvil.start()
        self.timings["anvil_start_s"] = round(time.perf_counter() - t, 2)
        t = time.perf_counter()
        api, gateway, rpc = free_ports(3)
        self.ipfs = IpfsNode(self.workdir / "ipfs", api, gateway, rpc)
        self.ipfs.start()
        self.timings["ipfs_start_s"] = round(time.perf_counter() - t, 2)
        self.settings = load_settings(
            env={},
            rpc_url=self.anvil.url,
            ipfs_api=self.ipfs.api_multiaddr,
            data_dir=str(self.workdir / "data"),
            manage_nodes=False,
            batch_size=self.batch_size,
            batch_delay=self.batch_delay,
            ipfs_timeout=10.0,
        )
        t = time.perf_counter()
        self.record = ensure_deployed(self.settings)
        self.timings["deploy_s"] = round(time.perf_counter() - t, 2)
        self.store = IpfsStore(self.ipfs.api_multiaddr, timeout=10.0)
        # the bench's own library client relays with anvil's second account: its transactions never
        # take a nonce the service's relayer (the first account) expects
        client = ChainClient(self.settings, private_key=ANVIL_SECOND_KEY)
        self.ledger = Ledger(self.settings, client, ipfs=self.store)

    def service_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "MEDLEDGER_RPC_URL": self.anvil.url,
                "MEDLEDGER_IPFS_API": self.ipfs.api_multiaddr,
                "MEDLEDGER_DATA_DIR": str(self.settings.data_dir),
                "MEDLEDGER_MANAGE_NODES": "false",
                "MEDLEDGER_BATCH_SIZE": str(self.batch_size),
                "MEDLEDGER_BATCH_DELAY": str(self.batch_delay),
                "MEDLEDGER_CONFIG": str(self.workdir / "no-config.toml"),
                "PYTHONUNBUFFERED": "1",
            }
        )
        return env

    def start_service(self) -> None:
        self.service_port = free_port()
        self.service_log = self.workdir / "service.log"
        t = time.perf_counter()
        handle = open(self.service_log, "ab")  # noqa: SIM115 - kept open for the child's lifetime
        # one uvicorn worker, access log off (log level warning), as `medledger serve` runs it
        self.service = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "api.app:create_app",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.service_port),
                "--log-level",
                "warning",
            ],
            cwd=str(ROOT),
            env=self.service_env(),
            stdout=handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        handle.close()
        deadline = time.monotonic() + 90
        last = ""
        while time.monotonic() < deadline:
            if self.service.poll() is not None:
                raise RuntimeError(f"the service exited during start-up:\n{self.tail_log()}")
            try:
                client = Http("127.0.0.1", self.service_port, timeout=5)
                status, body = client.request("GET", "/ready")
                client.close()
                if status == 200:
                    self.timings["service_start_s"] = round(time.perf_counter() - t, 2)
                    return
                last = body.decode(errors="replace")[:300]
            except OSError as exc:
                last = str(exc)
            time.sleep(0.2)
        raise RuntimeError(f"the service is not ready after 90 s: {last}\n{self.tail_log()}")

    def tail_log(self, lines: int = 30) -> str:
        if self.service_log is None or not self.service_log.exists():
            return ""
        return "\n".join(self.service_log.read_text(errors="replace").splitlines()[-lines:])

    def http(self) -> Http:
        return Http("127.0.0.1", self.service_port)

    @property
    def index_path(self) -> Path:
        return Path(self.settings.index_path)

    def indexed_block(self) -> int:
        """The service indexer's last indexed block, read from its SQLite file."""
        try:
            con = sqlite3.connect(f"file:{self.index_path}?mode=ro", uri=True, timeout=1.0)
            try:
                row = con.execute("SELECT value FROM meta WHERE key = 'last_block'").fetchone()
            finally:
                con.close()
        except sqlite3.Error:
            return -1
        return int(row[0]) if row else -1

    def stop(self) -> None:
        if self.service is not None and self.service.poll() is None:
            self.service.terminate()
            try:
                self.service.wait(20)
            except subprocess.TimeoutExpired:
                self.service.kill()
                self.service.wait(5)
        if self.store is not None:
            with contextlib.suppress(Exception):
                self.store.close()
        for node in (self.ipfs, self.anvil):
            if node is not None:
                with contextlib.suppress(Exception):
                    node.stop()


# ---------------------------------------------------------------------------------------------
# what the run measured on


def _first_line(command: list[str]) -> str | None:
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (out.stdout or out.stderr).strip()
    return text.splitlines()[0].strip() if text else None


def _package_json_version(name: str) -> str | None:
    try:
        return str(json.loads((ROOT / "node_modules" / name / "package.json").read_text())["version"])
    except (OSError, ValueError, KeyError):
        return None


def machine() -> dict[str, Any]:
    import psutil

    model = None
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_count": os.cpu_count(),
        "cpu_model": model or platform.processor(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "kernel": platform.release(),
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
    }


def versions(stack: Stack | None) -> dict[str, Any]:
    def pkg(name: str) -> str | None:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return None

    out: dict[str, Any] = {
        "python": platform.python_version(),
        "web3": pkg("web3"),
        "eth-account": pkg("eth-account"),
        "fastapi": pkg("fastapi"),
        "uvicorn": pkg("uvicorn"),
        "pydantic": pkg("pydantic"),
        "sqlite": sqlite3.sqlite_version,
        "node": _first_line(["node", "--version"]),
        "anvil": _first_line([str(ROOT / "node_modules" / ".bin" / "anvil"), "--version"]),
        "js-ipfs": _package_json_version("ipfs"),
        "solc": None,
        "sha256sum": _first_line(["sha256sum", "--version"]),
        "uvicorn_extras": {"httptools": pkg("httptools"), "uvloop": pkg("uvloop")},
    }
    if stack is not None and stack.record is not None:
        out["solc"] = stack.record.compiler
    return out


def commit() -> dict[str, Any]:
    def git(*args: str) -> str:
        try:
            return subprocess.run(
                ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=20, check=False
            ).stdout.rstrip("\n")
        except (OSError, subprocess.TimeoutExpired):
            return ""

    dirty = [line[3:] for line in git("status", "--porcelain", "--untracked-files=no").splitlines() if line]
    return {
        "hash": git("rev-parse", "HEAD").strip() or None,
        "branch": git("rev-parse", "--abbrev-ref", "HEAD").strip() or None,
        "modified_tracked_files": dirty,
    }


def have(tool: str) -> bool:
    return shutil.which(tool) is not None
