"""Helpers shared by the library tests (imported by module name: the test folder is on sys.path)."""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ledger.content.files import hash_folder
from ledger.content.metadata import DatasetMetadata


def write_files(folder: Path, files: dict[str, bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return folder


def metadata_for(holder: str, folder: Path, *, parents: list[str] | None = None, activity: str = "de-identification",
                 tier: str = "controlled", title: str = "Synthetic cohort") -> Any:
    """A DatasetMetadata for the files of ``folder`` (and an activity when derived)."""
    now = datetime.now(UTC).replace(microsecond=0)
    md: dict[str, Any] = {
        "title": {"en": title, "zh-CN": "合成数据"},
        "description": {"en": "Synthetic records keyed by pseudonymous addresses."},
        "classification": "0x0101",
        "tier": tier,
        "licence": {"spdx": "CC-BY-4.0"},
        "data_use": ["DUO:0000006"],
        "files": [e.model_dump() for e in hash_folder(folder)],
        "holder": holder,
        "created": now.isoformat().replace("+00:00", "Z"),
    }
    if parents:
        md["parents"] = parents
        md["activity"] = {"type": activity, "agent": holder, "started": md["created"], "ended": md["created"],
                          "software": {"name": "medledger-tests", "version": "1"},
                          "parameters_digest": "0x" + hashlib.sha256(b"params").hexdigest()}
    return DatasetMetadata.model_validate(md)


def unique_files(tag: str) -> dict[str, bytes]:
    return {"records.csv": f"id,value\n{tag},{os.urandom(8).hex()}\n".encode(), "README.txt": b"synthetic\n"}
