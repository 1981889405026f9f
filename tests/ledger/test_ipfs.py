"""IpfsStore against a real js-ipfs daemon, and CID helpers checked against aleph-cid."""

from __future__ import annotations

import base64
import hashlib
import os
import time
from pathlib import Path

import aleph_cid
import ipfshttpclient
import pytest

from ledger.content.cid import MAX_DOCUMENT_SIZE, Cid, cid_from_digest, cid_of, content_matches, digest_of, same_cid
from ledger.content.metadata import ActivityDescription
from ledger.core.errors import (
    DocumentTooLarge,
    InvalidInput,
    LedgerError,
    MetadataIntegrityError,
    MetadataNotFound,
    NodeUnavailable,
)
from ledger.devstack.nodes import IpfsNode, free_port
from ledger.storage.ipfs import IpfsStore, to_multiaddr

# ---------------------------------------------------------------------------------------------
# CIDs, no daemon
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 1000, 256 * 1024])
def test_cid_of_equals_aleph_cid_raw_leaves(size: int) -> None:
    data = os.urandom(size)
    hasher = aleph_cid.CidHasher.for_ipfs_v1_raw_leaves()
    hasher.update(data)
    assert cid_of(data) == hasher.finalize()  # up to one 256 KiB chunk, Kubo's default is one raw block


@pytest.mark.parametrize("size", [256 * 1024 + 1, MAX_DOCUMENT_SIZE])
def test_cid_of_larger_documents_is_still_one_raw_block(size: int) -> None:
    data = os.urandom(size)
    assert cid_of(data).startswith("bafkrei")
    assert content_matches(data, cid_of(data))
    default = aleph_cid.CidHasher.for_ipfs_v1_raw_leaves()
    default.update(data)
    assert default.finalize().startswith("bafybei")  # Kubo's default import would chunk it


def test_digest_round_trip() -> None:
    digest = hashlib.sha256(b"document").digest()
    cid = cid_from_digest(digest)
    assert cid.startswith("bafkrei")
    assert digest_of(cid) == digest
    assert cid_from_digest("0x" + digest.hex()) == cid
    assert cid_from_digest(digest_of(cid)) == cid


def test_cids_compare_decoded() -> None:
    cid = cid_of(b"hello")
    parsed = Cid.parse(cid)
    raw = b"\x01\x55\x12\x20" + parsed.digest
    alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
    number = int.from_bytes(raw, "big")
    b58 = ""
    while number:
        number, rest = divmod(number, 58)
        b58 = alphabet[rest] + b58
    assert same_cid(cid, "z" + b58)
    assert same_cid(cid, "B" + base64.b32encode(raw).decode().rstrip("="))
    assert same_cid(cid, "f" + raw.hex())
    assert same_cid(cid, "/ipfs/" + cid)
    assert not same_cid(cid, cid_of(b"hello!"))
    v0 = aleph_cid.compute_cid(b"hello")
    assert Cid.parse(v0).version == 0
    assert str(Cid.parse(v0)) == v0


def test_digest_of_refuses_other_cids() -> None:
    with pytest.raises(InvalidInput, match="raw-block"):
        digest_of(aleph_cid.compute_cid(b"x"))  # CIDv0, dag-pb
    for bad in ["", "hello", "bafy", "Qm123", "x" + cid_of(b"a")[1:]]:
        with pytest.raises(InvalidInput):
            Cid.parse(bad)
    with pytest.raises(InvalidInput):
        cid_from_digest(b"short")


def test_to_multiaddr() -> None:
    assert to_multiaddr("/ip4/127.0.0.1/tcp/5002/http") == "/ip4/127.0.0.1/tcp/5002/http"
    assert to_multiaddr("http://127.0.0.1:5002") == "/ip4/127.0.0.1/tcp/5002/http"
    assert to_multiaddr("https://kubo.example.org") == "/dns/kubo.example.org/tcp/443/https"


# ---------------------------------------------------------------------------------------------
# the store on a real daemon
# ---------------------------------------------------------------------------------------------


def test_put_gives_pinned_raw_block_cids(ipfs_store: IpfsStore, ipfs_node: IpfsNode) -> None:
    for size in (0, 10, 256 * 1024, 256 * 1024 + 1, MAX_DOCUMENT_SIZE):
        data = os.urandom(size)
        cid = ipfs_store.put(data)
        assert cid.startswith("bafkrei"), (size, cid)
        assert cid == cid_of(data)
        checker = aleph_cid.CidHasher.for_expected(cid)
        checker.update(data)
        assert same_cid(checker.finalize(), cid)
        assert ipfs_store.get(cid) == data
    client = ipfshttpclient.Client(ipfs_node.api_multiaddr)
    try:
        pins = dict(client.pin.ls(type="recursive"))["Keys"]
    finally:
        client.close()
    assert any(same_cid(pinned, cid) for pinned in pins)  # js-ipfs lists them in base58btc


def test_documents_over_one_mebibyte_are_refused(ipfs_store: IpfsStore) -> None:
    with pytest.raises(DocumentTooLarge, match="1 MiB"):
        ipfs_store.put(b"x" * (MAX_DOCUMENT_SIZE + 1))


def test_put_json_get_json(ipfs_store: IpfsStore) -> None:
    described = ActivityDescription.model_validate(
        {
            "type": "aggregation",
            "agent": "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
            "started": "2025-01-01T00:00:00Z",
            "ended": "2025-01-01T01:00:00Z",
            "description": {"en": "weekly counts", "zh-CN": "每周计数"},
        }
    )
    cid = ipfs_store.put_json(described)
    assert cid == described.cid()
    assert digest_of(cid) == described.digest()
    assert ipfs_store.get_json(cid, ActivityDescription) == described
    plain = ipfs_store.put_json({"b": 1, "a": [True, None, "中"]})
    assert ipfs_store.get(plain) == b'{"a":[true,null,"\xe4\xb8\xad"],"b":1}'
    assert ipfs_store.get_json(plain) == {"a": [True, None, "中"], "b": 1}


def test_missing_cid_times_out_as_not_found(ipfs_node: IpfsNode) -> None:
    missing = cid_of(os.urandom(64))
    with IpfsStore(ipfs_node.api_multiaddr, timeout=1.5) as store:
        started = time.monotonic()
        with pytest.raises(MetadataNotFound, match="not found"):
            store.get(missing)
        elapsed = time.monotonic() - started
        assert elapsed < 1.5 + 2.5, f"a missing CID took {elapsed:.1f} s"
        started = time.monotonic()
        with pytest.raises(MetadataNotFound):
            store.get(missing, timeout=0.5)
        assert time.monotonic() - started < 2.5


def test_daemon_down_is_node_unavailable_fast() -> None:
    port = free_port()
    with IpfsStore(f"/ip4/127.0.0.1/tcp/{port}/http", timeout=30) as store:
        started = time.monotonic()
        with pytest.raises(NodeUnavailable):
            store.get(cid_of(b"x"))
        with pytest.raises(NodeUnavailable):
            store.put(b"x")
        assert not store.is_available()
        assert time.monotonic() - started < 5


def block_file(repo: Path, cid: str) -> Path:
    """Where js-ipfs's flatfs keeps a block: base32 of the multihash, sharded by next-to-last/2."""
    multihash = b"\x12\x20" + digest_of(cid)
    key = base64.b32encode(multihash).decode().rstrip("=")
    return repo / "blocks" / key[-3:-1] / f"{key}.data"


def test_tampered_block_is_an_integrity_error(ipfs_store: IpfsStore, ipfs_node: IpfsNode) -> None:
    original = b'{"title":"original document"}'
    cid = ipfs_store.put(original)
    path = block_file(ipfs_node.repo_dir, cid)
    assert path.read_bytes() == original
    path.write_bytes(b'{"title":"tampered document"}')  # what a compromised node would serve
    with pytest.raises(MetadataIntegrityError, match="does not hash"):
        ipfs_store.get(cid)
    path.write_bytes(original)
    assert ipfs_store.get(cid) == original


def test_other_cid_flavours_are_verified_with_aleph_cid(ipfs_store: IpfsStore, ipfs_node: IpfsNode) -> None:
    data = os.urandom(5000)
    client = ipfshttpclient.Client(ipfs_node.api_multiaddr)
    try:
        v0 = client.add_bytes(data)  # default import: CIDv0, dag-pb
    finally:
        client.close()
    assert v0 == aleph_cid.compute_cid(data)
    assert ipfs_store.get(v0) == data


def test_get_many_in_parallel(ipfs_store: IpfsStore) -> None:
    documents = [f'{{"n":{i}}}'.encode() for i in range(40)]
    cids = [ipfs_store.put(d) for d in documents]
    fetched = ipfs_store.get_many(cids)
    assert [fetched[c] for c in cids] == documents
    missing = cid_of(b"never stored")
    results = ipfs_store.fetch_many([cids[0], missing, cids[1]], timeout=1.0)
    assert results[cids[0]] == documents[0]
    assert isinstance(results[missing], MetadataNotFound)
    with pytest.raises(MetadataNotFound):
        ipfs_store.get_many([cids[0], missing], timeout=1.0)
    assert ipfs_store.get_many([]) == {}
    for _ in range(3):  # repeated calls reuse the store's threads and their sessions
        ipfs_store.get_many(cids[:10])
    assert len(ipfs_store._clients) <= ipfs_store.workers + 1


def test_node_info_and_closed_store(ipfs_node: IpfsNode) -> None:
    store = IpfsStore(ipfs_node.api_multiaddr, timeout=3)
    assert "Version" in store.node_info()
    store.close()
    with pytest.raises(LedgerError, match="closed"):
        store.put(b"x")
