"""``medledger keys``: the local keystore."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from ledger.chain.keystore import AliasTaken, check_alias, check_scrypt_n
from ledger.cli._state import done, emit, rows_table, state
from ledger.core.errors import ConfigurationError, InvalidInput

app = typer.Typer(
    help="Keys of the parties: standard encrypted Ethereum keystore files (V3, scrypt), named by alias.",
    no_args_is_help=True,
)

SCRYPT_HELP = "scrypt cost n for the new file (power of two; default 262144, or MEDLEDGER_SCRYPT_N)."


def _check_new(alias: str, scrypt_n: int | None) -> None:
    check_alias(alias)
    if scrypt_n is not None:
        check_scrypt_n(scrypt_n)
    path = state().keystore().path_of(alias)
    if path.exists():
        raise AliasTaken(f"a key named {alias!r} already exists ({path})", hint="choose another alias")


@app.command("create")
def create(
    alias: str = typer.Argument(..., help="Name of the key, e.g. hospital, alice."),
    scrypt_n: int | None = typer.Option(None, "--scrypt-n", help=SCRYPT_HELP),
) -> None:
    """Create a new random key, encrypted with a password (asked twice at a prompt)."""
    st = state()
    _check_new(alias, scrypt_n)
    password = st.password(what=f"new key {alias!r}", confirm=True)
    info = st.keystore().create(alias, password, n=scrypt_n)
    done(f"created key {alias} ({info.address})", info.to_json())


@app.command("import")
def import_key(
    alias: str = typer.Argument(..., help="Name to give the key."),
    private_key_file: Path | None = typer.Option(
        None, "--private-key-file", metavar="FILE", help="A file holding the hex private key (first line)."
    ),
    keystore_file: Path | None = typer.Option(
        None,
        "--keystore-file",
        metavar="FILE",
        help="An existing encrypted keystore file: copied unchanged after its password is checked.",
    ),
    scrypt_n: int | None = typer.Option(None, "--scrypt-n", help=SCRYPT_HELP),
) -> None:
    """Import a key: a hex private key (from --private-key-file, or typed at a hidden prompt),
    encrypted with the password; or an existing keystore file, which keeps its own password."""
    st = state()
    if private_key_file is not None and keystore_file is not None:
        raise InvalidInput("give either --private-key-file or --keystore-file, not both")
    _check_new(alias, scrypt_n)
    store = st.keystore()
    if keystore_file is not None:
        password = st.password(what=f"keystore file {keystore_file}")
        info = store.import_file(alias, keystore_file, password)
    else:
        if private_key_file is not None:
            try:
                lines = private_key_file.read_text(encoding="utf-8").splitlines()
            except OSError as exc:
                raise InvalidInput(f"cannot read {private_key_file}: {exc.strerror or exc}") from exc
            secret = lines[0].strip() if lines else ""
        elif sys.stdin.isatty():
            secret = typer.prompt("Private key (hex)", hide_input=True)
        else:
            raise ConfigurationError(
                "no private key given and no terminal to ask on", hint="give --private-key-file FILE"
            )
        password = st.password(what=f"new key {alias!r}", confirm=True)
        info = store.import_private_key(alias, secret, password, n=scrypt_n)
    done(f"imported key {alias} ({info.address})", info.to_json())


@app.command("list")
def list_keys() -> None:
    """Every key in the keystore: alias, address and file (no password needed)."""
    st = state()
    keys = [k.to_json() for k in st.keystore().list()]

    def render(out: Console, data: Any) -> None:
        if not data["keys"]:
            out.print(f"no keys in {data['keystore']} (create one: medledger keys create ALIAS)")
            return
        out.print(rows_table(data["keys"], ["alias", "address", "file"], title=f"keystore {data['keystore']}"))

    emit({"keystore": str(st.keystore().directory), "keys": keys}, render)


@app.command("address")
def address(alias: str = typer.Argument(..., help="Alias of the key.")) -> None:
    """Print a key's address (no password needed), e.g. for $(medledger keys address alice)."""
    info = state().keystore().resolve(alias)

    def render(out: Console, data: Any) -> None:
        out.print(data["address"])

    emit(info.to_json(), render)
