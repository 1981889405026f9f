"""Shared helpers for the contract tests and the gas benchmark.

Nothing here deploys anything: the helpers take deployed brownie contracts as arguments. They cover
exact custom-error checks (`expect_revert`), event checks, EIP-712 signing of ERC-2771 forward
requests and of the consent registry's own typed messages, time control on anvil and a Python
StandardMerkleTree (OpenZeppelin @openzeppelin/merkle-tree layout) with a bridge to the JS library.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import eth_abi
from brownie import chain, web3
from brownie.exceptions import VirtualMachineError
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak, to_checksum_address
from hexbytes import HexBytes

ROOT = Path(__file__).resolve().parents[2]

# ---------------------------------------------------------------------------------------------- constants

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
ZERO32 = "0x" + "00" * 32


def hex32(value: bytes) -> str:
    """bytes32 values are passed and compared as 0x-hex strings (brownie's HexString compares with
    hex strings, not with raw bytes)."""
    return "0x" + bytes(value).hex()


ADMIN_ROLE = ZERO32
HOLDER_ROLE = hex32(keccak(text="HOLDER_ROLE"))
REVIEWER_ROLE = hex32(keccak(text="REVIEWER_ROLE"))
USER_ROLE = hex32(keccak(text="USER_ROLE"))
AUDITOR_ROLE = hex32(keccak(text="AUDITOR_ROLE"))


class Tier:
    OPEN, REGISTERED, CONTROLLED, CLOSED = range(4)


class Status:
    NONE, ACTIVE, DEPRECATED, SUSPENDED, RETRACTED = range(5)


class Scope:
    HOLDER, DATASET = range(2)


class ConsentState:
    NONE, GIVEN, RENEWED, WITHDRAWN = range(4)


class RequestStatus:
    NONE, PENDING, APPROVED, DENIED, REVOKED = range(5)


class DUO:
    """DataUse bits (contracts/libraries/DataUse.sol)."""

    NRES = 1 << 0
    GRU = 1 << 1
    HMB = 1 << 2
    DS = 1 << 3
    POA = 1 << 4
    NCU = 1 << 16
    NPU = 1 << 17
    IRB = 1 << 18
    PUB = 1 << 19
    GSO = 1 << 20
    COL = 1 << 21
    RTN = 1 << 22
    NMDS = 1 << 23
    USE_COMMERCIAL = 1 << 32
    USE_FOR_PROFIT = 1 << 33
    USE_ETHICS_APPROVED = 1 << 34
    USE_PUBLISHES = 1 << 35
    USE_GENETIC = 1 << 36
    USE_COLLABORATION = 1 << 37
    USE_RETURNS_RESULTS = 1 << 38
    USE_METHODS = 1 << 39


def b32(label: str | int) -> str:
    """A deterministic, non-zero bytes32 (hex) derived from a label."""
    return hex32(keccak(text=f"medledger-test:{label}"))


def holder_scope(address: Any) -> str:
    """A holder-wide consent scope: the holder's address left-padded to 32 bytes."""
    return hex32(bytes(12) + bytes(HexBytes(addr(address))))


def addr(value: Any) -> str:
    """Checksummed address of a brownie account, contract, eth_account key or hex string."""
    return to_checksum_address(str(getattr(value, "address", value)))


# ---------------------------------------------------------------------------------------------- reverts

_SIG_RE = re.compile(r"^(\w+)\((.*)\)$")


def _split_types(types: str) -> list[str]:
    out: list[str] = []
    depth = 0
    current = ""
    for ch in types:
        if ch == "," and depth == 0:
            out.append(current)
            current = ""
            continue
        depth += ch == "("
        depth -= ch == ")"
        current += ch
    if current:
        out.append(current)
    return out


def _norm_arg(typ: str, value: Any) -> Any:
    if typ == "address":
        return addr(value)
    if typ.startswith("bytes"):
        if isinstance(value, str):
            return bytes(HexBytes(value))
        return bytes(value)
    if typ.startswith(("uint", "int")):
        return int(value)
    if typ.endswith("[]"):
        return [_norm_arg(typ[:-2], v) for v in value]
    return value


def encode_error(signature: str, *args: Any) -> bytes:
    """Revert data of a custom error: 4-byte selector of `signature` + ABI-encoded `args`."""
    match = _SIG_RE.match(signature.replace(" ", ""))
    if not match:
        raise ValueError(f"not an error signature: {signature}")
    types = _split_types(match.group(2))
    if len(types) != len(args):
        raise ValueError(f"{signature} takes {len(types)} arguments, got {len(args)}")
    values = [_norm_arg(t, v) for t, v in zip(types, args, strict=True)]
    return keccak(text=signature.replace(" ", ""))[:4] + eth_abi.encode(types, values)


def _find_hex_data(obj: Any, depth: int = 0) -> str | None:
    if depth > 6:
        return None
    if isinstance(obj, dict):
        data = obj.get("data")
        if isinstance(data, str) and data.startswith("0x"):
            return data
        for value in obj.values():
            found = _find_hex_data(value, depth + 1)
            if found:
                return found
    if isinstance(obj, BaseException):
        for arg in obj.args:
            found = _find_hex_data(arg, depth + 1)
            if found:
                return found
        for attr in ("data", "rpc_response"):
            found = _find_hex_data(getattr(obj, attr, None), depth + 1)
            if found:
                return found
    if isinstance(obj, str) and obj.startswith("0x") and depth > 0:
        return obj
    return None


def revert_data(exc: VirtualMachineError) -> bytes:
    """The raw revert bytes behind a brownie VirtualMachineError.

    A reverted transaction (brownie broadcasts it on development networks) is traced with anvil's
    callTracer, whose `output` is the revert data; a reverted call (or gas estimate) carries the
    data in the JSON-RPC error object that brownie wrapped.
    """
    if getattr(exc, "txid", ""):
        trace = web3.provider.make_request("debug_traceTransaction", [exc.txid, {"tracer": "callTracer"}])
        result = trace.get("result") or {}
        output = result.get("output")
        if output is None:
            trace = web3.provider.make_request(
                "debug_traceTransaction",
                [exc.txid, {"disableStack": True, "disableMemory": True, "disableStorage": True}],
            )
            output = (trace.get("result") or {}).get("returnValue", "")
        return bytes(HexBytes(output or "0x"))
    found = _find_hex_data(exc)
    if found is None:
        raise AssertionError(f"no revert data in {exc!r}")
    return bytes(HexBytes(found))


def _known_errors() -> dict[bytes, str]:
    errors: dict[bytes, str] = {}
    build = ROOT / "build" / "contracts"
    for path in build.glob("*.json"):
        for item in json.loads(path.read_text()).get("abi", []):
            if item.get("type") == "error":
                sig = f"{item['name']}({','.join(_abi_type(i) for i in item['inputs'])})"
                errors[keccak(text=sig)[:4]] = sig
    return errors


def _abi_type(item: dict[str, Any]) -> str:
    typ = item["type"]
    if typ.startswith("tuple"):
        return "(" + ",".join(_abi_type(c) for c in item["components"]) + ")" + typ[5:]
    return typ


def describe_revert(data: bytes) -> str:
    """Human-readable form of revert data (error name and decoded args where known)."""
    if len(data) < 4:
        return f"<no error data: 0x{data.hex()}>"
    sig = _known_errors().get(data[:4])
    if sig is None:
        return f"<unknown error 0x{data.hex()}>"
    types = _split_types(_SIG_RE.match(sig).group(2))  # type: ignore[union-attr]
    try:
        values = eth_abi.decode(types, data[4:])
    except Exception:  # pragma: no cover - diagnostic only
        return f"{sig} <undecodable 0x{data[4:].hex()}>"
    shown = [("0x" + v.hex()) if isinstance(v, bytes) else v for v in values]
    return f"{sig.split('(')[0]}{tuple(shown)}"


@dataclass
class RevertCapture:
    data: bytes = b""
    exc: VirtualMachineError | None = None


@contextmanager
def expect_revert(error_signature: str, *args: Any) -> Iterator[RevertCapture]:
    """Assert that the block reverts with exactly this custom error and arguments.

    `error_signature` is the canonical signature, e.g. "MissingRole(bytes32,address)"; the revert
    data must equal its selector followed by the ABI encoding of `args`, byte for byte.
    """
    expected = encode_error(error_signature, *args)
    capture = RevertCapture()
    try:
        yield capture
    except VirtualMachineError as exc:
        capture.exc = exc
        capture.data = revert_data(exc)
        if capture.data != expected:
            raise AssertionError(
                f"expected revert {describe_revert(expected)}, got {describe_revert(capture.data)}"
            ) from None
    else:
        raise AssertionError(f"expected revert {describe_revert(expected)}, but the call succeeded")


# ---------------------------------------------------------------------------------------------- events


def _norm_value(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    if isinstance(value, str):
        return value.lower()
    if isinstance(value, list | tuple):
        return [_norm_value(v) for v in value]
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)
    address = getattr(value, "address", None)
    if address is not None:
        return str(address).lower()
    return value


def plain(value: Any) -> Any:
    """Normalise brownie return values (ReturnValue, HexString, EthAddress, Wei) and expected values
    alike, for comparison: bytes and strings to lowercase hex, sequences to lists, ints to int."""
    return _norm_value(value)


def assert_event(tx: Any, name: str, index: int = 0, count: int | None = 1, emitter: Any = None, **fields: Any):
    """Assert that `tx` emitted event `name` (`count` times, if given) whose `index`-th instance has
    exactly the given field values. Returns the event."""
    assert name in tx.events, f"{name} not emitted; got {list(tx.events.keys())}"
    events = tx.events[name]
    if count is not None:
        assert len(events) == count, f"{name} emitted {len(events)} times, expected {count}"
    event = events[index]
    if emitter is not None:
        assert addr(event.address) == addr(emitter), f"{name} emitted by {event.address}, expected {addr(emitter)}"
    for key, expected in fields.items():
        assert key in event, f"{name} has no field {key}: {dict(event)}"
        assert _norm_value(event[key]) == _norm_value(expected), f"{name}.{key} = {event[key]!r}, expected {expected!r}"
    return event


def assert_no_event(tx: Any, name: str) -> None:
    assert name not in tx.events, f"{name} unexpectedly emitted: {tx.events[name]}"


# ---------------------------------------------------------------------------------------------- time


def latest_timestamp() -> int:
    return int(web3.eth.get_block("latest")["timestamp"])


def set_next_timestamp(timestamp: int) -> None:
    """The next mined block (the next transaction's) gets exactly this timestamp."""
    response = web3.provider.make_request("evm_setNextBlockTimestamp", [int(timestamp)])
    if "error" in response:
        raise RuntimeError(response["error"])


def mine_at(timestamp: int) -> int:
    """Mine one empty block at exactly `timestamp`; returns its number."""
    set_next_timestamp(timestamp)
    response = web3.provider.make_request("evm_mine", [])
    if "error" in response:
        raise RuntimeError(response["error"])
    return int(web3.eth.block_number)


def jump(seconds: int) -> int:
    """Advance chain time by `seconds` (chain.sleep) and mine a block; returns the new timestamp."""
    chain.sleep(int(seconds))
    chain.mine()
    return latest_timestamp()


# ---------------------------------------------------------------------------------------------- ERC-2771


FORWARD_REQUEST_TYPES = [
    {"name": "from", "type": "address"},
    {"name": "to", "type": "address"},
    {"name": "value", "type": "uint256"},
    {"name": "gas", "type": "uint256"},
    {"name": "nonce", "type": "uint256"},
    {"name": "deadline", "type": "uint48"},
    {"name": "data", "type": "bytes"},
]
EIP712_DOMAIN_TYPES = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]


def new_key() -> Any:
    """A fresh random key (eth_account LocalAccount); it needs no ETH to sign relayed requests."""
    return Account.create()


@dataclass(frozen=True)
class ForwardRequest:
    """A signed ERC2771Forwarder request. `nonce` is the nonce it was signed with (not sent)."""

    from_: str
    to: str
    value: int
    gas: int
    nonce: int
    deadline: int
    data: bytes
    signature: bytes
    forwarder: str

    def as_tuple(self) -> tuple:
        """ForwardRequestData(from, to, value, gas, deadline, data, signature)."""
        return (self.from_, self.to, self.value, self.gas, self.deadline, self.data, self.signature)

    def tampered(self, **changes: Any) -> ForwardRequest:
        """The same signature over different fields."""
        return replace(self, **changes)

    def typed_data(self, nonce: int | None = None) -> dict[str, Any]:
        return forward_typed_data(
            self.forwarder,
            self.from_,
            self.to,
            self.value,
            self.gas,
            self.nonce if nonce is None else nonce,
            self.deadline,
            self.data,
        )

    def recovered_with_nonce(self, nonce: int) -> str:
        """The address the forwarder recovers from this request when the signer's nonce is `nonce`
        (what ERC2771ForwarderInvalidSigner reports for a replay or a tampered field)."""
        return Account.recover_message(encode_typed_data(full_message=self.typed_data(nonce)), signature=self.signature)


def forward_typed_data(
    forwarder: Any, from_: str, to: str, value: int, gas: int, nonce: int, deadline: int, data: bytes
) -> dict[str, Any]:
    return {
        "types": {"EIP712Domain": EIP712_DOMAIN_TYPES, "ForwardRequest": FORWARD_REQUEST_TYPES},
        "primaryType": "ForwardRequest",
        "domain": {
            "name": "MedLedgerForwarder",
            "version": "1",
            "chainId": chain.id,
            "verifyingContract": addr(forwarder),
        },
        "message": {
            "from": addr(from_),
            "to": addr(to),
            "value": int(value),
            "gas": int(gas),
            "nonce": int(nonce),
            "deadline": int(deadline),
            "data": bytes(data),
        },
    }


def sign_forward(
    forwarder: Any,
    signer: Any,
    target: Any,
    data: bytes | str,
    *,
    nonce: int | None = None,
    deadline: int | None = None,
    gas: int = 1_000_000,
    value: int = 0,
) -> ForwardRequest:
    """Sign a ForwardRequest with `signer` (an eth_account key). `nonce` defaults to the forwarder's
    current nonce of the signer, `deadline` to one hour after the latest block."""
    data_bytes = bytes(HexBytes(data))
    if nonce is None:
        nonce = int(forwarder.nonces(signer.address))
    if deadline is None:
        deadline = latest_timestamp() + 3600
    typed = forward_typed_data(forwarder, signer.address, addr(target), value, gas, nonce, deadline, data_bytes)
    signature = Account.sign_typed_data(signer.key, full_message=typed).signature
    return ForwardRequest(
        addr(signer.address), addr(target), value, gas, nonce, deadline, data_bytes, bytes(signature), addr(forwarder)
    )


def calldata(contract: Any, fn_name: str, *args: Any) -> bytes:
    return bytes(HexBytes(getattr(contract, fn_name).encode_input(*args)))


def sign_call(forwarder: Any, signer: Any, contract: Any, fn_name: str, *args: Any, **kwargs: Any) -> ForwardRequest:
    """Sign a forward request that calls `contract.fn_name(*args)` as `signer`."""
    return sign_forward(forwarder, signer, contract, calldata(contract, fn_name, *args), **kwargs)


# ---------------------------------------------------------------------------------------------- consent EIP-712

CONSENT_TYPES: dict[str, list[tuple[str, str]]] = {
    "Grant": [
        ("subject", "address"),
        ("scopeKind", "uint8"),
        ("scope", "bytes32"),
        ("grantee", "address"),
        ("purposes", "uint64"),
        ("diseaseCode", "uint32"),
        ("expiry", "uint40"),
        ("nonce", "uint256"),
        ("deadline", "uint256"),
    ],
    "Renew": [
        ("subject", "address"),
        ("scopeKind", "uint8"),
        ("scope", "bytes32"),
        ("grantee", "address"),
        ("expiry", "uint40"),
        ("nonce", "uint256"),
        ("deadline", "uint256"),
    ],
    "Withdraw": [
        ("subject", "address"),
        ("scopeKind", "uint8"),
        ("scope", "bytes32"),
        ("grantee", "address"),
        ("nonce", "uint256"),
        ("deadline", "uint256"),
    ],
    "AppointDelegate": [
        ("subject", "address"),
        ("delegate", "address"),
        ("expiry", "uint40"),
        ("nonce", "uint256"),
        ("deadline", "uint256"),
    ],
    "RevokeDelegate": [
        ("subject", "address"),
        ("delegate", "address"),
        ("nonce", "uint256"),
        ("deadline", "uint256"),
    ],
}
CONSENT_FUNCTIONS = {
    "Grant": "grantBySig",
    "Renew": "renewBySig",
    "Withdraw": "withdrawBySig",
    "AppointDelegate": "appointDelegateBySig",
    "RevokeDelegate": "revokeDelegateBySig",
}


def consent_type_string(primary: str) -> str:
    return f"{primary}({','.join(f'{t} {n}' for n, t in CONSENT_TYPES[primary])})"


@dataclass(frozen=True)
class SignedConsent:
    """A consent message, its signature and the *BySig call that submits it."""

    primary: str
    message: dict[str, Any]
    signature: bytes

    def struct(self, **overrides: Any) -> tuple:
        message = {**self.message, **overrides}
        return tuple(message[name] for name, _ in CONSENT_TYPES[self.primary])

    @property
    def fn_name(self) -> str:
        return CONSENT_FUNCTIONS[self.primary]

    def args(self, **overrides: Any) -> tuple:
        """Arguments of the *BySig function; `overrides` tamper with fields (signature unchanged)."""
        return (self.struct(**overrides), self.signature)

    def calldata(self, consent: Any, **overrides: Any) -> bytes:
        return calldata(consent, self.fn_name, *self.args(**overrides))

    def submit(self, consent: Any, sender: Any, **overrides: Any) -> Any:
        return getattr(consent, self.fn_name)(*self.args(**overrides), {"from": sender})


def consent_typed_data(consent: Any, primary: str, message: dict[str, Any]) -> dict[str, Any]:
    return {
        "types": {
            "EIP712Domain": EIP712_DOMAIN_TYPES,
            primary: [{"name": n, "type": t} for n, t in CONSENT_TYPES[primary]],
        },
        "primaryType": primary,
        "domain": {"name": "MedLedgerConsent", "version": "1", "chainId": chain.id, "verifyingContract": addr(consent)},
        "message": message,
    }


def sign_consent(consent: Any, signer: Any, primary: str, **fields: Any) -> SignedConsent:
    """Sign a consent message (Grant, Renew, Withdraw, AppointDelegate, RevokeDelegate) with `signer`
    (an eth_account key). Missing `deadline` defaults to one hour after the latest block."""
    message: dict[str, Any] = {}
    fields.setdefault("deadline", latest_timestamp() + 3600)
    for name, typ in CONSENT_TYPES[primary]:
        value = fields.pop(name)
        message[name] = _norm_arg(typ, value)
    if fields:
        raise TypeError(f"unknown {primary} fields: {sorted(fields)}")
    signature = Account.sign_typed_data(
        signer.key, full_message=consent_typed_data(consent, primary, message)
    ).signature
    return SignedConsent(primary, message, bytes(signature))


def recover_consent_signer(consent: Any, signed: SignedConsent, **overrides: Any) -> str:
    """Who the registry recovers when the message's fields are `overrides`-tampered."""
    message = {
        **signed.message,
        **{k: _norm_arg(dict(CONSENT_TYPES[signed.primary])[k], v) for k, v in overrides.items()},
    }
    typed = consent_typed_data(consent, signed.primary, message)
    return Account.recover_message(encode_typed_data(full_message=typed), signature=signed.signature)


# ---------------------------------------------------------------------------------------------- Merkle trees


def _leaf_hash(encoding: Sequence[str], value: Sequence[Any]) -> bytes:
    return keccak(
        keccak(eth_abi.encode(list(encoding), [_norm_arg(t, v) for t, v in zip(encoding, value, strict=True)]))
    )


def _hash_pair(a: bytes, b: bytes) -> bytes:
    return keccak(a + b) if a <= b else keccak(b + a)


class StandardMerkleTree:
    """Python re-implementation of @openzeppelin/merkle-tree's StandardMerkleTree: leaves are
    keccak256(keccak256(abi.encode(value))), sorted by hash; the tree is a complete binary tree in
    an array with the leaves at the end in reverse order; pairs are hashed sorted."""

    def __init__(self, values: Sequence[Sequence[Any]], encoding: Sequence[str]):
        if not values:
            raise ValueError("empty tree")
        self.values = [list(v) for v in values]
        self.encoding = list(encoding)
        hashed = sorted(((_leaf_hash(encoding, v), i) for i, v in enumerate(values)), key=lambda x: x[0])
        n = len(hashed)
        self.tree: list[bytes] = [b""] * (2 * n - 1)
        self._tree_index: dict[int, int] = {}
        for position, (leaf, value_index) in enumerate(hashed):
            self.tree[len(self.tree) - 1 - position] = leaf
            self._tree_index[value_index] = len(self.tree) - 1 - position
        for i in range(len(self.tree) - 1 - n, -1, -1):
            self.tree[i] = _hash_pair(self.tree[2 * i + 1], self.tree[2 * i + 2])

    @property
    def root(self) -> bytes:
        return self.tree[0]

    def proof(self, value_index: int) -> list[bytes]:
        index = self._tree_index[value_index]
        proof = []
        while index > 0:
            sibling = index - 1 if index % 2 == 0 else index + 1
            proof.append(self.tree[sibling])
            index = (index - 1) // 2
        return proof


_JS_TREE = r"""
const { StandardMerkleTree } = require(process.env.MERKLE_TREE_MODULE);
let input = '';
process.stdin.on('data', (c) => (input += c));
process.stdin.on('end', () => {
  const { values, encoding } = JSON.parse(input);
  const tree = StandardMerkleTree.of(values, encoding);
  const proofs = values.map((_, i) => tree.getProof(i));
  process.stdout.write(JSON.stringify({ root: tree.root, proofs }));
});
"""


def js_merkle_tree(values: Sequence[Sequence[Any]], encoding: Sequence[str]) -> tuple[bytes, list[list[bytes]]]:
    """Root and per-value proofs computed by @openzeppelin/merkle-tree (node), for cross-checking."""

    def jsonable(v: Any) -> Any:
        if isinstance(v, bytes):
            return "0x" + v.hex()
        if isinstance(v, int):
            return str(v)
        return str(v)

    payload = json.dumps({"values": [[jsonable(x) for x in v] for v in values], "encoding": list(encoding)})
    env = {**os.environ, "MERKLE_TREE_MODULE": str(ROOT / "node_modules" / "@openzeppelin" / "merkle-tree")}
    result = subprocess.run(
        ["node", "-e", _JS_TREE], input=payload, capture_output=True, text=True, check=True, env=env, timeout=60
    )
    out = json.loads(result.stdout)
    return bytes(HexBytes(out["root"])), [[bytes(HexBytes(p)) for p in proof] for proof in out["proofs"]]
