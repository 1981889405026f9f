"""Local nodes for development and tests: anvil (chain) and js-ipfs (documents).

Why it works the way it does:

- **Idempotent start.** If the port already answers as the expected node (anvil with the expected chain
  id; the IPFS node whose peer id is this repo's), it is reused rather than spawned again; if it answers
  as something else, start fails with a message naming the port. Two processes starting the same node
  at once are serialised by a lock file.
- **Findable.** Each node writes a pid file (JSON: pid, port, command) next to its log, so a second CLI
  process can find and stop a node it did not start; ``stop()`` stops what this object started or what
  the pid file names, and never a node that merely happens to answer on the port.
- **No leaks.** By default a node is tied to this process: the kernel sends it SIGTERM when the parent
  dies (``PR_SET_PDEATHSIG``, set only when starting from the main thread) and an ``atexit`` hook stops
  it on a normal exit. ``detach=True`` (the
  CLI's ``node start``) lets it outlive the process.
- **Persistent anvil.** With a state file anvil loads it on start and writes it on SIGTERM/SIGINT (and
  every ``state_interval`` seconds, so a crash loses little). It runs with base fee 0 so that brownie's
  ``development`` network can attach to it (brownie sends legacy transactions priced for a 0 base fee)
  and so that gas prices never depend on chain history in tests.
- **js-ipfs quirks.** The repo is initialised once with the ``test`` profile; API, gateway and RPC are
  bound to 127.0.0.1 on the given ports, swarm addresses and bootstrap peers are emptied and the daemon
  runs ``--offline --enable-preload=false`` (without the latter every added CID is announced to public
  preload nodes). A daemon killed hard leaves ``repo.lock`` and ``api`` behind and refuses to start
  ("Lock already being held"); they are removed when no live process holds the repo.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ledger.core.config import PROJECT_ROOT, Settings
from ledger.core.errors import ConfigurationError, NodeStartFailed, NodeUnavailable

ANVIL_CHAIN_ID = 31337
_PR_SET_PDEATHSIG = 1


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (the OS's choice; racy only against other processes)."""
    return free_ports(1, host)[0]


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct free ports: the sockets are held until all are chosen so none repeats."""
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((host, 0))
            sockets.append(sock)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def node_binary(name: str) -> Path:
    """A tool installed by npm into the project (``node_modules/.bin/<name>``)."""
    path = PROJECT_ROOT / "node_modules" / ".bin" / name
    if not path.exists():
        raise ConfigurationError(f"{name} is not installed at {path}", hint="run scripts/bootstrap.sh")
    return path


def _die_with_parent() -> None:
    """Runs in the child between fork and exec: ask the kernel for SIGTERM when the parent dies."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is dead for our purposes
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read().replace(b"\x00", b" ").decode("utf-8", "replace")
    except OSError:
        return ""


def _tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _post_json(url: str, body: dict[str, Any] | None, timeout: float) -> Any:
    """POST and decode JSON; None if nothing listens. Raises ValueError if the answer is not JSON."""
    data = json.dumps(body).encode() if body is not None else b""
    request = urllib.request.Request(url, data=data, method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise ValueError(f"HTTP {exc.code}") from exc
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return None


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# ---------------------------------------------------------------------------------------------
# a managed process
# ---------------------------------------------------------------------------------------------


class _ManagedNode:
    """Spawning, pid file, stopping: what anvil and js-ipfs nodes share."""

    #: a word the process's command line contains, to tell our node from a recycled pid
    process_marker = ""
    name = "node"

    def __init__(self, *, log_file: Path, pid_file: Path, detach: bool, startup_timeout: float) -> None:
        self.log_file = log_file
        self.pid_file = pid_file
        self.detach = detach
        self.startup_timeout = startup_timeout
        self._process: subprocess.Popen[bytes] | None = None
        #: True when start() found the node already running instead of spawning it
        self.reused = False
        self._atexit_registered = False

    # -- pid file -----------------------------------------------------------------------------

    def _read_pid_file(self) -> dict[str, Any] | None:
        try:
            record = json.loads(self.pid_file.read_text())
        except (OSError, ValueError):
            return None
        return record if isinstance(record, dict) and isinstance(record.get("pid"), int) else None

    def recorded_pid(self) -> int | None:
        """The pid in the pid file if that process is alive and is this kind of node."""
        record = self._read_pid_file()
        if record is None:
            return None
        pid = int(record["pid"])
        if not _pid_alive(pid) or self.process_marker not in _cmdline(pid):
            return None
        return pid

    def _write_pid_file(self, pid: int, command: list[str], port: int) -> None:
        record = {"pid": pid, "port": port, "command": command, "started": time.time()}
        temporary = self.pid_file.with_suffix(".tmp")
        temporary.write_text(json.dumps(record))
        temporary.replace(self.pid_file)

    @property
    def pid(self) -> int | None:
        if self._process is not None and self._process.poll() is None:
            return self._process.pid
        return self.recorded_pid()

    # -- spawning and stopping ----------------------------------------------------------------

    def _spawn(self, command: list[str], env: dict[str, str] | None, port: int) -> subprocess.Popen[bytes]:
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        # PR_SET_PDEATHSIG fires when the *thread* that forked exits, so it is only safe from the main
        # thread; a node started elsewhere is still stopped by the atexit hook.
        tie_to_parent = not self.detach and threading.current_thread() is threading.main_thread()
        with open(self.log_file, "ab") as log:
            log.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting: {' '.join(command)}\n".encode())
            log.flush()
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=str(self.log_file.parent),
                start_new_session=True,  # its own process group: stop() signals the group, ^C does not
                preexec_fn=_die_with_parent if tie_to_parent else None,
            )
        self._process = process
        self._write_pid_file(process.pid, command, port)
        if not self.detach and not self._atexit_registered:
            atexit.register(self.stop)
            self._atexit_registered = True
        return process

    def _wait_until(self, ready: Callable[[], bool], what: str) -> None:
        """Poll ``ready()`` until it is true; fail fast with the log tail if the process exits."""
        deadline = time.monotonic() + self.startup_timeout
        delay = 0.01
        while time.monotonic() < deadline:
            if ready():
                return
            if self._process is not None and self._process.poll() is not None:
                code = self._process.returncode
                self._forget()
                raise NodeStartFailed(f"{self.name} exited with code {code} before {what}:\n{_tail(self.log_file)}")
            time.sleep(delay)
            delay = min(delay * 1.5, 0.1)
        self.stop()
        raise NodeStartFailed(
            f"{self.name} did not become ready within {self.startup_timeout:g} s ({what}):\n{_tail(self.log_file)}"
        )

    def _forget(self) -> None:
        self._process = None
        with contextlib.suppress(OSError):
            self.pid_file.unlink()

    def stop(self, timeout: float = 15.0) -> bool:
        """Stop the node this object started, or the one the pid file names (started by another
        process). A node that was only found answering on the port is left alone. Returns whether a
        process was stopped."""
        pid = self.pid
        if pid is None:
            self._forget()
            return False
        self._signal(pid, signal.SIGTERM)
        if not self._wait_exit(pid, timeout):
            self._signal(pid, signal.SIGKILL)
            self._wait_exit(pid, 5.0)
        self._after_stop()
        self._forget()
        return True

    def _signal(self, pid: int, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            # the node leads its own session, so its group id is its pid; signal children too
            if os.getpgid(pid) == pid:
                os.killpg(pid, sig)
            else:
                os.kill(pid, sig)

    def _wait_exit(self, pid: int, timeout: float) -> bool:
        if self._process is not None and self._process.pid == pid:
            try:
                self._process.wait(timeout)
                return True
            except subprocess.TimeoutExpired:
                return False
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not _pid_alive(pid):
                return True
            time.sleep(0.05)
        return False

    def _after_stop(self) -> None:
        """Hook for cleanup after the process is gone."""

    def kill(self) -> None:
        """SIGKILL the node without letting it clean up (tests use this to simulate a crash)."""
        pid = self.pid
        if pid is not None:
            self._signal(pid, signal.SIGKILL)
            self._wait_exit(pid, 5.0)
        self._process = None

    @property
    def running(self) -> bool:
        raise NotImplementedError


# ---------------------------------------------------------------------------------------------
# anvil
# ---------------------------------------------------------------------------------------------


class AnvilNode(_ManagedNode):
    """anvil on ``127.0.0.1:port`` with chain id 31337 and base fee 0, optionally persisted to
    ``state_file``. Logs go to ``data_dir/anvil.log``, the pid file is ``data_dir/anvil.pid``."""

    process_marker = "anvil"
    name = "anvil"

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        port: int = 8545,
        state_file: str | os.PathLike[str] | None = None,
        *,
        chain_id: int = ANVIL_CHAIN_ID,
        state_interval: int | None = 5,
        preserve_historical_states: bool = False,
        silent: bool = False,
        detach: bool = False,
        startup_timeout: float = 15.0,
        binary: str | os.PathLike[str] | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        super().__init__(
            log_file=self.data_dir / "anvil.log",
            pid_file=self.data_dir / "anvil.pid",
            detach=detach,
            startup_timeout=startup_timeout,
        )
        self.port = port
        self.state_file = Path(state_file) if state_file is not None else None
        self.chain_id = chain_id
        self.state_interval = state_interval
        self.preserve_historical_states = preserve_historical_states
        self.silent = silent
        self._binary = Path(binary) if binary is not None else None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def chain_id_answer(self, timeout: float = 0.5) -> int | None:
        """The chain id the port reports, or None if nothing answers; NodeUnavailable if something
        that is not an Ethereum node answers."""
        try:
            answer = _post_json(self.url, {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}, timeout)
        except ValueError as exc:
            raise NodeUnavailable(f"port {self.port} answers, but not as an Ethereum JSON-RPC node ({exc})") from exc
        if answer is None:
            return None
        try:
            return int(answer["result"], 16)
        except (KeyError, TypeError, ValueError) as exc:
            raise NodeUnavailable(f"port {self.port} answers, but not as an Ethereum JSON-RPC node") from exc

    @property
    def running(self) -> bool:
        try:
            return self.chain_id_answer() == self.chain_id
        except NodeUnavailable:
            return False

    def command(self) -> list[str]:
        binary = self._binary or node_binary("anvil")
        command = [
            str(binary),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--chain-id",
            str(self.chain_id),
            "--block-base-fee-per-gas",
            "0",
        ]
        if self.state_file is not None:
            command += ["--state", str(self.state_file)]
            if self.state_interval:
                command += ["--state-interval", str(self.state_interval)]
            if self.preserve_historical_states:
                command.append("--preserve-historical-states")
        if self.silent:
            command.append("--silent")
        return command

    def start(self) -> AnvilNode:
        """Start anvil, or reuse the one already answering with the expected chain id."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with _file_lock(self.data_dir / "anvil.start.lock"):
            answer = self.chain_id_answer()
            if answer is not None:
                if answer != self.chain_id:
                    raise NodeUnavailable(
                        f"port {self.port} already serves a chain with id {answer}, not {self.chain_id}",
                        hint="choose another anvil_port or stop that node",
                    )
                self.reused = True
                return self
            if port_in_use(self.port):
                raise NodeStartFailed(f"port {self.port} is in use by something that is not an Ethereum node")
            if self.state_file is not None:
                self.state_file.parent.mkdir(parents=True, exist_ok=True)
            self.reused = False
            self._spawn(self.command(), None, self.port)
            self._wait_until(self._answers_safely, f"answering eth_chainId on port {self.port}")
        return self

    def _answers_safely(self) -> bool:
        try:
            return self.chain_id_answer(timeout=0.3) == self.chain_id
        except NodeUnavailable:
            return False

    def __enter__(self) -> AnvilNode:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ---------------------------------------------------------------------------------------------
# js-ipfs
# ---------------------------------------------------------------------------------------------


class IpfsNode(_ManagedNode):
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
            answer = _post_json(url, None, 1.0)
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
        with _file_lock(self.repo_dir.with_name(self.repo_dir.name + ".start.lock")):
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


# ---------------------------------------------------------------------------------------------
# both
# ---------------------------------------------------------------------------------------------


class LocalStack:
    """anvil and js-ipfs as the settings describe them: under ``settings.data_dir`` (anvil state in
    ``anvil-state.json``, IPFS repo in ``ipfs/``), on ``anvil_port`` and the ``ipfs_*_port`` s."""

    def __init__(self, settings: Settings, *, detach: bool = False) -> None:
        if not settings.manage_nodes:
            raise ConfigurationError(
                "manage_nodes is false: the chain and IPFS nodes are external",
                hint="set MEDLEDGER_MANAGE_NODES=true to run local nodes",
            )
        self.settings = settings
        data_dir = settings.data_dir
        self.anvil = AnvilNode(
            data_dir,
            settings.anvil_port,
            data_dir / "anvil-state.json",
            chain_id=settings.chain_id,
            detach=detach,
        )
        self.ipfs = IpfsNode(
            data_dir / "ipfs",
            settings.ipfs_api_port,
            settings.ipfs_gateway_port,
            settings.ipfs_rpc_port,
            detach=detach,
        )

    @property
    def rpc_url(self) -> str:
        return self.anvil.url

    @property
    def ipfs_api(self) -> str:
        return self.ipfs.api_multiaddr

    @property
    def gateway_url(self) -> str:
        return self.ipfs.gateway_url

    def start(self) -> LocalStack:
        """Start both (anvil takes a fraction of a second, js-ipfs a few seconds). Sequential on
        purpose: a node started from a short-lived thread would be tied to that thread's life."""
        self.anvil.start()
        self.ipfs.start()
        return self

    def stop(self) -> None:
        self.anvil.stop()
        self.ipfs.stop()

    def status(self) -> dict[str, Any]:
        return {
            "anvil": {"url": self.rpc_url, "running": self.anvil.running, "pid": self.anvil.pid},
            "ipfs": {"api": self.ipfs_api, "running": self.ipfs.running, "pid": self.ipfs.pid},
        }

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
