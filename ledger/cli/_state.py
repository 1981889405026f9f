"""What every command shares: the global options, lazily built connections (settings, keystore,
ledger, IPFS store, service client), the acting party's key, output in human or JSON form, and
the exit codes."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from eth_account.signers.local import LocalAccount
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    SpinnerColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from ledger.chain.keystore import Keystore, keystore_dir, read_password_file
from ledger.client.problems import problem_of
from ledger.core.config import Settings, load_settings
from ledger.core.errors import ConfigurationError, InvalidInput, LedgerError

if TYPE_CHECKING:
    from ledger.cli._backend import Backend
    from ledger.client.http import ServiceClient
    from ledger.history.index import Indexer
    from ledger.services.ledger import Ledger
    from ledger.storage.ipfs import IpfsStore

#: exit codes
EXIT_OK = 0
EXIT_VERIFICATION_FAILED = 1
EXIT_USAGE = 2
EXIT_CANNOT_RUN = 3


def exit_code_for(exc: BaseException) -> int:
    """Bad input (an argument, a file named on the command line, an unknown key alias) is a usage
    error; anything else that stops a command from running is 'could not run'."""
    if isinstance(exc, InvalidInput):
        return EXIT_USAGE
    return EXIT_CANNOT_RUN


@dataclass
class State:
    """The global options and what is built from them on first use."""

    json: bool = False
    service_url: str | None = None
    key: str | None = None
    password_file: Path | None = None
    wait: bool = True
    timeout: float = 120.0
    _settings: Settings | None = field(default=None, repr=False)
    _keystore: Keystore | None = field(default=None, repr=False)
    _ledger: Ledger | None = field(default=None, repr=False)
    _ipfs: IpfsStore | None = field(default=None, repr=False)
    _service: ServiceClient | None = field(default=None, repr=False)
    _indexer: Indexer | None = field(default=None, repr=False)
    _actor: LocalAccount | None = field(default=None, repr=False)
    _closers: list[Callable[[], None]] = field(default_factory=list, repr=False)

    # -- configuration -------------------------------------------------------------------------

    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings()
        return self._settings

    def keystore(self) -> Keystore:
        if self._keystore is None:
            self._keystore = Keystore(keystore_dir(self.settings().data_dir))
        return self._keystore

    def password(self, *, what: str, confirm: bool = False) -> str:
        """--password-file, then MEDLEDGER_PASSWORD, then a hidden prompt on a terminal."""
        if self.password_file is not None:
            return read_password_file(self.password_file)
        env = os.environ.get("MEDLEDGER_PASSWORD")
        if env is not None:
            return env
        if not sys.stdin.isatty():
            raise ConfigurationError(
                f"a password is needed for {what} and there is no terminal to ask on",
                hint="give --password-file FILE or set MEDLEDGER_PASSWORD",
            )
        value: str = typer.prompt(f"Password for {what}", hide_input=True, confirmation_prompt=confirm)
        return value

    # -- the acting party ----------------------------------------------------------------------

    def actor(self) -> LocalAccount:
        """The key named by --key, decrypted."""
        if self._actor is None:
            if not self.key:
                raise typer.BadParameter(
                    "this command is signed by the acting party: give --key ALIAS before the command "
                    "(e.g. medledger --key hospital datasets register ...)",
                    param_hint="--key",
                )
            store = self.keystore()
            info = store.resolve(self.key)
            self._actor = store.load(info.alias, self.password(what=f"key {info.alias!r}"))
        return self._actor

    # -- connections ---------------------------------------------------------------------------

    def ipfs(self) -> IpfsStore:
        if self._ipfs is None:
            # slow imports (the IPFS client, web3, the contracts) are loaded on first use, not for --help
            from ledger.storage.ipfs import IpfsStore

            self._ipfs = IpfsStore.from_settings(self.settings())
            self._closers.append(self._ipfs.close)
        return self._ipfs

    def ledger(self) -> Ledger:
        """The library over the configured chain and IPFS node; writes are relayed by the
        configured relayer key (the CLI is its own relayer)."""
        if self._ledger is None:
            # slow imports, see ipfs()
            from ledger.chain.client import ChainClient
            from ledger.services.ledger import Ledger

            settings = self.settings()
            client = ChainClient(settings)
            self._ledger = Ledger(settings, client, ipfs=self.ipfs())
        return self._ledger

    def indexer(self) -> Indexer:
        """The local event index (``<data_dir>/index-<chain id>.sqlite3``), brought up to the
        chain's confirmed head first. It can always be rebuilt from the chain."""
        if self._indexer is None:
            # slow imports, see ipfs()
            from ledger.history.index import Indexer

            self._indexer = Indexer(self.settings(), self.ledger().client)
            self._closers.append(self._indexer.close)
            with count_progress("reading the chain's events into the local index"):
                self._indexer.sync()
        return self._indexer

    def service(self) -> ServiceClient:
        if self._service is None:
            if not self.service_url:
                raise typer.BadParameter(
                    "this command talks to the service: give --service URL", param_hint="--service"
                )
            # slow imports (httpx, the relay's operation table), see ipfs()
            from ledger.client.http import ServiceClient

            self._service = ServiceClient(self.service_url, wait_timeout=self.timeout)
            self._closers.append(self._service.close)
        return self._service

    def backend(self) -> Backend:
        """The service backend with --service, else the direct one."""
        # the backends load the services layer (web3, the contracts): kept off --help and key commands
        if self.service_url:
            from ledger.cli._remote import ServiceBackend

            return ServiceBackend(self)
        from ledger.cli._local import LocalBackend

        return LocalBackend(self)

    def now(self) -> int:
        """The chain's time: the latest block's timestamp (as the service reports it with
        --service), or this machine's clock when it is ahead or the chain's time is not known (with
        --service the CLI opens no chain connection of its own)."""
        wall = int(time.time())
        if self.service_url is None:
            return max(self.ledger().now(), wall - 60)
        reported = self.service().chain_time()
        return wall if reported is None else max(reported, wall - 60)

    def close(self) -> None:
        for closer in reversed(self._closers):
            with contextlib.suppress(Exception):  # closing must not hide the command's outcome
                closer()
        self._closers.clear()


_CURRENT: ContextVar[State | None] = ContextVar("medledger_cli_state", default=None)


def set_state(value: State) -> None:
    """Called by the root callback at the start of every invocation."""
    _CURRENT.set(value)


def state() -> State:
    """The State of the running command (a default one outside an invocation)."""
    current = _CURRENT.get()
    if current is None:
        current = State()
        _CURRENT.set(current)
    return current


# ---------------------------------------------------------------------------------------------
# output


def console() -> Console:
    """Human output on stdout (created per call: tests swap sys.stdout)."""
    return Console(file=sys.stdout, highlight=False, width=None if sys.stdout.isatty() else 120)


def err_console() -> Console:
    return Console(file=sys.stderr, highlight=False, width=None if sys.stderr.isatty() else 120)


def to_jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [to_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(to_jsonable(data), indent=2, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Mapping | list | tuple):
        return json.dumps(to_jsonable(value), ensure_ascii=False, default=str)
    return str(value)


#: fields holding unix times, shown with their date to people
TIME_FIELDS = ("expiry", "embargo_end", "deadline")


def _field_cell(key: str, value: Any) -> str:
    if key in TIME_FIELDS and isinstance(value, int) and not isinstance(value, bool) and value > 10**9:
        moment = datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M UTC")
        return f"{value} ({moment})"
    return _cell(value)


def kv_table(data: Mapping[str, Any], title: str | None = None) -> Table:
    table = Table(title=title, show_header=False, box=None, pad_edge=False)
    table.add_column("field", style="bold", no_wrap=True)
    table.add_column("value", overflow="fold")
    for key, value in data.items():
        table.add_row(str(key).replace("_", " "), _field_cell(str(key), value))
    return table


def rows_table(rows: Sequence[Mapping[str, Any]], columns: list[str] | None = None, title: str | None = None) -> Table:
    cols = columns or list(dict.fromkeys(k for r in rows for k in r))
    table = Table(title=title)
    for c in cols:
        table.add_column(c.replace("_", " "), overflow="fold")
    for r in rows:
        table.add_row(*(_field_cell(c, r.get(c)) for c in cols))
    return table


def emit(data: Any, render: Callable[[Console, Any], None] | None = None) -> None:
    """Print ``data``: as JSON with --json, else with ``render`` (or a generic table)."""
    if state().json:
        print_json(data)
        return
    out = console()
    if render is not None:
        render(out, data)
    elif isinstance(data, Mapping):
        out.print(kv_table(data))
    elif isinstance(data, list) and all(isinstance(r, Mapping) for r in data):
        if data:
            out.print(rows_table(data))
        else:
            out.print("(none)")
    else:
        out.print(_cell(data))


def done(message: str, data: Mapping[str, Any]) -> None:
    """Report a completed write: a check-marked line and where it landed (or JSON)."""

    def render(out: Console, d: Any) -> None:
        if d.get("status") in ("queued", "submitting"):
            out.print(f"[yellow]…[/yellow] queued, not yet mined: {message}", soft_wrap=True)
            out.print(f"  follow it with: medledger --service {state().service_url} relay status {d.get('ticket')}")
        else:
            out.print(f"[green]✓[/green] {message}", soft_wrap=True)
        # the signed consent message is for scripts (--json); people saw what they signed in the command
        shown = {k: v for k, v in d.items() if v is not None and k not in ("ok", "message")}
        if shown:
            out.print(kv_table(shown))

    emit(dict(data), render)


def report_error(exc: BaseException, code: int) -> None:
    """What was wrong and what to do: on stderr, and as JSON on stdout with --json."""
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    hint = getattr(exc, "hint", None)
    kind = getattr(exc, "code", None) if isinstance(exc, LedgerError) else "internal"
    if state().json:
        body: dict[str, Any] = {"error": {"type": kind, "message": message}, "exit_code": code}
        if hint:
            body["error"]["hint"] = hint
        problem = problem_of(exc)
        if problem is not None:
            body["error"]["problem"] = problem
        print_json(body)
    err = err_console()
    err.print(f"[bold red]Error:[/bold red] {message}", soft_wrap=True, markup=True)
    if hint:
        err.print(f"[bold]Hint:[/bold] {hint}", soft_wrap=True)


# ---------------------------------------------------------------------------------------------
# progress


@contextmanager
def byte_progress(description: str) -> Iterator[Callable[[int, int], None]]:
    """A progress bar over bytes on stderr (nothing with --json); yields the callback
    ``(done, total)`` that :func:`ledger.files.hash_folder` takes."""
    if state().json:
        yield lambda done, total: None
        return
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=err_console(),
        transient=True,
    )
    task = progress.add_task(description, total=None)

    def update(done: int, total: int) -> None:
        progress.update(task, completed=done, total=total)

    with progress:
        yield update


@contextmanager
def count_progress(description: str) -> Iterator[Callable[[int, int], None]]:
    """A progress bar over a count (datasets verified of those known so far), or a spinner until
    the first report; yields the callback ``(done, total)``."""
    if state().json:
        yield lambda done, total: None
        return
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=err_console(),
        transient=True,
    )
    task = progress.add_task(description, total=None)

    def update(done: int, total: int) -> None:
        progress.update(task, completed=done, total=total)

    with progress:
        yield update
