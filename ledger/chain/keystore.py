"""A local keystore of the parties' signing keys: standard encrypted Ethereum keystore files
(Web3 Secret Storage, version 3, scrypt), one file per key, named by an alias.

Why it works the way it does:

- **Standard files.** Each key is ``<alias>.json`` holding exactly what ``eth_account`` (and geth,
  MetaMask, Foundry's ``cast wallet``) write and read: a V3 JSON document encrypted with scrypt. The
  alias is only the file name, so a file copied out of the directory still opens anywhere, and a
  keystore file made elsewhere is imported by copying it (after checking its password).
- **No plaintext key on disk.** A private key exists only in memory, after the password decrypted it;
  files are written atomically with mode 0600 in a 0700 directory.
- **Cheap to list.** The address is read from the file's ``address`` field without decrypting, so
  ``list`` and resolving an alias to an address (for command arguments) need no password.
- **Password sources**, first that applies: a password file, ``MEDLEDGER_PASSWORD``, a hidden prompt.

The directory is ``$MEDLEDGER_KEYSTORE`` or ``<data_dir>/keystore``. The scrypt cost of new files is
``n = 2**18`` (geth's standard); ``MEDLEDGER_SCRYPT_N`` lowers it for tests and throwaway keys.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.address import is_address, to_checksum_address

from ledger.core.errors import ConfigurationError, InvalidInput, LedgerError

#: scrypt cost parameter n of new keystore files (geth's "standard" scrypt)
DEFAULT_SCRYPT_N = 1 << 18

_ALIAS = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_HEX_KEY = re.compile(r"^(0x)?[0-9a-fA-F]{64}$")


class KeystoreError(LedgerError):
    """A keystore file cannot be read, written or decrypted."""

    code = "keystore"


class WrongPassword(KeystoreError):
    code = "wrong-password"


class KeyNotFound(InvalidInput):
    """No key with this alias (or address) in the keystore: a bad argument."""

    code = "key-not-found"


class AliasTaken(InvalidInput):
    code = "alias-taken"


@dataclass(frozen=True)
class KeyInfo:
    """One key of the keystore, as listed (nothing secret)."""

    alias: str
    address: str
    path: Path

    def to_json(self) -> dict[str, str]:
        return {"alias": self.alias, "address": self.address, "file": str(self.path)}


def keystore_dir(data_dir: Path, env: Mapping[str, str] | None = None) -> Path:
    """``$MEDLEDGER_KEYSTORE``, else ``<data_dir>/keystore``."""
    environ = os.environ if env is None else env
    configured = environ.get("MEDLEDGER_KEYSTORE")
    return Path(configured).expanduser() if configured else data_dir / "keystore"


def scrypt_n(env: Mapping[str, str] | None = None) -> int:
    """The scrypt cost for new files: ``$MEDLEDGER_SCRYPT_N`` or :data:`DEFAULT_SCRYPT_N`."""
    environ = os.environ if env is None else env
    raw = environ.get("MEDLEDGER_SCRYPT_N")
    if not raw:
        return DEFAULT_SCRYPT_N
    try:
        n = int(raw)
    except ValueError as exc:
        raise ConfigurationError(f"MEDLEDGER_SCRYPT_N={raw!r} is not an integer") from exc
    check_scrypt_n(n)
    return n


def check_scrypt_n(n: int) -> None:
    if n < 2 or n & (n - 1):
        raise InvalidInput(f"scrypt n must be a power of two of at least 2, got {n}")


def check_alias(alias: str) -> str:
    if not _ALIAS.match(alias):
        raise InvalidInput(
            f"{alias!r} is not a valid key alias",
            hint="use letters, digits, '.', '_' or '-' (up to 64, starting with a letter or digit)",
        )
    return alias


def parse_private_key(text: str) -> bytes:
    """A hex private key (64 hex digits, optional 0x) -> 32 bytes, with a clear error."""
    value = text.strip()
    if not _HEX_KEY.match(value):
        raise InvalidInput("a private key is 64 hex digits (optionally prefixed with 0x)")
    raw = bytes.fromhex(value.removeprefix("0x").removeprefix("0X"))
    try:
        Account.from_key(raw)
    except (ValueError, TypeError) as exc:  # zero or above the curve order
        raise InvalidInput(f"not a valid secp256k1 private key: {exc}") from exc
    return raw


def read_password_file(path: Path) -> str:
    """The first line of a password file (without its line ending)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot read password file {path}: {exc.strerror or exc}") from exc
    lines = text.splitlines()
    return lines[0] if lines else ""


class Keystore:
    """The keystore directory: create, import, list and load keys by alias."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    # -- listing -------------------------------------------------------------------------------

    def path_of(self, alias: str) -> Path:
        return self.directory / f"{check_alias(alias)}.json"

    def _read(self, path: Path) -> dict[str, Any]:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise KeystoreError(f"cannot read keystore file {path}: {exc.strerror or exc}") from exc
        except ValueError as exc:
            raise KeystoreError(f"{path} is not a keystore file (not JSON)") from exc
        if not isinstance(data, dict) or ("crypto" not in data and "Crypto" not in data):
            raise KeystoreError(f"{path} is not an encrypted Ethereum keystore file")
        return data

    @staticmethod
    def _address_field(data: Mapping[str, Any], path: Path) -> str:
        raw = str(data.get("address", ""))
        candidate = raw if raw.startswith("0x") else "0x" + raw
        if not is_address(candidate):
            raise KeystoreError(f"{path} carries no valid address field", hint="re-import the key")
        return to_checksum_address(candidate)

    def list(self) -> list[KeyInfo]:
        """Every key in the directory, by alias (unreadable files are skipped)."""
        if not self.directory.is_dir():
            return []
        out: list[KeyInfo] = []
        for path in sorted(self.directory.glob("*.json")):
            alias = path.stem
            if not _ALIAS.match(alias):
                continue
            try:
                data = self._read(path)
                out.append(KeyInfo(alias, self._address_field(data, path), path))
            except KeystoreError:
                continue
        return out

    def get(self, alias: str) -> KeyInfo:
        path = self.path_of(alias)
        if not path.exists():
            known = ", ".join(k.alias for k in self.list()) or "none"
            raise KeyNotFound(
                f"no key {alias!r} in the keystore {self.directory}",
                hint=f"create or import it (medledger keys create {alias}); known aliases: {known}",
            )
        return KeyInfo(alias, self._address_field(self._read(path), path), path)

    def resolve(self, name: str) -> KeyInfo:
        """A key by alias, or by address (the first alias holding that address)."""
        if is_address(name) and name.startswith("0x"):
            address = to_checksum_address(name)
            for info in self.list():
                if info.address == address:
                    return info
            raise KeyNotFound(f"no key for {address} in the keystore {self.directory}", hint="import it first")
        return self.get(name)

    def address_of(self, alias: str) -> str:
        return self.get(alias).address

    # -- writing -------------------------------------------------------------------------------

    def _ensure_dir(self) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise KeystoreError(f"cannot create keystore directory {self.directory}: {exc.strerror or exc}") from exc

    def _write(self, alias: str, document: Mapping[str, Any]) -> KeyInfo:
        path = self.path_of(alias)
        if path.exists():
            raise AliasTaken(
                f"a key named {alias!r} already exists ({path})", hint="choose another alias, or remove the file first"
            )
        self._ensure_dir()
        handle, temporary = tempfile.mkstemp(prefix=f".{alias}.", suffix=".tmp", dir=self.directory)
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                json.dump(document, out)
            os.chmod(temporary, 0o600)
            # link, not rename: refuses to replace a file that appeared meanwhile
            os.link(temporary, path)
        except FileExistsError as exc:
            raise AliasTaken(f"a key named {alias!r} already exists ({path})") from exc
        except OSError as exc:
            raise KeystoreError(f"cannot write {path}: {exc.strerror or exc}") from exc
        finally:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
        return KeyInfo(alias, self._address_field(document, path), path)

    def _encrypt(self, key: bytes, password: str, n: int | None) -> dict[str, Any]:
        if not password:
            raise InvalidInput("the password must not be empty")
        cost = scrypt_n() if n is None else n
        check_scrypt_n(cost)
        document: dict[str, Any] = Account.encrypt(key, password, kdf="scrypt", iterations=cost)
        return document

    def create(self, alias: str, password: str, *, n: int | None = None) -> KeyInfo:
        """A new random key, encrypted with ``password``."""
        check_alias(alias)
        account: LocalAccount = Account.create()
        return self._write(alias, self._encrypt(bytes(account.key), password, n))

    def import_private_key(
        self, alias: str, private_key: str | bytes, password: str, *, n: int | None = None
    ) -> KeyInfo:
        """An existing hex private key, encrypted with ``password``."""
        check_alias(alias)
        raw = parse_private_key(private_key) if isinstance(private_key, str) else private_key
        return self._write(alias, self._encrypt(raw, password, n))

    def import_file(self, alias: str, source: Path, password: str) -> KeyInfo:
        """An existing keystore file, copied unchanged after ``password`` is checked against it."""
        check_alias(alias)
        data = self._read(Path(source))
        decrypt(data, password, str(source))
        return self._write(alias, data)

    # -- loading -------------------------------------------------------------------------------

    def load(self, alias: str, password: str) -> LocalAccount:
        """Decrypt a key; the private key stays in memory only."""
        info = self.get(alias)
        account = decrypt(self._read(info.path), password, info.alias)
        if account.address != info.address:
            raise KeystoreError(f"key {alias!r} decrypts to {account.address}, but the file names {info.address}")
        return account


def decrypt(document: Mapping[str, Any], password: str, name: str) -> LocalAccount:
    try:
        key: bytes = Account.decrypt(dict(document), password)
    except ValueError as exc:
        message = str(exc)
        if "MAC mismatch" in message:
            raise WrongPassword(
                f"wrong password for key {name!r}",
                hint="give the key's password with --password-file, MEDLEDGER_PASSWORD or at the prompt",
            ) from exc
        raise KeystoreError(f"cannot decrypt key {name!r}: {message}") from exc
    account: LocalAccount = Account.from_key(key)
    return account
