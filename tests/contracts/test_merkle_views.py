"""Merkle proof views: DatasetRegistry.verifyFile and verifySubject against trees built by
OpenZeppelin's @openzeppelin/merkle-tree (run under node) and by the Python re-implementation in
chain_helpers, which must agree byte for byte."""

import hashlib

import pytest
from chain_helpers import (
    ZERO32,
    StandardMerkleTree,
    Tier,
    b32,
    hex32,
    js_merkle_tree,
)

FILE_ENCODING = ["string", "uint256", "bytes32"]


def file_entries(n, prefix="data"):
    entries = []
    for i in range(n):
        content = f"{prefix} file {i}".encode() * (i + 1)
        entries.append([f"{prefix}/part-{i:03d}.csv", len(content), hashlib.sha256(content).digest()])
    return entries


@pytest.fixture(scope="module")
def files():
    entries = [*file_entries(7), ["临床/报告 é.json", 12, hashlib.sha256(b"unicode").digest()]]
    root, proofs = js_merkle_tree(entries, FILE_ENCODING)
    return entries, root, proofs


@pytest.fixture(scope="module")
def subjects_tree(accounts):
    subjects = [[a.address] for a in accounts[:6]] + [[f"0x{i:040x}"] for i in range(1, 6)]
    root, proofs = js_merkle_tree(subjects, ["address"])
    return subjects, root, proofs


def test_python_tree_matches_openzeppelin_js(files, subjects_tree):
    for (values, root, proofs), encoding in ((files, FILE_ENCODING), (subjects_tree, ["address"])):
        tree = StandardMerkleTree(values, encoding)
        assert tree.root == root
        assert [tree.proof(i) for i in range(len(values))] == proofs


@pytest.mark.parametrize("n", [1, 2, 3, 37])
def test_tree_shapes_agree(n):
    entries = file_entries(n, prefix=f"n{n}")
    root, proofs = js_merkle_tree(entries, FILE_ENCODING)
    tree = StandardMerkleTree(entries, FILE_ENCODING)
    assert tree.root == root
    assert [tree.proof(i) for i in range(n)] == proofs
    if n == 1:
        assert proofs == [[]]


def test_verify_file(datasets, register, holder, files):
    entries, root, proofs = files
    register(holder, root=hex32(root))
    for (path, size, digest), proof in zip(entries, proofs, strict=True):
        assert datasets.verifyFile(hex32(root), path, size, digest, [hex32(p) for p in proof])


def test_verify_file_rejects_wrong_entries(datasets, register, holder, files):
    entries, root, proofs = files
    register(holder, root=hex32(root))
    path, size, digest = entries[2]
    proof = [hex32(p) for p in proofs[2]]
    assert datasets.verifyFile(hex32(root), path, size, digest, proof)
    assert not datasets.verifyFile(hex32(root), path + "x", size, digest, proof)
    assert not datasets.verifyFile(hex32(root), path, size + 1, digest, proof)
    assert not datasets.verifyFile(hex32(root), path, size, b32("other"), proof)
    assert not datasets.verifyFile(hex32(root), path, size, digest, [hex32(p) for p in proofs[3]])
    assert not datasets.verifyFile(hex32(root), path, size, digest, [])
    assert not datasets.verifyFile(hex32(root), path, size, digest, proof[:-1])


def test_verify_file_needs_registered_dataset(datasets, files):
    entries, root, proofs = files
    path, size, digest = entries[0]
    assert not datasets.verifyFile(hex32(root), path, size, digest, [hex32(p) for p in proofs[0]])


def test_single_file_dataset(datasets, register, holder):
    entries = file_entries(1, prefix="single")
    root, _proofs = js_merkle_tree(entries, FILE_ENCODING)
    register(holder, root=hex32(root))
    path, size, digest = entries[0]
    assert datasets.verifyFile(hex32(root), path, size, digest, [])


def test_large_tree_sample(datasets, register, holder):
    entries = file_entries(37, prefix="big")
    root, proofs = js_merkle_tree(entries, FILE_ENCODING)
    register(holder, root=hex32(root))
    for i in (0, 1, 17, 35, 36):
        path, size, digest = entries[i]
        assert datasets.verifyFile(hex32(root), path, size, digest, [hex32(p) for p in proofs[i]])


def test_verify_subject(datasets, register, holder, subjects_tree, accounts):
    subjects, root, proofs = subjects_tree
    dataset = register(holder, tier=Tier.CONTROLLED, subject_root=hex32(root))
    for (subject,), proof in zip(subjects, proofs, strict=True):
        assert datasets.verifySubject(dataset, subject, [hex32(p) for p in proof])
    outsider = accounts[9].address
    assert not datasets.verifySubject(dataset, outsider, [hex32(p) for p in proofs[0]])
    assert not datasets.verifySubject(dataset, subjects[1][0], [hex32(p) for p in proofs[0]])


def test_verify_subject_without_subject_root(datasets, register, holder, subjects_tree):
    subjects, _root, proofs = subjects_tree
    dataset = register(holder, subject_root=ZERO32)
    assert not datasets.verifySubject(dataset, subjects[0][0], [hex32(p) for p in proofs[0]])
    assert not datasets.verifySubject(b32("unregistered"), subjects[0][0], [hex32(p) for p in proofs[0]])


def test_subject_root_is_not_a_file_root(datasets, register, holder, subjects_tree, files):
    """A subject proof does not verify as a file and vice versa (different leaf encodings)."""
    subjects, sroot, _sproofs = subjects_tree
    entries, froot, fproofs = files
    dataset = register(holder, root=hex32(froot), subject_root=hex32(sroot))
    path, size, digest = entries[0]
    assert datasets.verifyFile(dataset, path, size, digest, [hex32(p) for p in fproofs[0]])
    assert not datasets.verifySubject(dataset, subjects[0][0], [hex32(p) for p in fproofs[0]])
