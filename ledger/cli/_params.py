"""Argument types and input files: addresses (or key aliases), content roots, digests, subject
lists. A value that does not parse is a usage error (exit code 2) that names the argument."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Literal

from eth_utils.address import is_address, is_checksum_address, to_checksum_address
from pydantic_core import PydanticCustomError

from ledger.chain.keystore import KeyNotFound
from ledger.cli._state import state
from ledger.core.errors import InvalidInput
from ledger.core.records import ZERO32

#: choices
Category = Literal["GRU", "HMB", "DS", "POA"]
RoleName = Literal["holder", "reviewer", "user", "auditor", "admin"]
TierName = Literal["open", "registered", "controlled", "closed"]
ActivityName = Literal["collection", "de-identification", "aggregation", "merge", "model-training", "revision", "other"]

_HEX40 = re.compile(r"^0x[0-9a-fA-F]{40}$")
_HEX64 = re.compile(r"^(0x)?[0-9a-fA-F]{64}$")


def parse_address(value: str, what: str = "address") -> str:
    """A 0x address; a mixed-case one must carry a valid EIP-55 checksum."""
    text = value.strip()
    if not _HEX40.match(text):
        raise InvalidInput(f"{what} {value!r} is not an Ethereum address (0x followed by 40 hex digits)")
    body = text[2:]
    if body != body.lower() and body != body.upper() and not is_checksum_address(text):
        raise InvalidInput(f"{what} {value!r} has a wrong EIP-55 checksum (a typo?)")
    return to_checksum_address(text)


def _bad(message: str) -> PydanticCustomError:
    """What a parser raises for a bad value: typer reports it as a usage error on the argument."""
    return PydanticCustomError("medledger_argument", "{reason}", {"reason": message})


def address_arg(value: str) -> str:
    """Parser of address arguments: an Ethereum address, or the alias of a key in the keystore
    (its address is used). A bad value is a usage error naming the argument."""
    text = str(value).strip()
    if text.startswith(("0x", "0X")) or re.fullmatch(r"[0-9a-fA-F]{40}", text):
        try:
            return parse_address(text if text.startswith(("0x", "0X")) else "0x" + text)
        except InvalidInput as exc:
            raise _bad(exc.message) from exc
    try:
        return state().keystore().resolve(text).address
    except KeyNotFound as exc:
        raise _bad(f"{text!r} is neither an Ethereum address (0x + 40 hex digits) nor a key alias") from exc
    except InvalidInput as exc:
        raise _bad(f"{text!r}: {exc.message}") from exc


def root_arg(value: str) -> str:
    """Parser of 32-byte hex arguments (content roots, digests): 0x followed by 64 hex digits."""
    text = str(value).strip()
    if not _HEX64.match(text):
        raise _bad(f"{value!r} is not 32 bytes in hex (0x followed by 64 hex digits)")
    return "0x" + text.lower().removeprefix("0x")


def subjects_from_file(path: Path) -> list[str]:
    """A subject list: one address per line; blank lines and '#' comments are ignored. Duplicates
    are refused (a subject is in a cohort once)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot read subjects file {path}: {exc.strerror or exc}") from exc
    out: list[str] = []
    seen: set[str] = set()
    for number, line in enumerate(text.splitlines(), start=1):
        entry = line.split("#", 1)[0].strip()
        if not entry:
            continue
        if not is_address(entry) or not entry.startswith("0x"):
            raise InvalidInput(f"{path}:{number}: {entry!r} is not an Ethereum address", hint="one address per line")
        address = parse_address(entry, f"{path}:{number}:")
        if address in seen:
            raise InvalidInput(f"{path}:{number}: {address} is listed twice")
        seen.add(address)
        out.append(address)
    if not out:
        raise InvalidInput(f"subjects file {path} lists no address")
    return out


def file_digest(path: Path) -> bytes:
    """sha256 of a file's bytes (the digest of its raw-block CID when stored on IPFS)."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror or exc}") from exc
    return digest.digest()


def text_digest(text: str) -> bytes:
    """sha256 of a text (UTF-8): what goes on chain for a reason or conditions kept off chain."""
    return hashlib.sha256(text.encode("utf-8")).digest()


def digest_arg(
    *,
    text: str | None = None,
    file: Path | None = None,
    digest: str | None = None,
    what: str,
    required: bool = False,
) -> bytes:
    """One of a text, a file or a 0x digest -> 32 bytes (zero when none and not required)."""
    given = [x for x in (text, file, digest) if x is not None]
    if len(given) > 1:
        raise InvalidInput(f"give the {what} once: as text, as a file or as a digest")
    if file is not None:
        return file_digest(file)
    if text is not None:
        return text_digest(text)
    if digest is not None:
        if not _HEX64.match(digest):
            raise InvalidInput(f"{what} digest {digest!r} is not 0x followed by 64 hex digits")
        return bytes.fromhex(digest.removeprefix("0x"))
    if required:
        raise InvalidInput(f"a {what} is required", hint=f"give the {what} as text, a file, or a digest")
    return ZERO32


def days_from_now(days: float) -> int:
    """A unix time ``days`` from now, by the chain's clock (what the contracts compare with)."""
    if days <= 0:
        raise InvalidInput(f"the number of days must be positive, got {days:g}")
    return int(state().now() + days * 86400)


def split_terms(values: list[str] | None) -> list[str]:
    """Repeated and comma-separated options -> one list (``--purpose HMB,NCU --purpose IRB``)."""
    out: list[str] = []
    for value in values or []:
        out += [v.strip() for v in value.split(",") if v.strip()]
    return out


def hex32(value: bytes) -> str:
    return "0x" + value.hex()
