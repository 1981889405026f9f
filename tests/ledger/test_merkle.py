"""Merkle trees: byte-for-byte agreement with @openzeppelin/merkle-tree, proofs, dump/load, speed."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from eth_abi.abi import encode

from ledger.content.merkle import (
    CONTENT_TYPES,
    SUBJECT_TYPES,
    MultiProof,
    StandardMerkleTree,
    abi_encode,
    content_tree,
    encode_content_leaf,
    encode_subject_leaf,
    keccak256,
    leaf_hash,
    subject_tree,
    verify,
    verify_multiproof,
)
from ledger.core.config import PROJECT_ROOT
from ledger.core.errors import InvalidInput

COMPAT_SCRIPT = Path(__file__).resolve().parent.parent / "js" / "merkle_compat.js"
NODE = shutil.which("node")


def _require_js() -> None:
    """Node and @openzeppelin/merkle-tree are installed by scripts/bootstrap.sh: their absence is a
    broken setup, reported as a failure rather than skipped."""
    assert NODE is not None, "node is not on PATH (the project needs Node 20)"
    tree = PROJECT_ROOT / "node_modules" / "@openzeppelin" / "merkle-tree"
    assert tree.exists(), f"{tree} is missing: run scripts/bootstrap.sh"

UNICODE_PATHS = [
    "影像/胸部CT/患者队列-001.dcm",
    "données/été.csv",
    "emoji/🧬-sequence.fastq",
    "combining/e\u0301clair.txt",  # NFD: must not be normalised
    ".hidden/.env-like",
    "a" * 70 + ".txt",  # longer than two ABI words
    "x",
]


def run_js(payload: dict[str, Any]) -> dict[str, Any]:
    _require_js()
    assert NODE is not None
    result = subprocess.run(
        [NODE, str(COMPAT_SCRIPT)],
        input=json.dumps(payload).encode(),
        capture_output=True,
        cwd=PROJECT_ROOT,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()
    answer: dict[str, Any] = json.loads(result.stdout)
    return answer


def content_values(count: int, seed: int) -> list[tuple[str, int, bytes]]:
    rng = random.Random(seed)
    values = []
    for i in range(count):
        path = UNICODE_PATHS[i] if i < len(UNICODE_PATHS) else f"dir{rng.randrange(5)}/file-{i}.bin"
        values.append((path, rng.choice([0, 1, 31, 32, 33, rng.randrange(1 << 40), (1 << 256) - 1]), rng.randbytes(32)))
    return values


def js_content(values: list[tuple[str, int, bytes]]) -> list[list[str]]:
    return [[p, str(s), "0x" + d.hex()] for p, s, d in values]


def hexes(items: list[bytes]) -> list[str]:
    return ["0x" + item.hex() for item in items]


# ---------------------------------------------------------------------------------------------
# agreement with the JavaScript library
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("count", [1, 2, 3, 7, 100])
def test_content_tree_matches_openzeppelin(count: int) -> None:
    values = content_values(count, seed=count)
    tree = content_tree(values)
    indices = list(range(0, count, 3))
    js = run_js({"values": js_content(values), "types": list(CONTENT_TYPES), "multiproof": indices})
    assert tree.root_hex == js["root"]
    assert [hexes(tree.proof(i)) for i in range(count)] == js["proofs"]
    assert tree.dump()["tree"] == js["dump"]["tree"]
    assert [v["treeIndex"] for v in tree.dump()["values"]] == [v["treeIndex"] for v in js["dump"]["values"]]
    multi = tree.multiproof(indices)
    assert hexes(multi.proof) == js["multiproof"]["proof"]
    assert multi.proof_flags == js["multiproof"]["proofFlags"]
    assert [[p, str(s), "0x" + d.hex()] for p, s, d in multi.leaves] == js["multiproof"]["leaves"]


@pytest.mark.parametrize("count", [1, 2, 5, 64])
def test_subject_tree_matches_openzeppelin(count: int) -> None:
    rng = random.Random(count)
    addresses = ["0x" + rng.randbytes(20).hex() for _ in range(count)]
    tree = subject_tree(addresses)
    js = run_js({"values": [[a] for a in addresses], "types": list(SUBJECT_TYPES)})
    assert tree.root_hex == js["root"]
    assert [hexes(tree.proof(i)) for i in range(count)] == js["proofs"]


def test_generic_types_fall_back_to_eth_abi() -> None:
    values = [["0x" + bytes([i]).hex() * 20, str(i * 10**18)] for i in range(1, 6)]
    tree = StandardMerkleTree.of(values, ["address", "uint256"])
    js = run_js({"values": values, "types": ["address", "uint256"]})
    assert tree.root_hex == js["root"]
    assert [hexes(tree.proof(i)) for i in range(len(values))] == js["proofs"]


def test_dump_loads_in_javascript_and_back() -> None:
    values = content_values(9, seed=42)
    tree = content_tree(values)
    js = run_js({"dump": tree.dump()})
    assert js["root"] == tree.root_hex
    assert js["proofs"] == [hexes(tree.proof(i)) for i in range(len(values))]
    again = StandardMerkleTree.load(js["dump"])
    assert again.root == tree.root
    assert again.values == tree.values


# ---------------------------------------------------------------------------------------------
# hand-written ABI encodings
# ---------------------------------------------------------------------------------------------


def test_hand_encoding_equals_eth_abi_for_random_content_leaves() -> None:
    rng = random.Random(7)
    alphabet = "abcxyz/._-0123456789影像数据éü🧬 "
    for _ in range(500):
        path = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 90)))
        size = rng.choice([0, rng.randrange(1 << 64), rng.randrange(1 << 256)])
        digest = rng.randbytes(32)
        assert encode_content_leaf(path, size, digest) == encode(list(CONTENT_TYPES), [path, size, digest])


def test_hand_encoding_equals_eth_abi_for_random_addresses() -> None:
    rng = random.Random(8)
    for _ in range(500):
        raw = rng.randbytes(20)
        assert encode_subject_leaf(raw) == encode(["address"], ["0x" + raw.hex()])
        assert abi_encode(SUBJECT_TYPES, ("0x" + raw.hex(),)) == encode(["address"], ["0x" + raw.hex()])


def test_leaf_hash_is_double_keccak_of_abi_encoding() -> None:
    value = ("a.txt", 5, b"\xab" * 32)
    assert leaf_hash(CONTENT_TYPES, value) == keccak256(keccak256(encode(list(CONTENT_TYPES), list(value))))
    # the JS library's known answer for this leaf (single-leaf tree: root = leaf)
    assert content_tree([value]).root_hex == "0x4b7170b38d7a1743e01fdbeb2ccc5bb27528820c8ae2a3efd80c7aa1f5ced7ab"


# ---------------------------------------------------------------------------------------------
# proofs and lookups
# ---------------------------------------------------------------------------------------------


def test_every_proof_verifies_and_tampering_fails() -> None:
    values = content_values(13, seed=3)
    tree = content_tree(values)
    for i, value in enumerate(values):
        proof = tree.proof(value)
        assert proof == tree.proof(i)
        assert verify(tree.root, CONTENT_TYPES, value, proof)
        assert verify(tree.root_hex, CONTENT_TYPES, value, ["0x" + p.hex() for p in proof])
        assert tree.verify(i, proof)
        changed = (value[0], value[1] + 1, value[2])
        assert not verify(tree.root, CONTENT_TYPES, changed, proof)
        if proof:
            assert not verify(tree.root, CONTENT_TYPES, value, proof[:-1])
    assert not verify(b"\x00" * 32, CONTENT_TYPES, values[0], tree.proof(0))
    assert not verify(tree.root, CONTENT_TYPES, values[0], ["0x1234"])  # malformed: False, not an exception


def test_values_in_other_spellings_name_the_same_leaf() -> None:
    digest = bytes(range(32))
    tree = content_tree([("a", 1, digest), ("b", 2, digest)])
    assert tree.index_of(("a", "1", "0x" + digest.hex())) == 0
    assert ("b", 2, digest.hex().upper()) in tree
    assert ("c", 2, digest) not in tree
    with pytest.raises(InvalidInput):
        tree.proof(("c", 2, digest))
    with pytest.raises(InvalidInput):
        tree.proof(5)


def test_multiproof_verifies() -> None:
    values = content_values(20, seed=11)
    tree = content_tree(values)
    multi = tree.multiproof([values[1], 4, 17])
    assert tree.verify_multiproof(multi)
    assert verify_multiproof(tree.root, CONTENT_TYPES, multi)
    forged = MultiProof(leaves=[values[2], *multi.leaves[1:]], proof=multi.proof, proof_flags=multi.proof_flags)
    assert not verify_multiproof(tree.root, CONTENT_TYPES, forged)
    with pytest.raises(InvalidInput):
        tree.multiproof([1, 1])


def test_refusals() -> None:
    with pytest.raises(InvalidInput):
        content_tree([])
    with pytest.raises(InvalidInput, match="duplicate file path"):
        content_tree([("a", 1, b"\x01" * 32), ("a", 2, b"\x02" * 32)])
    with pytest.raises(InvalidInput, match="duplicate subject"):
        subject_tree(["0x" + "11" * 20, "0x" + "11" * 20])
    with pytest.raises(InvalidInput):
        content_tree([("a", -1, b"\x01" * 32)])
    with pytest.raises(InvalidInput):
        content_tree([("a", 1 << 256, b"\x01" * 32)])
    with pytest.raises(InvalidInput):
        content_tree([("a", 1, b"\x01" * 31)])
    with pytest.raises(InvalidInput):
        subject_tree(["0x1234"])


def test_load_rejects_a_tampered_dump() -> None:
    tree = content_tree(content_values(5, seed=5))
    dump = tree.dump()
    assert StandardMerkleTree.load(json.loads(json.dumps(dump))).root == tree.root
    bad_value = json.loads(json.dumps(dump))
    bad_value["values"][0]["value"][1] = "999"
    with pytest.raises(InvalidInput):
        StandardMerkleTree.load(bad_value)
    bad_node = json.loads(json.dumps(dump))
    bad_node["tree"][0] = "0x" + "00" * 32
    with pytest.raises(InvalidInput):
        StandardMerkleTree.load(bad_node)
    with pytest.raises(InvalidInput):
        StandardMerkleTree.load({**dump, "format": "simple-v1"})


def test_subject_dump_uses_checksummed_addresses() -> None:
    tree = subject_tree(["0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266"])
    assert tree.dump()["values"][0]["value"] == ["0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"]


def test_hundred_thousand_leaves_is_fast() -> None:
    values = [(f"cohort/sample-{i:06d}.vcf.gz", i * 1000 + 17, os.urandom(32)) for i in range(100_000)]
    started = time.perf_counter()
    tree = content_tree(values)
    elapsed = time.perf_counter() - started
    assert len(tree) == 100_000
    assert verify(tree.root, CONTENT_TYPES, values[54_321], tree.proof(54_321))
    assert elapsed < 5.0, f"100k-leaf content tree took {elapsed:.2f} s"
    addresses = ["0x" + os.urandom(20).hex() for _ in range(100_000)]
    started = time.perf_counter()
    subject_tree(addresses)
    assert time.perf_counter() - started < 5.0
