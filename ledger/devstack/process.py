"""A local node as a managed process: what anvil and js-ipfs nodes share.

- **Idempotent start.** If the port already answers as the expected node, it is reused rather than
  spawned again; if it answers as something else, start fails with a message naming the port. Two
  processes starting the same node at once are serialised by a lock file (:func:`file_lock`).
- **Findable.** Each node writes a pid file (JSON: pid, port, command) next to its log, so a second CLI
  process can find and stop a node it did not start; ``stop()`` stops what this object started or what
  the pid file names, and never a node that merely happens to answer on the port.
- **No leaks.** By default a node is tied to this process: the kernel sends it SIGTERM when the parent
  dies (``PR_SET_PDEATHSIG``, set only when starting from the main thread) and an ``atexit`` hook stops
  it on a normal exit. ``detach=True`` (the CLI's ``node start``) lets it outlive the process.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import fcntl
import json
import os
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ledger.core.config import PROJECT_ROOT
from ledger.core.errors import ConfigurationError, NodeStartFailed

_PR_SET_PDEATHSIG = 1


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


def post_json(url: str, body: dict[str, Any] | None, timeout: float) -> Any:
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
def file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class ManagedNode:
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
