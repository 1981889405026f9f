"""File hashing: entries, ordering, refusals, progress, parallel = sequential."""

from __future__ import annotations

import hashlib
import itertools
import os
import socket
import threading
from pathlib import Path

import pytest

from ledger.content.files import CHUNK_SIZE, FileEntry, hash_file, hash_folder, list_files, sha256_file
from ledger.content.merkle import CONTENT_TYPES, content_tree, verify
from ledger.core.errors import InvalidInput


def make_dataset(root: Path) -> dict[str, bytes]:
    files = {
        "README.md": b"cohort description\n",
        "data/visits.csv": b"id,visit\n" * 1000,
        "data/影像/scan-01.dcm": os.urandom(CHUNK_SIZE * 2 + 123),  # spans chunk boundaries
        "data/empty.bin": b"",
        ".hidden/manifest": b"hidden files are data too",
        "z/deep/er/still.txt": b"x",
    }
    for relative, content in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    (root / "empty-dir").mkdir()
    return files


def test_hash_folder_entries(tmp_path: Path) -> None:
    files = make_dataset(tmp_path)
    entries = hash_folder(tmp_path)
    assert [e.path for e in entries] == sorted(files)
    for entry in entries:
        content = files[entry.path]
        assert entry.size == len(content)
        assert entry.sha256 == hashlib.sha256(content).hexdigest()
        assert entry.digest == hashlib.sha256(content).digest()


def test_parallel_and_sequential_agree_and_are_deterministic(tmp_path: Path) -> None:
    make_dataset(tmp_path)
    parallel = hash_folder(tmp_path, workers=8)
    sequential = hash_folder(tmp_path, workers=1)
    assert parallel == sequential
    assert content_tree(parallel).root == content_tree(reversed(sequential)).root


def test_progress_reports_every_byte_in_order(tmp_path: Path) -> None:
    files = make_dataset(tmp_path)
    total = sum(len(c) for c in files.values())
    seen: list[tuple[int, int]] = []
    lock = threading.Lock()

    def progress(done: int, all_bytes: int) -> None:
        with lock:
            seen.append((done, all_bytes))

    hash_folder(tmp_path, progress=progress, workers=4)
    assert seen[-1] == (total, total)
    assert all(b[0] > a[0] for a, b in itertools.pairwise(seen))


def test_symlinks_are_refused(tmp_path: Path) -> None:
    make_dataset(tmp_path)
    (tmp_path / "data" / "link.csv").symlink_to(tmp_path / "data" / "visits.csv")
    with pytest.raises(InvalidInput, match=r"data/link.csv is a symbolic link"):
        hash_folder(tmp_path)


def test_symlinked_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "f").write_bytes(b"1")
    (tmp_path / "alias").symlink_to(tmp_path / "real", target_is_directory=True)
    with pytest.raises(InvalidInput, match="alias is a symbolic link"):
        list_files(tmp_path)


def test_special_files_are_refused(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"1")
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(InvalidInput, match="not a regular file"):
        hash_folder(tmp_path)


def test_socket_is_refused(tmp_path: Path) -> None:
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        server.bind(str(tmp_path / "s"))
        with pytest.raises(InvalidInput, match="not a regular file"):
            hash_folder(tmp_path)
    finally:
        server.close()


def test_empty_or_missing_folder(tmp_path: Path) -> None:
    (tmp_path / "only-dirs" / "inner").mkdir(parents=True)
    with pytest.raises(InvalidInput, match="contains no files"):
        hash_folder(tmp_path / "only-dirs")
    with pytest.raises(InvalidInput, match="not a folder"):
        hash_folder(tmp_path / "missing")


def test_non_utf8_name_is_refused(tmp_path: Path) -> None:
    name = os.fsencode(tmp_path) + b"/bad-\xff.txt"
    with open(name, "wb") as handle:
        handle.write(b"1")
    with pytest.raises(InvalidInput, match="UTF-8"):
        hash_folder(tmp_path)


def test_single_file_against_a_dataset(tmp_path: Path) -> None:
    files = make_dataset(tmp_path)
    entries = hash_folder(tmp_path)
    tree = content_tree(entries)
    one = hash_file(tmp_path / "data" / "visits.csv", name="data/visits.csv")
    assert one in entries
    assert verify(tree.root, CONTENT_TYPES, one.leaf(), tree.proof(one.leaf()))
    (tmp_path / "copy.csv").write_bytes(files["data/visits.csv"] + b"tampered")
    altered = hash_file(tmp_path / "copy.csv", name="data/visits.csv")
    assert altered not in entries
    assert altered.leaf() not in tree
    assert hash_file(tmp_path / "README.md").path == "README.md"
    assert sha256_file(tmp_path / "README.md") == (len(files["README.md"]), hashlib.sha256(files["README.md"]).digest())
    with pytest.raises(InvalidInput, match="no such file"):
        hash_file(tmp_path / "nope")


def test_file_entry_validation() -> None:
    digest = "AB" * 32
    entry = FileEntry(path="a/b.txt", size=3, sha256="0x" + digest)
    assert entry.sha256 == "ab" * 32
    assert FileEntry.model_validate({"path": "a/b.txt", "size": 3, "sha256": bytes.fromhex(digest)}) == entry
    for bad in ["/abs", "a//b", "a/./b", "../up", "a/..", "", "nul\x00"]:
        with pytest.raises(ValueError):
            FileEntry(path=bad, size=1, sha256=digest)
    with pytest.raises(ValueError):
        FileEntry(path="a", size=-1, sha256=digest)
    with pytest.raises(ValueError):
        FileEntry(path="a", size=1, sha256="abc")
    with pytest.raises(ValueError):
        FileEntry(path="a", size=1, sha256=digest, extra="no")  # type: ignore[call-arg]
