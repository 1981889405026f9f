"""EIP-712 typed messages: the forwarder's ForwardRequest (every relayed write) and the consent
registry's own messages (Grant, Renew, Withdraw, AppointDelegate, RevokeDelegate).

Each builder returns the full ``eth_signTypedData_v4`` payload, so the same dict can be signed
here with a local key or shown to a wallet. ``recover`` checks a signature offline.
"""

from __future__ import annotations

from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils.address import to_checksum_address

from ledger.core.errors import SignatureError

TypedData = dict[str, Any]

FORWARDER_NAME = "MedLedgerForwarder"
CONSENT_NAME = "MedLedgerConsent"
VERSION = "1"

_DOMAIN_FIELDS = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]

FORWARD_REQUEST_TYPE = [
    {"name": "from", "type": "address"},
    {"name": "to", "type": "address"},
    {"name": "value", "type": "uint256"},
    {"name": "gas", "type": "uint256"},
    {"name": "nonce", "type": "uint256"},
    {"name": "deadline", "type": "uint48"},
    {"name": "data", "type": "bytes"},
]

#: The consent registry's message types; field order matches the typehashes in ConsentRegistry.sol.
CONSENT_TYPES: dict[str, list[dict[str, str]]] = {
    "Grant": [
        {"name": "subject", "type": "address"},
        {"name": "scopeKind", "type": "uint8"},
        {"name": "scope", "type": "bytes32"},
        {"name": "grantee", "type": "address"},
        {"name": "purposes", "type": "uint64"},
        {"name": "diseaseCode", "type": "uint32"},
        {"name": "expiry", "type": "uint40"},
        {"name": "nonce", "type": "uint256"},
        {"name": "deadline", "type": "uint256"},
    ],
    "Renew": [
        {"name": "subject", "type": "address"},
        {"name": "scopeKind", "type": "uint8"},
        {"name": "scope", "type": "bytes32"},
        {"name": "grantee", "type": "address"},
        {"name": "expiry", "type": "uint40"},
        {"name": "nonce", "type": "uint256"},
        {"name": "deadline", "type": "uint256"},
    ],
    "Withdraw": [
        {"name": "subject", "type": "address"},
        {"name": "scopeKind", "type": "uint8"},
        {"name": "scope", "type": "bytes32"},
        {"name": "grantee", "type": "address"},
        {"name": "nonce", "type": "uint256"},
        {"name": "deadline", "type": "uint256"},
    ],
    "AppointDelegate": [
        {"name": "subject", "type": "address"},
        {"name": "delegate", "type": "address"},
        {"name": "expiry", "type": "uint40"},
        {"name": "nonce", "type": "uint256"},
        {"name": "deadline", "type": "uint256"},
    ],
    "RevokeDelegate": [
        {"name": "subject", "type": "address"},
        {"name": "delegate", "type": "address"},
        {"name": "nonce", "type": "uint256"},
        {"name": "deadline", "type": "uint256"},
    ],
}

#: ConsentRegistry function taking each message type
CONSENT_FUNCTIONS = {
    "Grant": "grantBySig",
    "Renew": "renewBySig",
    "Withdraw": "withdrawBySig",
    "AppointDelegate": "appointDelegateBySig",
    "RevokeDelegate": "revokeDelegateBySig",
}


def domain(name: str, chain_id: int, verifying_contract: str) -> dict[str, Any]:
    return {
        "name": name,
        "version": VERSION,
        "chainId": chain_id,
        "verifyingContract": to_checksum_address(verifying_contract),
    }


def forward_request(
    *,
    chain_id: int,
    forwarder: str,
    sender: str,
    to: str,
    data: bytes,
    nonce: int,
    deadline: int,
    gas: int,
    value: int = 0,
) -> TypedData:
    """The typed data of one forwarder request (OpenZeppelin ERC2771Forwarder)."""
    return {
        "types": {"EIP712Domain": _DOMAIN_FIELDS, "ForwardRequest": FORWARD_REQUEST_TYPE},
        "primaryType": "ForwardRequest",
        "domain": domain(FORWARDER_NAME, chain_id, forwarder),
        "message": {
            "from": to_checksum_address(sender),
            "to": to_checksum_address(to),
            "value": value,
            "gas": gas,
            "nonce": nonce,
            "deadline": deadline,
            "data": "0x" + data.hex(),
        },
    }


def consent_message(kind: str, *, chain_id: int, registry: str, message: dict[str, Any]) -> TypedData:
    """The typed data of one consent message (``kind`` is a key of CONSENT_TYPES)."""
    if kind not in CONSENT_TYPES:
        raise SignatureError(f"unknown consent message type {kind!r}", hint=f"one of {', '.join(CONSENT_TYPES)}")
    fields = [f["name"] for f in CONSENT_TYPES[kind]]
    missing = [f for f in fields if f not in message]
    extra = [f for f in message if f not in fields]
    if missing or extra:
        raise SignatureError(f"{kind} message fields wrong: missing {missing}, unexpected {extra}")
    return {
        "types": {"EIP712Domain": _DOMAIN_FIELDS, kind: CONSENT_TYPES[kind]},
        "primaryType": kind,
        "domain": domain(CONSENT_NAME, chain_id, registry),
        "message": {f: _normalise(message[f]) for f in fields},
    }


def _normalise(value: Any) -> Any:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return value


def sign(typed: TypedData, private_key: str | bytes) -> bytes:
    """Sign typed data with a local key; returns the 65-byte signature."""
    signed = Account.sign_message(encode_typed_data(full_message=typed), private_key)
    return bytes(signed.signature)


def recover(typed: TypedData, signature: bytes) -> str:
    """The address that signed ``typed``; raises SignatureError for a malformed signature."""
    try:
        return str(Account.recover_message(encode_typed_data(full_message=typed), signature=signature))
    except Exception as exc:  # eth_account raises several unrelated types for bad input
        raise SignatureError(f"signature cannot be recovered: {exc}") from exc


def digest(typed: TypedData) -> bytes:
    """The EIP-712 digest (what the contract's _hashTypedDataV4 computes)."""
    from eth_utils.crypto import keccak

    msg = encode_typed_data(full_message=typed)
    return bytes(keccak(b"\x19" + msg.version + msg.header + msg.body))
