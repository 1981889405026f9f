"""Consent: the fields of the registry's typed messages, and the ``isInForce`` read encoded and
decoded by hand (the hot read path of a data platform: one raw eth_call, no web3 contract
machinery). The front ends build messages and consent checks only through these."""

from __future__ import annotations

from typing import Any

from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from ledger.core.errors import InvalidInput
from ledger.core.records import ZERO_ADDRESS, ConsentScope, to_bytes32
from ledger.relay.relayer import DEFAULT_DEADLINE_SECONDS, Relayer, random_consent_nonce
from ledger.rules import datause

#: message kinds of the consent registry
KINDS = ("Grant", "Renew", "Withdraw", "AppointDelegate", "RevokeDelegate")


def consent_message(
    kind: str,
    *,
    subject: str,
    scope: ConsentScope | None = None,
    grantee: str | None = None,
    purposes: int | None = None,
    disease: int = 0,
    expiry: int | None = None,
    delegate: str | None = None,
) -> dict[str, Any]:
    """The fields of a consent typed message (nonce and deadline are added when signing)."""
    msg: dict[str, Any] = {"subject": to_checksum_address(subject)}
    if kind in ("Grant", "Renew", "Withdraw"):
        if scope is None:
            raise InvalidInput(f"{kind} needs a scope")
        msg.update(scopeKind=int(scope.kind), scope=scope.value, grantee=to_checksum_address(grantee or ZERO_ADDRESS))
    if kind == "Grant":
        if purposes is None or not datause.is_valid_grant(purposes, disease):
            raise InvalidInput(
                f"purposes {purposes!r} with disease {disease} are not a valid consent",
                hint="at least one of NRES, GRU, HMB, DS (with a MONDO code), POA, plus optional modifiers",
            )
        msg.update(purposes=purposes, diseaseCode=disease)
    if kind in ("AppointDelegate", "RevokeDelegate"):
        if delegate is None:
            raise InvalidInput(f"{kind} needs a delegate")
        msg["delegate"] = to_checksum_address(delegate)
    if kind in ("Grant", "Renew", "AppointDelegate"):
        if expiry is None:
            raise InvalidInput(f"{kind} needs an expiry (unix time)")
        msg["expiry"] = expiry
    return msg


_IS_IN_FORCE = bytes(keccak(text="isInForce(address,bytes32,uint64,uint32,address)")[:4])


def _address_bytes(address: str) -> bytes:
    text = address[2:] if address.startswith(("0x", "0X")) else address
    try:
        raw = bytes.fromhex(text)
    except ValueError as exc:
        raise InvalidInput(f"{address!r} is not an address") from exc
    if len(raw) != 20:
        raise InvalidInput(f"{address!r} is not an address (20 bytes)")
    return raw


def in_force_calldata(
    subject: str, dataset: bytes | str, purpose: datause.Purpose, grantee: str | None = None
) -> bytes:
    """Calldata of ``ConsentRegistry.isInForce(subject, dataset, purpose, disease, grantee)``."""
    root = to_bytes32(dataset, "dataset")
    return (
        _IS_IN_FORCE
        + bytes(12)
        + _address_bytes(subject)
        + root
        + purpose.mask.to_bytes(32, "big")
        + purpose.disease.to_bytes(32, "big")
        + bytes(12)
        + _address_bytes(grantee or ZERO_ADDRESS)
    )


def decode_in_force(answer: bytes) -> bool:
    """The ``bool`` an ``isInForce`` eth_call returned (one ABI word)."""
    return len(answer) == 32 and answer[-1] == 1


def in_force_answer(
    subject: str, dataset: str, purpose: datause.Purpose, grantee: str | None, in_force: bool
) -> dict[str, Any]:
    """The JSON answer to "is this consent in force" (the service's and the CLI's shape)."""
    return {
        "subject": subject,
        "dataset": dataset,
        "purpose": datause.describe(purpose.mask),
        "disease": datause.disease_label(purpose.disease),
        "grantee": grantee,
        "in_force": in_force,
    }


def prepared_consent(
    relayer: Relayer, kind: str, message: dict[str, Any], *, nonce: int | None = None, deadline: int | None = None
) -> dict[str, Any]:
    """The typed data a subject (or delegate) signs for ``message``: a fresh random nonce and a
    deadline an hour ahead unless given. ``{"kind", "typed_data", "message"}``."""
    full = dict(message)
    full["nonce"] = nonce if nonce is not None else random_consent_nonce()
    full["deadline"] = deadline if deadline is not None else relayer.now() + DEFAULT_DEADLINE_SECONDS
    typed = relayer.consent_typed(kind, full)
    return {"kind": kind, "typed_data": typed, "message": typed["message"]}
