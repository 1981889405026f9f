"""Registration and verification through the real chain and IPFS daemon, including every tamper
scenario the verifier must name: metadata altered on IPFS, a file altered, metadata parents,
classification or tier that differ from the chain's, an ancestor retracted or suspended, a
deprecated ancestor, and a missing metadata document. Where the tampering can be undone,
verification passes again afterwards."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from ledger_fixtures import metadata_for, unique_files, write_files

from ledger.content.cid import digest_of
from ledger.core.classification import DatasetStatus, Tier
from ledger.core.errors import AccessDenied, DatasetAlreadyRegistered
from ledger.core.records import ZERO32, hex32
from ledger.devstack.nodes import IpfsNode
from ledger.rules.verification import Reason
from ledger.services.ledger import Ledger
from ledger.services.verification import lineage_graph, verify_dataset, verify_file, verify_lineage


@pytest.fixture
def holder(make_actor: Callable[..., LocalAccount]) -> LocalAccount:
    return make_actor("holder")


def _register(ledger: Ledger, holder: LocalAccount, folder: Path, **kw: Any) -> bytes:
    reg = ledger.register_dataset(holder, metadata_for(holder.address, folder, **kw))
    return reg.content_root


@contextmanager
def tampered_block(ipfs_node: IpfsNode, cid: str, new_bytes: bytes) -> Iterator[None]:
    """Overwrite a block in the js-ipfs repository on disk (flatfs: blocks/<shard>/<KEY>.data with
    KEY the base32 multihash), as a compromised node would, and restore it afterwards."""
    multihash = bytes([0x12, 0x20]) + digest_of(cid)
    key = base64.b32encode(multihash).decode().rstrip("=")
    path = ipfs_node.repo_dir / "blocks" / key[-3:-1] / f"{key}.data"
    assert path.exists(), f"block file {path} not found"
    original = path.read_bytes()
    path.write_bytes(new_bytes)
    try:
        yield
    finally:
        path.write_bytes(original)


def test_register_and_verify_with_files(ledger: Ledger, holder: LocalAccount, tmp_path: Path) -> None:
    folder = write_files(tmp_path / "cohort", unique_files("a"))
    root = _register(ledger, holder, folder)
    rec = ledger.get_dataset(root)
    assert rec.holder == holder.address and rec.status == DatasetStatus.ACTIVE
    result = verify_dataset(ledger, root, folder=folder)
    assert result.ok, result.to_json()
    assert result.files_checked == 2

    # the same content again: refused before anything is pinned, naming the existing record
    md = metadata_for(holder.address, folder)
    with pytest.raises(DatasetAlreadyRegistered) as info:
        ledger.register_dataset(holder, md)
    assert info.value.args_["contentRoot"] == hex32(root)


def test_unprivileged_registration_pins_nothing(ledger: Ledger, make_actor: Any, tmp_path: Path) -> None:
    stranger = make_actor()
    folder = write_files(tmp_path / "x", unique_files("stranger"))
    md = metadata_for(stranger.address, folder)
    with pytest.raises(AccessDenied):
        ledger.register_dataset(stranger, md)
    assert not ledger.ipfs.is_pinned(md.cid())


def test_file_altered_then_restored(ledger: Ledger, holder: LocalAccount, tmp_path: Path) -> None:
    folder = write_files(tmp_path / "f", unique_files("file"))
    root = _register(ledger, holder, folder)
    original = (folder / "records.csv").read_bytes()
    (folder / "records.csv").write_bytes(original + b"tampered\n")
    result = verify_dataset(ledger, root, folder=folder)
    assert not result.ok and Reason.FILE_ALTERED in result.reasons
    (folder / "records.csv").write_bytes(original)
    assert verify_dataset(ledger, root, folder=folder).ok


def test_metadata_altered_on_ipfs_then_restored(
    ledger: Ledger, holder: LocalAccount, tmp_path: Path, ipfs_node: IpfsNode
) -> None:
    folder = write_files(tmp_path / "m", unique_files("meta"))
    md = metadata_for(holder.address, folder)
    root = ledger.register_dataset(holder, md).content_root
    forged = md.to_canonical_bytes().replace(b"Synthetic cohort", b"Synthetic cohorT")
    with tampered_block(ipfs_node, md.cid(), forged):
        result = verify_dataset(ledger, root)
        assert Reason.METADATA_TAMPERED in result.reasons, result.to_json()
        assert not result.ok
    assert verify_dataset(ledger, root).ok


def test_missing_metadata_then_added(ledger: Ledger, holder: LocalAccount, tmp_path: Path) -> None:
    folder = write_files(tmp_path / "missing", unique_files("missing"))
    md = metadata_for(holder.address, folder)
    # anchored without pinning: as if the holder's node lost the document
    ledger.write(
        holder, "DatasetRegistry", "register", md.content_root(), md.digest(), [], ZERO32, 2, 0x0101, 0, ZERO32
    )
    result = verify_dataset(ledger, md.content_root())
    assert Reason.METADATA_MISSING in result.reasons and not result.ok
    ledger.ipfs.put(md.to_canonical_bytes())
    assert verify_dataset(ledger, md.content_root()).ok


def test_classification_differs_from_chain(ledger: Ledger, holder: LocalAccount, tmp_path: Path) -> None:
    folder = write_files(tmp_path / "cls", unique_files("classification"))
    md = metadata_for(holder.address, folder)  # classification 0x0101, tier controlled
    ledger.ipfs.put(md.to_canonical_bytes())
    # registered directly with the contract under another classification (0x0402, post-market)
    ledger.write(
        holder, "DatasetRegistry", "register", md.content_root(), md.digest(), [], ZERO32, 2, 0x0402, 0, ZERO32
    )
    result = verify_dataset(ledger, md.content_root())
    assert not result.ok
    assert result.reasons == {Reason.CLASSIFICATION_MISMATCH}, result.to_json()
    assert "0x0101" in result.failures[0].detail and "0x0402" in result.failures[0].detail
    # the same for the sharing tier: the metadata says controlled (2), the chain records open (0)
    other = metadata_for(holder.address, write_files(tmp_path / "tier", unique_files("tier")))
    ledger.ipfs.put(other.to_canonical_bytes())
    ledger.write(
        holder, "DatasetRegistry", "register", other.content_root(), other.digest(), [], ZERO32, 0, 0x0101, 0, ZERO32
    )
    tier_result = verify_dataset(ledger, other.content_root())
    assert tier_result.reasons == {Reason.TIER_MISMATCH} and not tier_result.ok, tier_result.to_json()
    # a tier the holder changes after a faithful registration is no mismatch
    shared = _register(ledger, holder, write_files(tmp_path / "shared", unique_files("shared")))
    ledger.set_sharing(holder, shared, Tier.OPEN, 0)
    assert ledger.get_dataset(shared).tier == Tier.OPEN
    assert verify_dataset(ledger, shared).ok
    assert verify_lineage(ledger, shared).ok


def test_parents_differ_from_chain(ledger: Ledger, holder: LocalAccount, tmp_path: Path) -> None:
    a = _register(ledger, holder, write_files(tmp_path / "pa", unique_files("pa")))
    b = _register(ledger, holder, write_files(tmp_path / "pb", unique_files("pb")))
    folder = write_files(tmp_path / "child", unique_files("child"))
    md = metadata_for(holder.address, folder, parents=[hex32(a)])
    ledger.ipfs.put(md.to_canonical_bytes())
    # the chain records parent b while the metadata claims a
    ledger.write(
        holder,
        "DatasetRegistry",
        "register",
        md.content_root(),
        md.digest(),
        [b],
        md.activity_digest(),
        2,
        0x0101,
        0,
        ZERO32,
    )
    result = verify_dataset(ledger, md.content_root())
    assert Reason.PARENTS_MISMATCH in result.reasons and not result.ok
    # records are append-only, so this cannot be undone; a consistent registration verifies:
    good = metadata_for(holder.address, write_files(tmp_path / "child2", unique_files("c2")), parents=[hex32(a)])
    root = ledger.register_dataset(holder, good).content_root
    assert verify_dataset(ledger, root).ok


def test_lineage_with_suspended_retracted_and_deprecated_ancestors(
    ledger: Ledger, holder: LocalAccount, make_actor: Any, tmp_path: Path
) -> None:
    auditor = make_actor("auditor")
    base = _register(ledger, holder, write_files(tmp_path / "base", unique_files("base")))
    other = _register(ledger, holder, write_files(tmp_path / "other", unique_files("other")))
    mid = _register(ledger, holder, write_files(tmp_path / "mid", unique_files("mid")), parents=[hex32(base)])
    leaf = _register(
        ledger,
        holder,
        write_files(tmp_path / "leaf", unique_files("leaf")),
        parents=[hex32(mid), hex32(other)],
        activity="merge",
    )

    report = verify_lineage(ledger, leaf)
    assert report.ok, report.to_json()
    assert set(report.nodes) == {leaf, mid, base, other}
    assert (mid, base) in report.edges and (leaf, other) in report.edges

    # suspended ancestor: fails with its own reason, passes after reinstatement
    ledger.suspend_dataset(auditor, base, b"\x01" * 32)
    report = verify_lineage(ledger, leaf)
    assert not report.ok
    assert Reason.SUSPENDED in report.nodes[base].reasons
    assert Reason.ANCESTOR_FAILED in report.nodes[leaf].reasons
    assert report.flagged_ancestors()["suspended"] == [hex32(base)]
    ledger.reinstate_dataset(auditor, base)
    assert verify_lineage(ledger, leaf).ok

    # deprecated ancestor: a warning naming the successor, the lineage still verifies
    newer = _register(
        ledger,
        holder,
        write_files(tmp_path / "newer", unique_files("newer")),
        parents=[hex32(other)],
        activity="revision",
    )
    ledger.deprecate(holder, other, newer)
    report = verify_lineage(ledger, leaf)
    assert report.ok
    assert Reason.DEPRECATED in report.nodes[other].reasons
    assert report.flagged_ancestors()["deprecated"] == [hex32(other)]

    # retracted ancestor: final, fails with its own reason
    ledger.retract(holder, base)
    report = verify_lineage(ledger, leaf)
    assert not report.ok
    assert Reason.RETRACTED in report.nodes[base].reasons
    assert report.flagged_ancestors()["retracted"] == [hex32(base)]


def test_verify_one_file_with_chain_checked_proof(ledger: Ledger, holder: LocalAccount, tmp_path: Path) -> None:
    folder = write_files(tmp_path / "vf", {f"part-{i}.csv": f"row {i}\n".encode() for i in range(5)})
    root = _register(ledger, holder, folder)
    other = _register(ledger, holder, write_files(tmp_path / "vf2", unique_files("vf2")))
    result = verify_file(ledger, file=folder / "part-3.csv", datasets=[other, root])
    assert result.ok and result.dataset == root and result.entry_path == "part-3.csv"
    assert result.on_chain and result.proof
    missing = verify_file(ledger, sha256=hashlib.sha256(b"nope").hexdigest(), size=4, datasets=[root])
    assert not missing.ok and missing.dataset is None


def test_lineage_graph_from_the_chain_alone(ledger: Ledger, holder: LocalAccount, tmp_path: Path) -> None:
    a = _register(ledger, holder, write_files(tmp_path / "ga", unique_files("ga")))
    b = _register(ledger, holder, write_files(tmp_path / "gb", unique_files("gb")), parents=[hex32(a)])
    c = _register(
        ledger, holder, write_files(tmp_path / "gc", unique_files("gc")), parents=[hex32(a), hex32(b)], activity="merge"
    )
    graph = lineage_graph(ledger, c)
    assert {n["content_root"] for n in graph["nodes"]} == {hex32(a), hex32(b), hex32(c)}
    assert len(graph["edges"]) == 3
