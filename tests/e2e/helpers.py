"""What the end-to-end tests share: the service as a uvicorn process configured by ``MEDLEDGER_*``
variables (as ``./run.sh`` starts it) and reached through the project's client, the demo script as
a module, settings for another service on the same chain, polling."""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ledger.client.http import ServiceClient
from ledger.core.errors import NodeUnavailable
from ledger.devstack.nodes import free_port

if TYPE_CHECKING:
    from ledger.core.config import Settings

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = PROJECT_ROOT / "scripts"
T = TypeVar("T")


def import_demo() -> Any:
    """``scripts/demo.py`` as a module (the demo is a script, not a package)."""
    if str(SCRIPTS) not in sys.path:
        sys.path.insert(0, str(SCRIPTS))
    return importlib.import_module("demo")


def settings_for(base: Settings, data_dir: Path) -> Settings:
    """Settings for another service on the same chain and deployment, with its own data dir
    (relay queue, index)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    return replace(base, data_dir=data_dir, deployment_file=base.deployment_path)


def wait_until(predicate: Callable[[], T], timeout: float = 30.0, what: str = "condition") -> T:
    """Poll ``predicate`` until it returns something truthy; return that."""
    deadline = time.monotonic() + timeout
    last: T = predicate()
    while not last:
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout:g} s (last: {last!r})")
        time.sleep(0.2)
        last = predicate()
    return last


def _die_with_parent() -> None:
    """In the child: SIGTERM when the test process dies, so a killed run leaks no service."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class ServiceProcess:
    """``uvicorn api.app:create_app --factory`` on a free port: the app's real lifespan (relay
    worker and indexer), configured through the environment."""

    def __init__(self, settings: Settings, port: int | None = None) -> None:
        self.settings = settings
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_file = settings.data_dir / f"service-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MEDLEDGER_")}
        s = self.settings
        env.update(
            MEDLEDGER_DATA_DIR=str(s.data_dir),
            MEDLEDGER_DEPLOYMENT_FILE=str(s.deployment_path),
            MEDLEDGER_RPC_URL=s.rpc_url,
            MEDLEDGER_CHAIN_ID=str(s.chain_id),
            MEDLEDGER_IPFS_API=s.ipfs_api,
            MEDLEDGER_IPFS_TIMEOUT=str(s.ipfs_timeout),
            MEDLEDGER_MANAGE_NODES="false",
            MEDLEDGER_BATCH_DELAY=str(s.batch_delay),
            MEDLEDGER_BATCH_SIZE=str(s.batch_size),
            MEDLEDGER_API_HOST="127.0.0.1",
            MEDLEDGER_API_PORT=str(self.port),
            MEDLEDGER_CONFIG=str(s.data_dir / "no-such-config.toml"),
        )
        return env

    def start(self, timeout: float = 90.0) -> ServiceProcess:
        command = [sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory"]
        command += ["--host", "127.0.0.1", "--port", str(self.port)]
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "ab") as log:
            self.process = subprocess.Popen(
                command,
                cwd=str(PROJECT_ROOT),
                env=self.environment(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )
        deadline = time.monotonic() + timeout
        with self.client(timeout=3) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"the service exited with {self.process.returncode}:\n{self.log_tail()}")
                with contextlib.suppress(NodeUnavailable):
                    if client.ready().get("status") == "ready":
                        return self
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"the service was not ready within {timeout:g} s:\n{self.log_tail()}")

    def client(self, **options: Any) -> ServiceClient:
        """The project's HTTP client of this service (the caller closes it)."""
        return ServiceClient(self.url, **options)

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM (the lifespan closes the queue and stops the indexer); returns the exit code."""
        if self.process is None:
            return None
        code = self.process.poll()
        if code is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                code = self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                code = self.process.wait(5)
        self.process = None
        return code

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def __enter__(self) -> ServiceProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
