"""js-ipfs, the local document store.

The repo is initialised once with the ``test`` profile; API, gateway and RPC are bound to 127.0.0.1
on the given ports, swarm addresses and bootstrap peers are emptied and the daemon runs ``--offline
--enable-preload=false`` (without the latter every added CID is announced to public preload nodes).
A daemon killed hard leaves ``repo.lock`` and ``api`` behind and refuses to start ("Lock already
being held"); they are removed when no live process holds the repo. A port that already answers as
the node whose peer id is this repo's is reused.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from ledger.core.errors import ConfigurationError, NodeStartFailed, NodeUnavailable
from ledger.devstack.ports import port_in_use
from ledger.devstack.process import ManagedNode, file_lock, node_binary, post_json


class IpfsNode(ManagedNode):
    """A js-ipfs daemon over the repo ``repo_dir``, API/gateway/RPC on 127.0.0.1 at the given ports.
    Logs and pid file sit beside the repo: ``<repo_dir>.log``, ``<repo_dir>.pid``."""

    process_marker = "ipfs"
    name = "js-ipfs"

    def __init__(
        self,
        repo_dir: str | os.PathLike[str],
        api_port: int = 5002,
        gateway_port: int = 9090,
        rpc_port: int = 5003,
        *,
        detach: bool = False,
        startup_timeout: float = 60.0,
        binary: str | os.PathLike[str] | None = None,
    ) -> None:
        self.repo_dir = Path(repo_dir)
        super().__init__(
            log_file=self.repo_dir.with_name(self.repo_dir.name + ".log"),
            pid_file=self.repo_dir.with_name(self.repo_dir.name + ".pid"),
            detach=detach,
            startup_timeout=startup_timeout,
        )
        self.api_port = api_port
        self.gateway_port = gateway_port
        self.rpc_port = rpc_port
        self._binary = Path(binary) if binary is not None else None

    @property
    def api_multiaddr(self) -> str:
        return f"/ip4/127.0.0.1/tcp/{self.api_port}/http"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["IPFS_PATH"] = str(self.repo_dir)
        return env

    def _jsipfs(self) -> str:
        return str(self._binary or node_binary("jsipfs"))

    # -- repo ---------------------------------------------------------------------------------

    @property
    def initialised(self) -> bool:
        return (self.repo_dir / "config").exists()

    def peer_id(self) -> str | None:
        try:
            config = json.loads((self.repo_dir / "config").read_text())
            return str(config["Identity"]["PeerID"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def init(self) -> None:
        """``jsipfs init --profile test`` once, then bind the ports and cut every network tie."""
        if not self.initialised:
            self.repo_dir.parent.mkdir(parents=True, exist_ok=True)
            if self.repo_dir.exists() and any(self.repo_dir.iterdir()):
                raise ConfigurationError(f"{self.repo_dir} exists, is not empty and is not an IPFS repo")
            try:
                result = subprocess.run(
                    [self._jsipfs(), "init", "--profile", "test"],
                    env=self._env(),
                    stdin=subprocess.DEVNULL,
                    capture_output=True,
                    timeout=self.startup_timeout,
                    check=False,
                )
            except subprocess.TimeoutExpired as exc:
                raise NodeStartFailed(f"jsipfs init did not finish within {self.startup_timeout:g} s") from exc
            if result.returncode != 0 or not self.initialised:
                output = (result.stdout + result.stderr).decode(errors="replace").strip()
                raise NodeStartFailed(f"jsipfs init failed (exit {result.returncode}):\n{output[-2000:]}")
        self.configure()

    def configure(self) -> None:
        """Write the addresses into the repo config (only if they differ, so a running daemon's
        config file is left untouched when nothing changes)."""
        path = self.repo_dir / "config"
        config = json.loads(path.read_text())
        before = json.dumps(config, sort_keys=True)
        addresses = config.setdefault("Addresses", {})
        addresses["API"] = f"/ip4/127.0.0.1/tcp/{self.api_port}"
        addresses["Gateway"] = f"/ip4/127.0.0.1/tcp/{self.gateway_port}"
        addresses["RPC"] = f"/ip4/127.0.0.1/tcp/{self.rpc_port}"
        addresses["Swarm"] = []
        addresses["Announce"] = []
        addresses["Delegates"] = []
        config["Bootstrap"] = []
        discovery = config.setdefault("Discovery", {})
        discovery.setdefault("MDNS", {})["Enabled"] = False
        discovery.setdefault("webRTCStar", {})["Enabled"] = False
        if json.dumps(config, sort_keys=True) != before:
            temporary = path.with_suffix(".tmp")
            temporary.write_text(json.dumps(config, indent=2))
            temporary.replace(path)

    def clear_stale_lock(self) -> bool:
        """Remove ``repo.lock`` and ``api`` left by a daemon that died without cleaning up, if no live
        daemon holds the repo. Returns whether anything was removed."""
        lock = self.repo_dir / "repo.lock"
        api_file = self.repo_dir / "api"
        if not lock.exists() and not api_file.exists():
            return False
        if self.recorded_pid() is not None or self._identity() is not None:
            return False
        if api_file.exists():
            try:
                address = api_file.read_text().strip()
                parts = address.split("/")
                other_port = int(parts[4]) if len(parts) > 4 and parts[3] == "tcp" else None
            except (OSError, ValueError):
                other_port = None
            if other_port is not None and other_port != self.api_port and self._identity(other_port) is not None:
                raise NodeUnavailable(f"repo {self.repo_dir} is in use by a daemon with its API on port {other_port}")
        if lock.is_dir():
            shutil.rmtree(lock, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                lock.unlink()
        with contextlib.suppress(OSError):
            api_file.unlink()
        return True

    # -- daemon -------------------------------------------------------------------------------

    def _identity(self, port: int | None = None) -> dict[str, Any] | None:
        url = f"http://127.0.0.1:{port or self.api_port}/api/v0/id"
        try:
            answer = post_json(url, None, 1.0)
        except ValueError:
            return None
        return answer if isinstance(answer, dict) and "ID" in answer else None

    @property
    def running(self) -> bool:
        identity = self._identity()
        return identity is not None and identity.get("ID") == self.peer_id()

    def start(self) -> IpfsNode:
        """Initialise the repo if needed and start the daemon, or reuse the one already serving it."""
        self.repo_dir.parent.mkdir(parents=True, exist_ok=True)
        with file_lock(self.repo_dir.with_name(self.repo_dir.name + ".start.lock")):
            identity = self._identity()
            if identity is not None:
                if self.initialised and identity.get("ID") == self.peer_id():
                    self.reused = True
                    return self
                raise NodeUnavailable(
                    f"port {self.api_port} already serves another IPFS node ({identity.get('ID')})",
                    hint="choose other ipfs ports or stop that node",
                )
            for port in (self.api_port, self.gateway_port, self.rpc_port):
                if port_in_use(port):
                    raise NodeStartFailed(f"port {port} is in use; js-ipfs needs it", hint="choose other ipfs ports")
            self.init()
            self.clear_stale_lock()
            self.reused = False
            self._spawn([self._jsipfs(), "daemon", "--offline", "--enable-preload=false"], self._env(), self.api_port)
            self._wait_until(self._ready, f"answering /api/v0/id on port {self.api_port}")
        return self

    def _ready(self) -> bool:
        identity = self._identity()
        return identity is not None and identity.get("ID") == self.peer_id()

    def _after_stop(self) -> None:
        # a daemon that had to be killed leaves its lock behind; nothing holds the repo any more
        self.clear_stale_lock()

    def __enter__(self) -> IpfsNode:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
