"""The ``medledger`` command: the root group, its global options and error handling."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperGroup

from ledger import __version__
from ledger.cli import (
    cmd_access,
    cmd_audit,
    cmd_consent,
    cmd_coverage,
    cmd_datasets,
    cmd_keys,
    cmd_roles,
    cmd_system,
    cmd_verify,
)
from ledger.cli._state import EXIT_CANNOT_RUN, State, exit_code_for, report_error, set_state
from ledger.core.errors import LedgerError

HELP = """\
Provenance and consent ledger for medical scientific data sharing: one command for every party
(admin, holder, subject, user, reviewer, auditor) and for the verifications.

**Keys and signing.** Every write is an EIP-712 message signed on this machine with the acting
party's key, named by **--key ALIAS** from the local keystore (standard encrypted Ethereum
keystore files: medledger keys create|import|list). The password comes from --password-file,
MEDLEDGER_PASSWORD or a hidden prompt.

**Where writes go.** Without --service the CLI sends each signed request directly to the
chain and acts as its own relayer: it pays the gas with the configured relayer key
(MEDLEDGER_RELAYER_KEY or MEDLEDGER_RELAYER_KEY_FILE; on a local anvil with nothing configured,
anvil's first development account). With **--service URL** it asks the service for the typed
data, signs it here, submits it and waits until the service's relayer has mined it (--no-wait returns
the ticket at once). Keys never leave this machine either way.

**Settings** come from MEDLEDGER_* environment variables (MEDLEDGER_RPC_URL, MEDLEDGER_IPFS_API,
MEDLEDGER_DATA_DIR, MEDLEDGER_CHAIN_ID, MEDLEDGER_MANAGE_NODES, ...) or <data_dir>/medledger.toml.
The keystore is MEDLEDGER_KEYSTORE (default <data_dir>/keystore).

**Output** is for people by default; --json (before or after the command) prints only JSON on
stdout (errors too, as {"error": ...}). Long work (hashing a dataset, verifying a lineage) shows a
progress bar on stderr.

**Exit codes:**

- 0: ok;
- 1: verification failed (a check ran and the data did not verify; consent check found none in force);
- 2: usage error (bad arguments, unreadable input file, unknown key alias);
- 3: could not run (node or service unavailable, configuration, wrong password, the contract refused the write).
"""


class RootGroup(TyperGroup):
    """Turns every error a command raises into a message (what was wrong, what to do) and an exit
    code; never a traceback (set MEDLEDGER_DEBUG=1 to get one)."""

    #: flags of the root that are also accepted after the command (``medledger datasets show R --json``)
    HOISTED_FLAGS = ("--json", "--no-wait")

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if "--" in args:
            cut = args.index("--")
            head, tail = args[:cut], args[cut:]
        else:
            head, tail = args, []
        hoisted = [a for a in head if a in self.HOISTED_FLAGS]
        rest = [a for a in head if a not in self.HOISTED_FLAGS]
        return super().parse_args(ctx, [*dict.fromkeys(hoisted), *rest, *tail])

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.TyperException):
            raise
        except typer.Abort:
            report_error(LedgerError("aborted", hint="nothing was sent"), EXIT_CANNOT_RUN)
            raise typer.Exit(EXIT_CANNOT_RUN) from None
        except LedgerError as exc:
            code = exit_code_for(exc)
            report_error(exc, code)
            raise typer.Exit(code) from None
        except KeyboardInterrupt:
            raise typer.Exit(130) from None
        except BrokenPipeError:
            raise  # the reader went away (| head): the runner exits quietly
        except Exception as exc:
            if os.environ.get("MEDLEDGER_DEBUG"):
                raise
            wrapped = LedgerError(
                f"unexpected {type(exc).__name__}: {exc}",
                hint="this is a bug; run again with MEDLEDGER_DEBUG=1 for the traceback and report it",
            )
            report_error(wrapped, EXIT_CANNOT_RUN)
            raise typer.Exit(EXIT_CANNOT_RUN) from None


app = typer.Typer(
    name="medledger",
    cls=RootGroup,
    help=HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"medledger {__version__}")
        raise typer.Exit(0)


@app.callback()
def root(
    ctx: typer.Context,
    json_output: bool = typer.Option(False, "--json", help="Print machine-readable JSON only."),
    service: str | None = typer.Option(
        None,
        "--service",
        envvar="MEDLEDGER_SERVICE",
        metavar="URL",
        help="Send signed writes through this service (and read from it). Default: directly to the chain.",
    ),
    key: str | None = typer.Option(
        None, "--key", "-k", envvar="MEDLEDGER_KEY", metavar="ALIAS", help="The acting party's key (keystore alias)."
    ),
    password_file: Path | None = typer.Option(
        None,
        "--password-file",
        envvar="MEDLEDGER_PASSWORD_FILE",
        metavar="FILE",
        help="Read the key password from the first line of FILE (else MEDLEDGER_PASSWORD, else a prompt).",
    ),
    no_wait: bool = typer.Option(
        False, "--no-wait", help="With --service: return the relay ticket without waiting until it is mined."
    ),
    timeout: float = typer.Option(120.0, "--timeout", metavar="SECONDS", help="How long to wait for a relayed write."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version."),
) -> None:
    del version
    st = State(
        json=json_output,
        service_url=service,
        key=key,
        password_file=password_file,
        wait=not no_wait,
        timeout=timeout,
    )
    ctx.obj = st
    set_state(st)
    ctx.call_on_close(st.close)


def _register() -> None:
    app.add_typer(cmd_keys.app, name="keys")
    cmd_system.register(app)
    app.add_typer(cmd_roles.app, name="roles")
    app.add_typer(cmd_datasets.app, name="datasets")
    app.add_typer(cmd_consent.app, name="consent")
    app.add_typer(cmd_access.access_app, name="access")
    app.add_typer(cmd_access.use_app, name="use")
    app.add_typer(cmd_audit.app, name="audit")
    app.add_typer(cmd_verify.verify_app, name="verify")
    app.add_typer(cmd_verify.export_app, name="export")
    app.add_typer(cmd_coverage.app, name="coverage")


_register()


def main() -> None:
    """Console script entry point."""
    app()
