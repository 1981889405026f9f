"""EIP-712 hashing and signer recovery for the ledger's fixed message types, without the generic
encoder: every field of these types is a static ABI word (``bytes`` data is hashed first), so the
struct hash is one keccak over concatenated 32-byte words, and recovery is one libsecp256k1 call
(coincurve). About 50x faster than eth_account's generic path; tests check both agree.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from coincurve import PublicKey
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from ledger.chain.typed_data import CONSENT_TYPES, FORWARD_REQUEST_TYPE
from ledger.core.errors import SignatureError

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def _type_string(name: str, fields: list[dict[str, str]]) -> bytes:
    return f"{name}({','.join(f['type'] + ' ' + f['name'] for f in fields)})".encode()


TYPEHASHES: dict[str, bytes] = {name: keccak(_type_string(name, fields)) for name, fields in CONSENT_TYPES.items()}
TYPEHASHES["ForwardRequest"] = keccak(_type_string("ForwardRequest", FORWARD_REQUEST_TYPE))
FIELDS: dict[str, list[dict[str, str]]] = {**CONSENT_TYPES, "ForwardRequest": FORWARD_REQUEST_TYPE}
DOMAIN_TYPEHASH = keccak(b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")


@lru_cache(maxsize=64)
def domain_separator(name: str, version: str, chain_id: int, verifying_contract: str) -> bytes:
    return keccak(
        DOMAIN_TYPEHASH
        + keccak(name.encode())
        + keccak(version.encode())
        + chain_id.to_bytes(32, "big")
        + bytes(12)
        + bytes.fromhex(verifying_contract[2:])
    )


def _word(kind: str, value: Any) -> bytes:
    if kind == "address":
        text = str(value)
        raw = bytes.fromhex(text[2:] if text.startswith("0x") else text)
        if len(raw) != 20:
            raise SignatureError(f"field of type address is not 20 bytes: {value!r}")
        return bytes(12) + raw
    if kind == "bytes32":
        raw = value if isinstance(value, bytes) else bytes.fromhex(str(value)[2:])
        if len(raw) != 32:
            raise SignatureError(f"field of type bytes32 is not 32 bytes: {value!r}")
        return raw
    if kind == "bytes":
        raw = value if isinstance(value, bytes) else bytes.fromhex(str(value)[2:])
        return keccak(raw)
    if kind.startswith("uint"):
        number = int(value)
        bits = int(kind[4:])
        if not 0 <= number < 1 << bits:
            raise SignatureError(f"field of type {kind} out of range: {value!r}")
        return number.to_bytes(32, "big")
    raise SignatureError(f"unsupported field type {kind}")


def struct_hash(kind: str, message: Mapping[str, Any]) -> bytes:
    try:
        words = b"".join(_word(f["type"], message[f["name"]]) for f in FIELDS[kind])
    except KeyError as exc:
        raise SignatureError(f"{kind} message lacks field {exc}") from exc
    except (TypeError, ValueError) as exc:
        raise SignatureError(f"{kind} message has a malformed field: {exc}") from exc
    return keccak(TYPEHASHES[kind] + words)


def digest(kind: str, message: Mapping[str, Any], separator: bytes) -> bytes:
    return keccak(b"\x19\x01" + separator + struct_hash(kind, message))


def recover(msg_digest: bytes, signature: bytes) -> str:
    """The signer of a 65-byte (r, s, v) signature over ``msg_digest``; refuses malleable (high-s)
    signatures as OpenZeppelin's ECDSA does."""
    if len(signature) != 65:
        raise SignatureError(f"signature must be 65 bytes, got {len(signature)}")
    r, s, v = signature[:32], int.from_bytes(signature[32:64], "big"), signature[64]
    if v in (27, 28):
        v -= 27
    if v not in (0, 1) or s == 0 or s > SECP256K1_N // 2 or int.from_bytes(r, "big") == 0:
        raise SignatureError("signature is malformed (v, r or s out of range)")
    try:
        pub = PublicKey.from_signature_and_message(r + s.to_bytes(32, "big") + bytes([v]), msg_digest, hasher=None)
    except Exception as exc:  # coincurve raises plain Exception for unrecoverable input
        raise SignatureError(f"signature cannot be recovered: {exc}") from exc
    return to_checksum_address(keccak(pub.format(compressed=False)[1:])[12:])
