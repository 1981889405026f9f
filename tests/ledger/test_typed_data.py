"""The ledger's EIP-712 hashing against eth_account's generic encoder, on generated messages of
every type the contracts accept (node-free)."""

from __future__ import annotations

from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.chain import typed_data
from ledger.core.errors import SignatureError

_addresses = st.binary(min_size=20, max_size=20).map(lambda b: to_checksum_address(b))
_keys = st.integers(min_value=1, max_value=typed_data.SECP256K1_N - 1).map(lambda k: k.to_bytes(32, "big"))


def _field(kind: str) -> st.SearchStrategy[Any]:
    if kind == "address":
        return _addresses
    if kind == "bytes32":
        return st.binary(min_size=32, max_size=32)
    if kind == "bytes":
        return st.binary(max_size=300)
    bits = int(kind[4:])
    # the edges of each width as well as values inside it
    return st.one_of(st.sampled_from([0, 1, (1 << bits) - 1]), st.integers(min_value=0, max_value=(1 << bits) - 1))


@st.composite
def _typed(draw: st.DrawFn) -> tuple[str, dict[str, Any], typed_data.TypedData]:
    kind = draw(st.sampled_from(sorted(typed_data.FIELDS)))
    chain_id = draw(st.integers(min_value=1, max_value=2**64))
    contract = draw(_addresses)
    message = {f["name"]: draw(_field(f["type"])) for f in typed_data.FIELDS[kind]}
    if kind == "ForwardRequest":
        typed = typed_data.forward_request(
            chain_id=chain_id,
            forwarder=contract,
            sender=message["from"],
            to=message["to"],
            data=message["data"],
            nonce=message["nonce"],
            deadline=message["deadline"],
            gas=message["gas"],
            value=message["value"],
        )
    else:
        typed = typed_data.consent_message(kind, chain_id=chain_id, registry=contract, message=message)
    return kind, message, typed


def _generic_digest(typed: typed_data.TypedData) -> bytes:
    msg = encode_typed_data(full_message=typed)
    return bytes(keccak(b"\x19" + msg.version + msg.header + msg.body))


def test_every_message_type_is_generated() -> None:
    assert set(typed_data.FIELDS) == {*typed_data.CONSENT_TYPES, "ForwardRequest"}
    assert len(typed_data.FIELDS) == 6


@settings(max_examples=300, deadline=None)
@given(_typed())
def test_digest_equals_eth_account(case: tuple[str, dict[str, Any], typed_data.TypedData]) -> None:
    kind, message, typed = case
    expected = _generic_digest(typed)
    assert typed_data.digest(typed) == expected
    dom = typed["domain"]
    separator = typed_data.domain_separator(dom["name"], dom["version"], dom["chainId"], dom["verifyingContract"])
    # the relay hashes the raw message (bytes fields as bytes) under a cached separator
    assert typed_data.message_digest(kind, message, separator) == expected


@settings(max_examples=100, deadline=None)
@given(_typed(), _keys)
def test_signatures_agree_with_eth_account(
    case: tuple[str, dict[str, Any], typed_data.TypedData], key: bytes
) -> None:
    _, _, typed = case
    signer = Account.from_key(key).address
    ours = typed_data.sign(typed, key)
    theirs = bytes(Account.sign_message(encode_typed_data(full_message=typed), key).signature)
    assert ours == theirs
    assert typed_data.recover(typed, ours) == signer
    assert Account.recover_message(encode_typed_data(full_message=typed), signature=ours) == signer


def test_foreign_or_malformed_typed_data_is_refused() -> None:
    typed = typed_data.consent_message(
        "RevokeDelegate",
        chain_id=1,
        registry="0x" + "11" * 20,
        message={"subject": "0x" + "22" * 20, "delegate": "0x" + "33" * 20, "nonce": 0, "deadline": 1},
    )
    reordered = {**typed, "types": {**typed["types"], "RevokeDelegate": typed["types"]["RevokeDelegate"][::-1]}}
    with pytest.raises(SignatureError, match="not one of the ledger's messages"):
        typed_data.digest(reordered)
    with pytest.raises(SignatureError, match="out of range"):
        typed_data.digest({**typed, "message": {**typed["message"], "nonce": -1}})
    with pytest.raises(SignatureError, match="65 bytes"):
        typed_data.recover(typed, b"\x00" * 64)
