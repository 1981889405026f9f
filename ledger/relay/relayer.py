"""Relayed writes: EIP-712 forward requests signed by the acting party and submitted in batches
through the ERC-2771 forwarder by a relayer that pays the gas; and the consent registry's own
signed messages, batched through ``ConsentRegistry.relayBatch``.

Before a request is accepted it is checked offline (signature, deadline, nonce) and simulated as
the forwarder would call it, so a request that would revert is refused with its decoded reason
and never queued. A batch uses a non-zero refund receiver, so one request that became invalid
(a nonce another batch used first, a passed deadline) is skipped, not the whole batch.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from eth_abi.abi import encode
from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from web3.contract import Contract
from web3.exceptions import ContractCustomError, ContractLogicError, Web3RPCError
from web3.logs import DISCARD
from web3.types import TxReceipt

from ledger.chain import typed_data
from ledger.chain.client import ChainClient
from ledger.core.errors import InvalidInput, LedgerError, SignatureError, TransactionFailed
from ledger.rules import consent as consent_rules

#: default lifetime of a signed request
DEFAULT_DEADLINE_SECONDS = 3600


@functools.lru_cache(maxsize=8)
def _consent_codec(kind: str) -> tuple[bytes, str, tuple[tuple[str, str], ...]]:
    """(selector, ABI tuple type, (field, type) pairs) of a consent message's *BySig function."""
    if kind not in typed_data.CONSENT_TYPES:
        raise InvalidInput(f"unknown consent message type {kind!r}")
    fields = tuple((f["name"], f["type"]) for f in typed_data.CONSENT_TYPES[kind])
    tuple_type = "(" + ",".join(t for _, t in fields) + ")"
    selector = bytes(keccak(text=f"{typed_data.CONSENT_FUNCTIONS[kind]}({tuple_type},bytes)")[:4])
    return selector, tuple_type, fields


def random_consent_nonce() -> int:
    """A fresh unordered nonce for a consent message: random below 2**53, so that the typed data
    survives JSON in a browser wallet (JavaScript numbers are exact only up to 2**53). A collision
    is refused by the registry (NonceAlreadyUsed) and the message signed again."""
    return int.from_bytes(os.urandom(7), "big") >> 3


@dataclass(frozen=True)
class ForwardRequest:
    """A forward request and its signature, as ``executeBatch`` takes it."""

    sender: str
    to: str
    value: int
    gas: int
    nonce: int
    deadline: int
    data: bytes
    signature: bytes

    def as_call_tuple(self) -> tuple[str, str, int, int, int, bytes, bytes]:
        return (self.sender, self.to, self.value, self.gas, self.deadline, self.data, self.signature)

    def typed(self, chain_id: int, forwarder: str) -> typed_data.TypedData:
        return typed_data.forward_request(
            chain_id=chain_id,
            forwarder=forwarder,
            sender=self.sender,
            to=self.to,
            data=self.data,
            nonce=self.nonce,
            deadline=self.deadline,
            gas=self.gas,
            value=self.value,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "from": self.sender,
            "to": self.to,
            "value": self.value,
            "gas": self.gas,
            "nonce": self.nonce,
            "deadline": self.deadline,
            "data": "0x" + self.data.hex(),
            "signature": "0x" + self.signature.hex(),
        }

    def unsigned_json(self) -> dict[str, Any]:
        """The request's fields without the signature (what a client is asked to sign)."""
        body = self.to_json()
        body.pop("signature")
        return body

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ForwardRequest:
        try:
            return cls(
                sender=to_checksum_address(d["from"]),
                to=to_checksum_address(d["to"]),
                value=int(d.get("value", 0)),
                gas=int(d["gas"]),
                nonce=int(d["nonce"]),
                deadline=int(d["deadline"]),
                data=_hex(d["data"]),
                signature=_hex(d["signature"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInput(f"forward request is malformed: {exc}") from exc


@dataclass(frozen=True)
class SignedConsent:
    """A consent registry typed message and its signature."""

    kind: str
    message: dict[str, Any]
    signature: bytes

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "message": _jsonable(self.message), "signature": "0x" + self.signature.hex()}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> SignedConsent:
        try:
            return cls(kind=str(d["kind"]), message=dict(d["message"]), signature=_hex(d["signature"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInput(f"signed consent message is malformed: {exc}") from exc


@dataclass
class Outcome:
    """What happened to one relayed request in a mined batch."""

    ok: bool
    tx_hash: str
    block: int
    error: LedgerError | None = None
    events: list[dict[str, Any]] = field(default_factory=list)


def _hex(v: Any) -> bytes:
    if isinstance(v, bytes):
        return v
    s = str(v)
    return bytes.fromhex(s[2:] if s.startswith("0x") else s)


def _jsonable(v: Any) -> Any:
    if isinstance(v, bytes):
        return "0x" + v.hex()
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    return v


class Relayer:
    """Builds, checks, simulates and submits relayed writes with one ChainClient (the relayer's)."""

    def __init__(self, client: ChainClient) -> None:
        self.client = client
        self.forwarder = client.contract("LedgerForwarder")
        self.consent = client.contract("ConsentRegistry")
        self._forwarder_separator = typed_data.domain_separator(
            typed_data.FORWARDER_NAME, typed_data.VERSION, client.chain_id, self.forwarder.address
        )
        self._consent_separator = typed_data.domain_separator(
            typed_data.CONSENT_NAME, typed_data.VERSION, client.chain_id, self.consent.address
        )
        self._known_datasets: set[bytes] = set()
        self._now_cache: tuple[int, float] | None = None

    # -- forward requests

    def encode(self, contract: str, fn: str, *args: Any) -> tuple[str, bytes]:
        c = self.client.contract(contract)
        data = c.encode_abi(fn, args=list(args))
        return str(c.address), bytes.fromhex(data[2:])

    def now(self) -> int:
        """The chain's notion of now (latest block timestamp): deadlines are checked against it.
        Read from the node at most once a second and extrapolated in between (one get_block is
        ~3 ms, paid per accepted request otherwise); the contracts check deadlines again anyway."""
        mono = time.monotonic()
        cached = self._now_cache
        if cached is None or mono - cached[1] > 1.0:
            stamp = int(self.client.w3.eth.get_block("latest")["timestamp"])
            cached = (stamp, mono)
            self._now_cache = cached
        return max(cached[0] + int(mono - cached[1]), int(time.time()) - 60)

    def forget_now(self) -> None:
        """Drop the cached chain time (after moving a local chain's clock)."""
        self._now_cache = None

    def chain_nonce(self, sender: str) -> int:
        return int(self.client.call(self.forwarder.functions.nonces(to_checksum_address(sender))))

    def estimate_inner_gas(self, sender: str, to: str, data: bytes) -> int:
        """Gas for the inner call as the forwarder makes it (calldata + sender suffix); a revert
        comes back as a domain exception."""
        call = {
            "from": self.forwarder.address,
            "to": to_checksum_address(to),
            "data": "0x" + (data + bytes.fromhex(sender[2:])).hex(),
        }
        try:
            est = self.client.w3.eth.estimate_gas(call)  # type: ignore[arg-type]
        except (ContractCustomError, ContractLogicError, Web3RPCError) as exc:
            raise self.client._decoded(exc) from exc
        return int(est * 1.25) + 20_000

    def sign_request(
        self,
        actor: LocalAccount,
        contract: str,
        fn: str,
        *args: Any,
        nonce: int | None = None,
        deadline: int | None = None,
    ) -> ForwardRequest:
        """Encode a call, simulate it as ``actor`` (raising its revert), and sign it with the actor's key."""
        to, data = self.encode(contract, fn, *args)
        gas = self.estimate_inner_gas(actor.address, to, data)
        req = ForwardRequest(
            sender=actor.address,
            to=to,
            value=0,
            gas=gas,
            nonce=self.chain_nonce(actor.address) if nonce is None else nonce,
            deadline=deadline or self.now() + DEFAULT_DEADLINE_SECONDS,
            data=data,
            signature=b"",
        )
        sig = typed_data.sign(req.typed(self.client.chain_id, self.forwarder.address), actor.key)
        return ForwardRequest(**{**req.__dict__, "signature": sig})

    def check(self, req: ForwardRequest, *, expected_nonce: int | None = None, simulate: bool = True) -> None:
        """Offline and on-chain checks before queueing: signature recovers to ``from``, target is a
        ledger contract, deadline in the future, nonce as expected, the call would succeed."""
        record = self.client.record
        targets = {to_checksum_address(a) for a in (record.addresses.values() if record else [])}
        if to_checksum_address(req.to) not in targets:
            raise InvalidInput(f"request target {req.to} is not a ledger contract")
        if req.value != 0:
            raise InvalidInput("requests must not carry value")
        signer = typed_data.recover_digest(
            typed_data.message_digest(
                "ForwardRequest",
                {
                    "from": req.sender,
                    "to": req.to,
                    "value": req.value,
                    "gas": req.gas,
                    "nonce": req.nonce,
                    "deadline": req.deadline,
                    "data": req.data,
                },
                self._forwarder_separator,
            ),
            req.signature,
        )
        if signer != to_checksum_address(req.sender):
            raise SignatureError(
                f"request signed by {signer}, not by its sender {req.sender}",
                hint="sign the exact typed data with the sender's key (chain id, forwarder, nonce)",
            )
        if req.deadline <= self.now():
            raise SignatureError(f"request deadline {req.deadline} has passed", hint="sign again with a later deadline")
        nonce = self.chain_nonce(req.sender) if expected_nonce is None else expected_nonce
        if req.nonce != nonce:
            raise SignatureError(
                f"request nonce {req.nonce} is not the sender's next nonce {nonce}",
                hint="fetch the next nonce and sign again",
            )
        if req.gas > 5_000_000:
            raise InvalidInput(f"request gas {req.gas} exceeds the relayer's limit of 5,000,000")
        if simulate:
            self.estimate_inner_gas(req.sender, req.to, req.data)

    def submit(self, requests: Sequence[ForwardRequest]) -> list[Outcome]:
        """Submit requests in one ``executeBatch`` (skipping invalid ones rather than reverting),
        wait for the receipt and report each request's outcome."""
        if not requests:
            return []
        tx_hash = self.send_batch(requests)
        return self.outcomes(requests, self.client.wait(bytes.fromhex(tx_hash[2:])))

    def send_batch(self, requests: Sequence[ForwardRequest]) -> str:
        """Send one ``executeBatch`` transaction without waiting; returns its hash."""
        fn = self.forwarder.functions.executeBatch([r.as_call_tuple() for r in requests], self.client.address)
        gas = sum(r.gas for r in requests) + 40_000 + 12_000 * len(requests) + sum(16 * len(r.data) for r in requests)
        return str(self.client.transact(fn, gas=min(gas, 29_000_000), wait=False))

    def outcomes(self, requests: Sequence[ForwardRequest], receipt: TxReceipt) -> list[Outcome]:
        """Each request's outcome in a mined ``executeBatch`` receipt."""
        if receipt["status"] != 1:
            err = TransactionFailed("the batch transaction reverted", hint="the requests stay unexecuted")
            return [
                Outcome(False, "0x" + bytes(receipt["transactionHash"]).hex(), int(receipt["blockNumber"]), err)
                for _ in requests
            ]
        return self._outcomes(requests, receipt)

    def _outcomes(self, requests: Sequence[ForwardRequest], receipt: TxReceipt) -> list[Outcome]:
        tx_hash = "0x" + bytes(receipt["transactionHash"]).hex()
        block = int(receipt["blockNumber"])
        executed: dict[tuple[str, int], bool] = {}
        for ev in self.forwarder.events.ExecutedForwardRequest().process_receipt(receipt, errors=DISCARD):
            executed[(str(ev["args"]["signer"]), int(ev["args"]["nonce"]))] = bool(ev["args"]["success"])
        out: list[Outcome] = []
        for r in requests:
            key = (to_checksum_address(r.sender), r.nonce)
            if key not in executed:
                skipped = TransactionFailed(
                    "request was skipped: its signature, nonce or deadline was no longer valid when mined",
                    hint="sign again with the current nonce",
                )
                out.append(Outcome(False, tx_hash, block, skipped))
            elif not executed[key]:
                out.append(Outcome(False, tx_hash, block, self._reason(r, block)))
            else:
                out.append(Outcome(True, tx_hash, block))
        return out

    def _reason(self, r: ForwardRequest, block: int) -> LedgerError:
        """The forwarder keeps no revert data: replay the call at the batch's parent block."""
        call = {
            "from": self.forwarder.address,
            "to": r.to,
            "data": "0x" + (r.data + bytes.fromhex(r.sender[2:])).hex(),
            "gas": r.gas,
        }
        try:
            self.client.w3.eth.call(call, block - 1)  # type: ignore[arg-type]
        except (ContractCustomError, ContractLogicError, Web3RPCError) as exc:
            err = self.client._decoded(exc)
            if isinstance(err, LedgerError):
                return err
        return TransactionFailed("the relayed call reverted (out of gas or state changed within the batch)")

    # -- consent typed messages

    def consent_typed(self, kind: str, message: dict[str, Any]) -> typed_data.TypedData:
        return typed_data.consent_message(
            kind, chain_id=self.client.chain_id, registry=self.consent.address, message=message
        )

    def sign_consent(self, signer: LocalAccount, kind: str, message: dict[str, Any]) -> SignedConsent:
        full = dict(message)
        full.setdefault("nonce", random_consent_nonce())
        full.setdefault("deadline", self.now() + DEFAULT_DEADLINE_SECONDS)
        sig = typed_data.sign(self.consent_typed(kind, full), signer.key)
        return SignedConsent(kind, full, sig)

    def consent_call(self, sc: SignedConsent) -> bytes:
        """The encoded *BySig call for relayBatch: selector and eth_abi encoding precomputed per
        message type (web3's encode_abi per message was half the relay worker's time)."""
        selector, tuple_type, fields = _consent_codec(sc.kind)
        values = tuple(
            _hex(sc.message[f])
            if f == "scope"
            else to_checksum_address(sc.message[f])
            if t == "address"
            else int(sc.message[f])
            for f, t in fields
        )
        return selector + encode([tuple_type, "bytes"], [values, sc.signature])

    def check_consent(self, sc: SignedConsent, *, simulate: bool | None = None) -> str:
        """Recover the signer and check the message; returns the signer.

        ``simulate=True`` also checks the nonce and executes the call against the latest state.
        ``None`` (the fast path the relay queue uses) checks offline what the contract would check
        (signature, deadline, purposes, expiry, scope shape) and goes to the chain only where the
        answer depends on state the message does not carry: a delegate's authority, a dataset
        scope not seen before, a nonce, a renewal or withdrawal (the consent must exist). A request
        that still fails on chain is reported failed with its reason; nothing runs twice (nonces).
        """
        if sc.kind not in typed_data.CONSENT_TYPES:
            raise SignatureError(f"unknown consent message type {sc.kind!r}")
        typed_data.consent_message(
            sc.kind, chain_id=self.client.chain_id, registry=self.consent.address, message=sc.message
        )  # field names
        signer = typed_data.recover_digest(
            typed_data.message_digest(sc.kind, sc.message, self._consent_separator), sc.signature
        )
        if int(sc.message["deadline"]) <= self.now():
            raise SignatureError("consent message deadline has passed", hint="sign again with a later deadline")
        subject = to_checksum_address(sc.message["subject"])
        needs_chain = simulate is True or signer != subject or sc.kind in ("Renew", "Withdraw")
        # the registry's offline rules (purposes, holder-scope shape, expiry): one statement, in rules
        dataset_scope = consent_rules.check_message(sc.kind, sc.message, self.now())
        if dataset_scope and _hex(sc.message["scope"]) not in self._known_datasets:
            needs_chain = True
        if simulate is False or not needs_chain:
            return signer
        used = self.client.call(self.consent.functions.nonceUsed(signer, int(sc.message["nonce"])))
        if used:
            raise SignatureError(f"nonce {sc.message['nonce']} already used by {signer}", hint="sign a new message")
        try:
            self.client.w3.eth.call({"to": self.consent.address, "data": self.consent_call(sc)})
        except (ContractCustomError, ContractLogicError, Web3RPCError) as exc:
            raise self.client._decoded(exc) from exc
        if sc.kind == "Grant" and int(sc.message["scopeKind"]) == 1:
            self._known_datasets.add(_hex(sc.message["scope"]))  # datasets are never unregistered
        return signer

    @staticmethod
    def consent_order(items: Sequence[SignedConsent]) -> list[int]:
        """Withdrawals first: nothing queued may hold a withdrawal back."""
        return sorted(range(len(items)), key=lambda i: 0 if items[i].kind == "Withdraw" else 1)

    def submit_consents(self, items: Sequence[SignedConsent]) -> list[Outcome]:
        """Submit signed consent messages in one ``relayBatch``; withdrawals go first."""
        if not items:
            return []
        tx_hash = self.send_consents(items)
        return self.consent_outcomes(items, self.client.wait(bytes.fromhex(tx_hash[2:])))

    def send_consents(self, items: Sequence[SignedConsent]) -> str:
        calls = [self.consent_call(items[i]) for i in self.consent_order(items)]
        fn = self.consent.functions.relayBatch(calls)
        gas = 60_000 + 120_000 * len(calls)
        return str(self.client.transact(fn, gas=min(gas, 29_000_000), wait=False))

    def consent_outcomes(self, items: Sequence[SignedConsent], receipt: TxReceipt) -> list[Outcome]:
        tx_hash = "0x" + bytes(receipt["transactionHash"]).hex()
        block = int(receipt["blockNumber"])
        if receipt["status"] != 1:
            err = TransactionFailed("the consent batch transaction reverted", hint="the messages stay unexecuted")
            return [Outcome(False, tx_hash, block, err) for _ in items]
        failed: dict[int, bytes] = {}
        for ev in self.consent.events.SignedCallFailed().process_receipt(receipt, errors=DISCARD):
            failed[int(ev["args"]["index"])] = bytes(ev["args"]["reason"])
        results: dict[int, Outcome] = {}
        for pos, i in enumerate(self.consent_order(items)):
            if pos in failed:
                results[i] = Outcome(False, tx_hash, block, self.client.decoder.decode(failed[pos]))
            else:
                results[i] = Outcome(True, tx_hash, block)
        return [results[i] for i in range(len(items))]


def contract_of(client: ChainClient, name: str) -> Contract:
    return client.contract(name)
