"""What the CLI tests share: the runner (in-process and as the console script), the anvil
development keys, synthetic cohort files."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ledger.cli import app

if TYPE_CHECKING:
    from typer.testing import Result

MNEMONIC = "test test test test test test test test test test test junk"
PASSWORD = "correct horse battery staple"
#: anvil development accounts: the CLI's relayer (also the deployer, hence the first admin) and the service's
CLI_RELAYER_INDEX = 3
SERVICE_RELAYER_INDEX = 4
PARTIES = ("hospital", "committee", "researcher", "regulator", "alice", "bob", "carol", "dan", "guardian")


def anvil_key(index: int) -> str:
    from eth_account import Account

    Account.enable_unaudited_hdwallet_features()
    account = Account.from_mnemonic(MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}")
    return "0x" + bytes(account.key).hex()


def console_script() -> str:
    """The installed `medledger` entry point next to the running interpreter."""
    path = Path(sys.executable).with_name("medledger")
    if not path.exists():
        found = shutil.which("medledger")
        # scripts/bootstrap.sh installs the project (pip install -e .): missing is a broken setup
        assert found is not None, "the medledger console script is not installed: run scripts/bootstrap.sh"
        return found
    return str(path)


@dataclass
class Cli:
    """Runs the CLI with a fixed environment: in-process (``run``) or as a subprocess (``spawn``)."""

    env: dict[str, str]
    data_dir: Path
    addresses: dict[str, str] = field(default_factory=dict)
    timings: list[tuple[float, str]] = field(default_factory=list)

    def _env(self, extra: Mapping[str, str | None] | None) -> dict[str, str | None]:
        # clear every MEDLEDGER_* of the outer environment, then set ours
        out: dict[str, str | None] = {k: None for k in os.environ if k.startswith("MEDLEDGER_")}
        out.update(self.env)
        out.update(extra or {})
        return out

    def run(self, *args: str, expect: int | None = 0, env: Mapping[str, str | None] | None = None) -> Result:
        """Invoke in-process; assert the exit code (unless ``expect`` is None)."""
        from typer.testing import CliRunner

        started = time.monotonic()
        result = CliRunner().invoke(app, list(args), env=self._env(env))
        self.timings.append((time.monotonic() - started, " ".join(args)))
        if expect is not None and result.exit_code != expect:
            raise AssertionError(
                f"medledger {' '.join(args)} exited {result.exit_code}, expected {expect}\n"
                f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}\n--- exception {result.exception!r}"
            )
        return result

    def json(self, *args: str, expect: int | None = 0, env: Mapping[str, str | None] | None = None) -> Any:
        """Invoke with --json and parse stdout."""
        result = self.run("--json", *args, expect=expect, env=env)
        try:
            return json.loads(result.stdout)
        except ValueError as exc:
            raise AssertionError(f"not JSON: {result.stdout!r} (stderr {result.stderr!r})") from exc

    def spawn(
        self, *args: str, env: Mapping[str, str | None] | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """Run the installed console script as a subprocess."""
        merged = {k: v for k, v in os.environ.items() if not k.startswith("MEDLEDGER_")}
        merged.update({k: v for k, v in self._env(env).items() if v is not None})
        return subprocess.run(
            [console_script(), *args],
            env=merged,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def subprocess_env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        merged = {k: v for k, v in os.environ.items() if not k.startswith("MEDLEDGER_")}
        merged.update(self.env)
        merged.update(extra or {})
        return merged


def write_cohort(folder: Path, subjects: list[str], salt: str) -> None:
    """Synthetic CSV files of a cohort: subject addresses and made-up values, no names."""
    folder.mkdir(parents=True, exist_ok=True)
    visits = ["subject,visit,age_band,hba1c"]
    labs = ["subject,test,value,unit"]
    for i, s in enumerate(subjects):
        visits.append(f"{s},1,{40 + 10 * (i % 3)}-{49 + 10 * (i % 3)},{5.6 + i / 10:.1f}")
        labs.append(f"{s},ldl,{2.5 + i / 7:.2f},mmol/L")
    (folder / "visits.csv").write_text("\n".join(visits) + f"\n# batch {salt}\n")
    (folder / "labs").mkdir(exist_ok=True)
    (folder / "labs" / "lipids.csv").write_text("\n".join(labs) + "\n")
