"""Scenario 6: the content root of a large folder (ledger.files.hash_folder + ledger.merkle) against
``sha256sum`` over the same files, with the peak RSS of each in its own child process."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from bench_common import ROOT, have, log, ratio, summary

HASH_SCRIPT = r"""
import json, sys, time
from ledger.content.files import hash_folder
from ledger.content.merkle import content_tree

folder, mode = sys.argv[1], sys.argv[2]
out = {"seconds": 0.0, "files": 0, "root": None, "entries": None}
if mode == "hash":
    t = time.perf_counter()
    entries = hash_folder(folder)
    root = content_tree(e.leaf() for e in entries).root
    out.update(seconds=time.perf_counter() - t, files=len(entries), root="0x" + root.hex(),
               entries={e.path: e.sha256 for e in entries})
# VmHWM is this program's own peak (ru_maxrss would include the parent's pages from before exec)
with open("/proc/self/status") as handle:
    out["vmhwm_kib"] = next(int(line.split()[1]) for line in handle if line.startswith("VmHWM:"))
print(json.dumps(out))
"""

BIG_FILE = 16 << 20


def make_folder(folder: Path, total_mib: int) -> tuple[list[str], int]:
    """16 MiB files of random bytes filling ``total_mib``, plus 100 small files in sub-folders."""
    folder.mkdir(parents=True, exist_ok=True)
    paths: list[str] = []
    size = 0
    for i in range(max(1, (total_mib << 20) // BIG_FILE)):
        rel = f"images/scan-{i:04d}.bin"
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        with open(folder / rel, "wb") as handle:
            for _ in range(BIG_FILE >> 20):
                handle.write(os.urandom(1 << 20))
        paths.append(rel)
        size += BIG_FILE
    for i in range(100):
        rel = f"records/{i % 10}/record-{i:03d}.csv"
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        data = os.urandom(2048).hex().encode()
        (folder / rel).write_bytes(data)
        paths.append(rel)
        size += len(data)
    return sorted(paths), size


def _vmhwm_kib(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def _run_child(command: list[str], cwd: Path) -> tuple[float, int, bytes]:
    """Run a child; return (wall seconds, its peak RSS in KiB, stdout). The peak is the child's
    VmHWM read every 10 ms while it runs (the high-water mark only grows, and a fork's
    ru_maxrss would count the parent's pages from before exec)."""
    t = time.perf_counter()
    proc = subprocess.Popen(command, cwd=str(cwd), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    peak = 0
    done = threading.Event()

    def watch() -> None:
        nonlocal peak
        while not done.is_set():
            value = _vmhwm_kib(proc.pid)
            if value is not None:
                peak = max(peak, value)
            done.wait(0.01)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    out, err = proc.communicate()
    wall = time.perf_counter() - t
    done.set()
    watcher.join()
    if proc.returncode != 0:
        raise RuntimeError(f"{command[0]} failed ({proc.returncode}): {err.decode(errors='replace')[-1000:]}")
    return wall, peak, out


def _library(folder: Path, mode: str) -> tuple[float, dict[str, Any]]:
    wall, rss, out = _run_child([sys.executable, "-c", HASH_SCRIPT, str(folder), mode], ROOT)
    result = json.loads(out.decode().strip().splitlines()[-1])
    result["peak_kib"] = max(rss, result["vmhwm_kib"])
    return wall, result


def _sha256sum(folder: Path, paths: list[str]) -> tuple[float, int, dict[str, str]]:
    wall, rss, out = _run_child(["sha256sum", "--", *paths], folder)
    digests = {}
    for line in out.decode().splitlines():
        digest, name = line.split(maxsplit=1)
        digests[name.lstrip("*")] = digest
    return wall, rss, digests


def scenario_hash(workdir: Path, cfg: dict[str, Any]) -> dict[str, Any]:
    if not have("sha256sum"):
        raise RuntimeError("sha256sum is not installed")
    total_mib = cfg["folder_mib"]
    small_mib = max(16, total_mib // 16)
    t = time.perf_counter()
    big, size = make_folder(workdir / "folder-big", total_mib)
    _small_paths, small_size = make_folder(workdir / "folder-small", small_mib)
    log(f"scenario 6: wrote {size / 2**20:.0f} MiB + {small_size / 2**20:.0f} MiB in {time.perf_counter() - t:.1f} s")
    _sha256sum(workdir / "folder-big", big)  # warm the page cache for both
    _, imported = _library(workdir / "folder-big", "import")
    product: list[dict[str, Any]] = []
    baseline: list[dict[str, Any]] = []
    small_rss: list[float] = []
    for r in range(cfg["repeats"]):
        order = ("lib", "sha") if r % 2 == 0 else ("sha", "lib")
        for which in order:
            if which == "lib":
                wall, res = _library(workdir / "folder-big", "hash")
                product.append(
                    {
                        "mib_per_s": size / 2**20 / res["seconds"],
                        "seconds": res["seconds"],
                        "wall_s": wall,
                        "rss_mib": res["peak_kib"] / 1024,
                        "files": res["files"],
                    }
                )
                if r == 0:
                    _, _, digests = _sha256sum(workdir / "folder-big", big)
                    if digests != res["entries"]:
                        raise RuntimeError("hash_folder and sha256sum disagree on the files' digests")
            else:
                wall, rss, _ = _sha256sum(workdir / "folder-big", big)
                baseline.append({"mib_per_s": size / 2**20 / wall, "seconds": wall, "rss_mib": rss / 1024})
        _, res_small = _library(workdir / "folder-small", "hash")
        small_rss.append(res_small["peak_kib"] / 1024)
        log(
            f"scenario 6 {r + 1}/{cfg['repeats']}: hash_folder {product[-1]['mib_per_s']:.0f} MiB/s "
            f"(RSS {product[-1]['rss_mib']:.0f} MiB), sha256sum {baseline[-1]['mib_per_s']:.0f} MiB/s"
        )
    for name in ("folder-big", "folder-small"):
        shutil.rmtree(workdir / name, ignore_errors=True)
    rate = summary([p["mib_per_s"] for p in product], "MiB/s", 1)
    base = summary([b["mib_per_s"] for b in baseline], "MiB/s", 1)
    ratio_v = ratio(rate["median"], base["median"])
    rss_big = summary([p["rss_mib"] for p in product], "MiB", 1)
    rss_small = summary(small_rss, "MiB", 1)
    return {
        "title": "Content root of a large folder (hash_folder + StandardMerkleTree) vs sha256sum",
        "params": {
            "folder_mib": round(size / 2**20, 1),
            "files": len(big),
            "small_folder_mib": round(small_size / 2**20, 1),
            "hash_threads": min(32, (os.cpu_count() or 2) * 2),
            "note": "page cache warm for both; library time measured inside its child (interpreter start "
            "and imports excluded, reported as wall_s in runs); peak RSS is each child's own VmHWM",
        },
        "product": {
            "mib_per_s": rate,
            "peak_rss_mib": rss_big,
            "peak_rss_small_folder_mib": rss_small,
            "rss_after_imports_only_mib": summary([imported["peak_kib"] / 1024], "MiB", 1),
        },
        "baseline": {
            "name": "sha256sum over the same files (one process, files in sequence)",
            "mib_per_s": base,
            "peak_rss_mib": summary([b["rss_mib"] for b in baseline], "MiB", 1),
        },
        "ratio": {
            "throughput_vs_sha256sum": ratio_v,
            "rss_big_over_small_folder": ratio(rss_big["median"], rss_small["median"]),
        },
        "targets": {
            "throughput >= 0.8 x sha256sum": (ratio_v or 0) >= 0.8,
            "peak RSS flat (big/small folder <= 1.1)": (ratio(rss_big["median"], rss_small["median"]) or 9) <= 1.1,
        },
        "runs": {"product": product, "baseline": baseline, "small_folder_rss_mib": small_rss},
    }
