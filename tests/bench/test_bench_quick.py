"""The benchmark harness in its smallest mode, so it cannot rot: every scenario must run against
the real stack and produce numbers for the product path, its baseline and their ratio. Timings
are not asserted (the machine is shared; the harness itself reports targets)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = (
    "1_consent_grants",
    "2_consent_checks",
    "3_dataset_registration",
    "4_lineage_verification",
    "5_audit_queries",
    "6_content_root",
    "7_memory",
)


def _metrics(side: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in side.values() if isinstance(m, dict) and "median" in m]


@pytest.mark.node  # bench.py starts its own anvil and js-ipfs in a child process
def test_quick_mode_produces_numbers_for_every_scenario(tmp_path: Path) -> None:
    run = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "bench.py"),
            "--quick",
            "--scale",
            "0.05",
            "--repeats",
            "1",
            "--out-dir",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    results = json.loads((tmp_path / "results.json").read_text())
    report = (tmp_path / "RESULTS.md").read_text()
    assert "## Summary" in report
    for key in ("nproc", "memory_gib", "cpu_model"):
        assert results["machine"][key]
    for key in ("python", "web3", "fastapi", "anvil", "js-ipfs", "solc"):
        assert results["versions"][key], key
    for name in SCENARIOS:
        scenario = results["scenarios"][name]
        assert "error" not in scenario, (name, scenario.get("error"))
        product, baseline = _metrics(scenario["product"]), _metrics(scenario["baseline"])
        assert product and baseline, name
        for metric in product + baseline:
            assert isinstance(metric["median"], (int, float)) and math.isfinite(metric["median"]), (name, metric)
            assert metric["min"] <= metric["median"] <= metric["max"], (name, metric)
        ratios = [v for v in scenario["ratio"].values() if isinstance(v, (int, float))]
        assert ratios, name
        assert f"### {name.split('_', 1)[0]}. " in report, name
    lineage = results["scenarios"]["4_lineage_verification"]["product"]
    assert lineage["rpc_calls"]["median"] > 0 and lineage["ipfs_calls"]["median"] > 0
