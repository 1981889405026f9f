"""Hash a dataset's files into entries ``(path, size, sha256)``: the leaves of its content root.

Why it works the way it does:

- Streaming in 1 MiB chunks into a reused buffer keeps memory flat for files of any size.
- Files are hashed in parallel on a thread pool; ``hashlib`` releases the GIL on large updates, so
  threads give real parallelism without processes.
- Nothing is skipped silently: hidden files are data like any other, and anything that is not a
  regular file or a directory (symlinks, sockets, devices, FIFOs) is refused with the offending path,
  because following or ignoring it would make the content root depend on what lies outside the folder.
  Empty directories hold no data and have no entry (the content root is over files only).
- Paths are relative, POSIX-style (``/``) and in the file system's own spelling (no Unicode
  normalisation), so the same folder gives the same root on every platform that stores the same names.
  Names that are not valid UTF-8 are refused: they cannot be ABI-encoded as strings.
- Entries are sorted by path so the metadata document (and its CID) is deterministic; the Merkle root
  itself does not depend on order (OpenZeppelin sorts leaves by hash).
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ledger.core.errors import InvalidInput

CHUNK_SIZE = 1 << 20

#: called with (bytes hashed so far, total bytes); calls are serialised and never go backwards
ProgressCallback = Callable[[int, int], None]

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class FileEntry(BaseModel):
    """One file of a dataset. ``sha256`` is lower-case hex without ``0x`` (the ``sha256sum`` spelling);
    upper case and a ``0x`` prefix are accepted on input and normalised, so equal files compare equal."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str = Field(min_length=1, max_length=4096)
    size: int = Field(ge=0, le=(1 << 63) - 1)
    sha256: str

    @field_validator("path")
    @classmethod
    def _check_path(cls, value: str) -> str:
        return check_relative_path(value)

    @field_validator("sha256", mode="before")
    @classmethod
    def _normalise_sha256(cls, value: Any) -> Any:
        if isinstance(value, bytes):
            value = value.hex()
        if isinstance(value, str):
            value = value.lower().removeprefix("0x")
            if not _HEX64.match(value):
                raise ValueError("sha256 must be 32 bytes as 64 hex digits")
        return value

    @property
    def digest(self) -> bytes:
        """The sha256 as 32 bytes (the ``bytes32`` of the Merkle leaf)."""
        return bytes.fromhex(self.sha256)

    def leaf(self) -> tuple[str, int, bytes]:
        """The Merkle leaf value ``(string path, uint256 size, bytes32 sha256)``."""
        return (self.path, self.size, bytes.fromhex(self.sha256))


def check_relative_path(value: str) -> str:
    """A dataset path must be relative, POSIX, without ``.``/``..``/empty segments or NUL, so that it
    names exactly one file under any root and cannot escape it."""
    if "\x00" in value:
        raise ValueError("path contains a NUL character")
    if value.startswith("/"):
        raise ValueError(f"path {value!r} must be relative")
    parts = value.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise ValueError(f"path {value!r} has an empty, '.' or '..' segment")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"path {value!r} is not valid UTF-8") from exc
    return value


class _Progress:
    """Serialises progress reports from the worker threads."""

    def __init__(self, total: int, callback: ProgressCallback | None) -> None:
        self.total = total
        self.done = 0
        self.callback = callback
        self.lock = threading.Lock()

    def add(self, count: int) -> None:
        if self.callback is None or count == 0:
            return
        with self.lock:
            self.done += count
            self.callback(self.done, self.total)


def _hash_stream(path: Path, progress: _Progress | None = None) -> tuple[int, bytes]:
    digest = hashlib.sha256()
    buffer = bytearray(CHUNK_SIZE)
    view = memoryview(buffer)
    size = 0
    with open(path, "rb", buffering=0) as handle:
        while True:
            count = handle.readinto(buffer)
            if not count:
                break
            digest.update(view[:count])
            size += count
            if progress is not None:
                progress.add(count)
    return size, digest.digest()


def sha256_file(path: str | os.PathLike[str], progress: ProgressCallback | None = None) -> tuple[int, bytes]:
    """Size and sha256 of one file, streamed. Refuses symlinks and non-regular files."""
    target = Path(path)
    info = _lstat(target)
    _require_regular(target, info, str(target))
    tracker = _Progress(info.st_size, progress) if progress else None
    try:
        size, digest = _hash_stream(target, tracker)
    except OSError as exc:
        raise InvalidInput(f"cannot read {target}: {exc.strerror or exc}") from exc
    return size, digest


def hash_file(
    path: str | os.PathLike[str],
    *,
    name: str | None = None,
    progress: ProgressCallback | None = None,
) -> FileEntry:
    """The entry of one file, to check it against a dataset ("is this the file that was registered?").
    ``name`` is its path inside the dataset (default: the file's name)."""
    target = Path(path)
    size, digest = sha256_file(target, progress)
    try:
        return FileEntry(path=name if name is not None else target.name, size=size, sha256=digest.hex())
    except ValueError as exc:
        raise InvalidInput(f"{target}: {exc}") from exc


def _lstat(path: Path) -> os.stat_result:
    try:
        return path.lstat()
    except FileNotFoundError as exc:
        raise InvalidInput(f"no such file or folder: {path}") from exc
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror or exc}") from exc


def _require_regular(path: Path, info: os.stat_result, shown: str) -> None:
    if stat.S_ISLNK(info.st_mode):
        raise InvalidInput(
            f"{shown} is a symbolic link; symlinks are refused",
            hint="copy the target into the folder, or remove the link",
        )
    if not stat.S_ISREG(info.st_mode):
        raise InvalidInput(f"{shown} is not a regular file (socket, device or FIFO); refused")


def list_files(root: str | os.PathLike[str]) -> list[tuple[str, Path, int]]:
    """Every regular file under ``root`` as (relative POSIX path, absolute path, size), sorted by path.
    Raises :class:`InvalidInput` on a symlink or special file anywhere below ``root``."""
    base = Path(root)
    try:
        if not base.is_dir():
            raise InvalidInput(f"{base} is not a folder")
    except OSError as exc:
        raise InvalidInput(f"cannot read {base}: {exc}") from exc
    found: list[tuple[str, Path, int]] = []
    pending: list[tuple[Path, PurePosixPath]] = [(base, PurePosixPath())]
    while pending:
        folder, relative = pending.pop()
        try:
            with os.scandir(folder) as entries:
                children = list(entries)
        except OSError as exc:
            raise InvalidInput(f"cannot list {folder}: {exc.strerror or exc}") from exc
        for child in children:
            rel = relative / child.name
            shown = rel.as_posix()
            try:
                info = child.stat(follow_symlinks=False)
            except OSError as exc:
                raise InvalidInput(f"cannot read {shown}: {exc.strerror or exc}") from exc
            if stat.S_ISDIR(info.st_mode):
                pending.append((Path(child.path), rel))
                continue
            _require_regular(Path(child.path), info, shown)
            try:
                check_relative_path(shown)
            except ValueError as exc:
                raise InvalidInput(f"{shown!r}: {exc}", hint="rename the file to a UTF-8 name") from exc
            found.append((shown, Path(child.path), info.st_size))
    found.sort(key=lambda item: item[0])
    return found


def default_workers() -> int:
    """Threads for hashing: enough to keep every core and the disk busy, few enough not to thrash."""
    return min(32, (os.cpu_count() or 2) * 2)


def hash_folder(
    root: str | os.PathLike[str],
    *,
    progress: ProgressCallback | None = None,
    workers: int | None = None,
) -> list[FileEntry]:
    """Entries of every file under ``root``, sorted by path. Raises :class:`InvalidInput` if the
    folder holds no file (a dataset with no content has no content root) or a file changes size
    while it is hashed (the entry would describe neither version)."""
    listing = list_files(root)
    if not listing:
        raise InvalidInput(f"{root} contains no files")
    tracker = _Progress(sum(size for _, _, size in listing), progress)

    def one(item: tuple[str, Path, int]) -> FileEntry:
        relative, absolute, expected = item
        try:
            size, digest = _hash_stream(absolute, tracker)
        except OSError as exc:
            raise InvalidInput(f"cannot read {relative}: {exc.strerror or exc}") from exc
        if size != expected:
            raise InvalidInput(f"{relative} changed while it was hashed ({expected} -> {size} bytes)")
        return FileEntry(path=relative, size=size, sha256=digest.hex())

    count = workers or default_workers()
    if count <= 1 or len(listing) == 1:
        return [one(item) for item in listing]
    with ThreadPoolExecutor(max_workers=min(count, len(listing)), thread_name_prefix="hash") as pool:
        return list(pool.map(one, listing))


def entries_by_path(entries: Iterable[FileEntry]) -> dict[str, FileEntry]:
    """Index entries by path, refusing duplicates (a dataset cannot hold two files at one path)."""
    index: dict[str, FileEntry] = {}
    for entry in entries:
        if entry.path in index:
            raise InvalidInput(f"duplicate file path {entry.path!r}")
        index[entry.path] = entry
    return index


def total_size(entries: Sequence[FileEntry]) -> int:
    return sum(entry.size for entry in entries)
