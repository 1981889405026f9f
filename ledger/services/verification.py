"""Verification of datasets, files and lineages: what the chain records, checked against what IPFS
serves and, when given, against the files themselves.

A dataset verifies when: its chain record exists; the metadata document fetched from IPFS hashes
to the recorded CID digest (the store recomputes the CID of every fetch); the document is valid
and canonical; its file list hashes to the content root; its parents equal the chain's parents;
its activity description hashes to the chain's activity digest; its holder and classification
are the chain's, its sharing tier the one the dataset was registered under (the holder may
change the tier later); and, given the files, each file hashes to its entry with none
missing or extra. Status is reported too: a retracted or suspended dataset fails, a deprecated
one passes with a warning naming its successor. A lineage verifies when every ancestor does.

Each failure carries its own reason code, so a report says which of these happened: metadata
altered on IPFS, metadata missing, a file altered, a field (parents, activity, holder,
classification, tier) that differs from the chain's, an ancestor retracted, suspended or
deprecated.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ledger.content.cid import cid_from_digest
from ledger.content.files import FileEntry, hash_file, hash_folder
from ledger.content.merkle import content_tree
from ledger.core.classification import Tier
from ledger.core.errors import InvalidInput, LedgerError, MetadataIntegrityError, MetadataNotFound
from ledger.core.records import DatasetRecord, hex32, to_bytes32
from ledger.rules.verification import (
    DatasetVerification,
    Finding,
    LineageReport,
    Reason,
    check_files,
    check_metadata,
    check_status,
    settle_tier,
    tier_unsettled,
)
from ledger.services.ledger import Ledger

# ---------------------------------------------------------------------------------------------


def _fetch_metadata(ledger: Ledger, result: DatasetVerification) -> bytes | None:
    assert result.record is not None
    cid = cid_from_digest(result.record.metadata_digest)
    result.metadata_cid = cid
    try:
        data: bytes = ledger.ipfs.get(cid)
        return data
    except MetadataIntegrityError as exc:
        result.failures.append(Finding(Reason.METADATA_TAMPERED, f"content served for {cid} does not match it: {exc}"))
    except MetadataNotFound as exc:
        result.failures.append(Finding(Reason.METADATA_MISSING, f"metadata {cid} not available: {exc}"))
    return None


def _registered_tier(ledger: Ledger, record: DatasetRecord) -> Tier | None:
    """The tier a dataset was registered under, from its DatasetRegistered event."""
    event = ledger.client.contract("DatasetRegistry").events.DatasetRegistered
    logs = event.get_logs(
        from_block=record.registered_block,
        to_block=record.registered_block,
        argument_filters={"contentRoot": record.content_root},
    )
    return Tier(int(logs[0]["args"]["tier"])) if logs else None


def _settle_tier(ledger: Ledger, result: DatasetVerification) -> None:
    # only a tier that differs now costs the log read (a holder's later setSharing is legitimate)
    if result.record is not None and tier_unsettled(result):
        settle_tier(result, _registered_tier(ledger, result.record))


def verify_dataset(
    ledger: Ledger,
    content_root: bytes | str,
    *,
    folder: str | Path | None = None,
    entries: Sequence[FileEntry] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> DatasetVerification:
    """Verify one dataset: chain record, metadata on IPFS, and (given ``folder`` or ``entries``)
    the files."""
    root = to_bytes32(content_root, "content root")
    result = DatasetVerification(root)
    try:
        result.record = ledger.get_dataset(root)
    except LedgerError as exc:
        if exc.code != "dataset-not-found":
            raise
        result.failures.append(Finding(Reason.NOT_REGISTERED, f"no chain record for {hex32(root)}"))
        return result
    check_status(result)
    data = _fetch_metadata(ledger, result)
    if data is not None:
        check_metadata(result, data)
        _settle_tier(ledger, result)
    if folder is not None:
        entries = hash_folder(folder, progress=progress)
    if entries is not None:
        check_files(result, entries)
    return result


@dataclass
class FileVerification:
    """Whether one file is part of a dataset, with the Merkle proof the chain accepted."""

    path: str
    sha256: str
    size: int
    dataset: bytes | None
    entry_path: str | None
    proof: list[str]
    on_chain: bool
    dataset_result: DatasetVerification | None

    @property
    def ok(self) -> bool:
        return self.on_chain and self.dataset_result is not None and self.dataset_result.ok

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "file": {"path": self.path, "sha256": self.sha256, "size": self.size},
            "dataset": hex32(self.dataset) if self.dataset else None,
            "entry_path": self.entry_path,
            "proof": self.proof,
            "proof_verified_on_chain": self.on_chain,
            "dataset_verification": self.dataset_result.to_json() if self.dataset_result else None,
        }


def verify_file(
    ledger: Ledger,
    *,
    file: str | Path | None = None,
    sha256: str | None = None,
    size: int | None = None,
    datasets: Sequence[bytes | str],
) -> FileVerification:
    """Find which of ``datasets`` contains a file (by its bytes, or by sha256 and size), build its
    Merkle proof from the dataset's metadata, and have the chain's ``verifyFile`` check it."""
    if file is not None:
        entry = hash_file(file)
        sha, sz, shown = entry.sha256, entry.size, str(file)
    elif sha256 is not None and size is not None:
        sha, sz, shown = sha256.lower().removeprefix("0x"), int(size), "(by hash)"
    else:
        raise InvalidInput("give a file, or its sha256 and size")
    for candidate in datasets:
        result = verify_dataset(ledger, candidate)
        md = result.metadata
        if md is None:
            continue
        for e in md.files:
            if e.sha256 == sha and e.size == sz:
                tree = content_tree(x.leaf() for x in md.files)
                proof = tree.proof(e.leaf())
                fn = ledger.datasets.functions.verifyFile(result.content_root, e.path, e.size, e.digest, proof)
                on_chain = bool(ledger.client.call(fn))
                return FileVerification(
                    shown, sha, sz, result.content_root, e.path, [hex32(p) for p in proof], on_chain, result
                )
    return FileVerification(shown, sha, sz, None, None, [], False, None)


def verify_lineage(
    ledger: Ledger,
    content_root: bytes | str,
    *,
    folder: str | Path | None = None,
    max_nodes: int = 100_000,
    workers: int = 16,
    progress: Callable[[int, int], None] | None = None,
) -> LineageReport:
    """Verify a dataset and every ancestor. Walks the DAG level by level: one batched chain read
    (``getDatasets``) per level and concurrent IPFS fetches, so the cost grows with the DAG's depth
    in round trips, not with its size. ``progress(done, known)`` is called after each level."""
    start = time.perf_counter()
    root = to_bytes32(content_root, "content root")
    nodes: dict[bytes, DatasetVerification] = {}
    edges: list[tuple[bytes, bytes]] = []
    rpc = 0
    ipfs_calls = 0
    frontier = [root]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        while frontier:
            if len(nodes) + len(frontier) > max_nodes:
                raise InvalidInput(f"lineage of {hex32(root)} exceeds {max_nodes} datasets")
            records = ledger.get_datasets(frontier)
            rpc += (len(frontier) + 199) // 200
            level: list[DatasetVerification] = []
            for r, rec in zip(frontier, records, strict=True):
                res = DatasetVerification(r)
                nodes[r] = res
                if not rec.exists:
                    res.failures.append(Finding(Reason.NOT_REGISTERED, f"no chain record for {hex32(r)}"))
                    continue
                res.record = rec
                check_status(res)
                level.append(res)
            fetched = list(pool.map(lambda res: _fetch_metadata(ledger, res), level))
            ipfs_calls += len(level)
            next_frontier: list[bytes] = []
            for res, data in zip(level, fetched, strict=True):
                if data is not None:
                    check_metadata(res, data)
                    if tier_unsettled(res):
                        rpc += 1
                        _settle_tier(ledger, res)
                assert res.record is not None
                for p in res.record.parents:
                    edges.append((res.content_root, p))
                    if p not in nodes and p not in next_frontier:
                        next_frontier.append(p)
            frontier = next_frontier
            if progress is not None:
                progress(len(nodes), len(nodes) + len(frontier))  # (verified, known so far)
    if folder is not None:
        check_files(nodes[root], hash_folder(folder))
    # a node whose ancestor failed is reported as such (its own checks may pass)
    failed = {r for r, n in nodes.items() if n.failures}
    parents_of: dict[bytes, list[bytes]] = {}
    for c, p in edges:
        parents_of.setdefault(c, []).append(p)

    def bad_ancestors(r: bytes, seen: set[bytes]) -> set[bytes]:
        out: set[bytes] = set()
        for p in parents_of.get(r, []):
            if p in seen:
                continue
            seen.add(p)
            if p in failed:
                out.add(p)
            out |= bad_ancestors(p, seen)
        return out

    bad = bad_ancestors(root, set())
    if bad:
        nodes[root].warnings.append(
            Finding(
                Reason.ANCESTOR_FAILED, f"{len(bad)} ancestor(s) failed verification: {sorted(hex32(b) for b in bad)}"
            )
        )
    return LineageReport(root, nodes, edges, rpc, ipfs_calls, time.perf_counter() - start)


def lineage_graph(ledger: Ledger, content_root: bytes | str, *, max_nodes: int = 100_000) -> dict[str, Any]:
    """The lineage DAG from the chain alone (no IPFS): every ancestor's record and the edges, read
    level by level with batched ``getDatasets`` calls."""
    root = to_bytes32(content_root, "content root")
    ledger.get_dataset(root)  # DatasetNotFound for an unknown root
    records: dict[bytes, DatasetRecord] = {}
    edges: list[tuple[bytes, bytes]] = []
    frontier = [root]
    while frontier:
        if len(records) + len(frontier) > max_nodes:
            raise InvalidInput(f"lineage of {hex32(root)} exceeds {max_nodes} datasets")
        nxt: list[bytes] = []
        for r, rec in zip(frontier, ledger.get_datasets(frontier), strict=True):
            records[r] = rec
            for p in rec.parents:
                edges.append((r, p))
                if p not in records and p not in nxt and p not in frontier:
                    nxt.append(p)
        frontier = nxt
    return {
        "root": hex32(root),
        "nodes": [
            {
                "content_root": hex32(r),
                "status": rec.status.name.lower(),
                "holder": rec.holder if rec.exists else None,
                "tier": rec.tier.name.lower(),
                "parents": [hex32(p) for p in rec.parents],
            }
            for r, rec in records.items()
        ],
        "edges": [{"child": hex32(c), "parent": hex32(p)} for c, p in edges],
    }
