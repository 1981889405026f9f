"""The gas report's chain plumbing: the run's constants, sending transactions through brownie,
relaying forwarded calls and signed consent messages in batches, and deploying the ledger with
deterministic keys as the parties (benchmarks/gas.py runs it)."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "contracts"))

from brownie import accounts, web3  # noqa: E402
from brownie.exceptions import TransactionError  # noqa: E402
from chain_helpers import (  # noqa: E402
    AUDITOR_ROLE,
    HOLDER_ROLE,
    REVIEWER_ROLE,
    USER_ROLE,
    ZERO32,
    ZERO_ADDRESS,
    SignedConsent,
    b32,
    latest_timestamp,
    sign_consent,
    sign_forward,
)
from eth_account import Account  # noqa: E402
from eth_typing import HexStr  # noqa: E402
from eth_utils.crypto import keccak  # noqa: E402
from hexbytes import HexBytes  # noqa: E402

BATCH_SIZES = (1, 10, 100)
REQUEST_GAS = 600_000  # gas each forwarded call may use (a cap; only what is used is charged)
BLOCK_GAS_LIMIT = 1_000_000_000
HARDFORK = "prague"
START_TIME = 1_800_000_000


def log(message: str) -> None:
    print(f"[gas] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------- plumbing

EXECUTED_TOPIC = "0x" + keccak(text="ExecutedForwardRequest(address,uint256,bool)").hex()
SIGNED_CALL_FAILED_TOPIC = "0x" + keccak(text="SignedCallFailed(uint256,bytes)").hex()


@dataclass(frozen=True)
class Receipt:
    txid: str
    gas_used: int
    status: int
    logs: list[Any]

    def topics(self, topic: str) -> list[Any]:
        return [log for log in self.logs if log["topics"] and "0x" + bytes(log["topics"][0]).hex() == topic]


def dropped_txid(exc: TransactionError) -> str:
    """The transaction id of brownie's "Tx dropped without known replacement" (see transact());
    any other error is raised again."""
    if "dropped without known replacement" not in str(exc):
        raise exc
    return str(exc).split()[-1]


def transact(fn: Any, *args: Any, params: dict[str, Any]) -> Receipt:
    """Send a transaction with brownie and return its receipt from the node.

    brownie sometimes reports "Tx dropped without known replacement" for a transaction anvil has
    mined (its nonce check races the transaction lookup); the transaction id in that message is
    then waited for directly."""
    try:
        txid = fn(*args, params, silent=True).txid
    except TransactionError as exc:
        txid = dropped_txid(exc)
    receipt = web3.eth.wait_for_transaction_receipt(txid, timeout=120, poll_latency=0.02)
    return Receipt(txid, int(receipt["gasUsed"]), int(receipt["status"]), list(receipt["logs"]))


@dataclass(frozen=True)
class Call:
    """A write `contract.fn(*args)` made by `key` (an eth_account key)."""

    key: Any
    contract: Any
    fn: str
    args: tuple[Any, ...]


class Relay:
    """Signs forward requests with locally tracked nonces and submits them in executeBatch."""

    def __init__(self, forwarder: Any, sender: Any):
        self.forwarder = forwarder
        self.sender = sender
        self.nonces: dict[str, int] = {}

    def sign(self, call: Call, deadline: int) -> Any:
        address = call.key.address
        if address not in self.nonces:
            self.nonces[address] = int(self.forwarder.nonces(address))
        nonce = self.nonces[address]
        self.nonces[address] = nonce + 1
        data = HexBytes(getattr(call.contract, call.fn).encode_input(*call.args))
        return sign_forward(
            self.forwarder, call.key, call.contract, data, nonce=nonce, deadline=deadline, gas=REQUEST_GAS
        )

    def execute(self, calls: list[Call]) -> Any:
        deadline = latest_timestamp() + 86_400
        requests = [self.sign(c, deadline).as_tuple() for c in calls]
        gas_limit = min(BLOCK_GAS_LIMIT, 2_000_000 + len(calls) * (REQUEST_GAS + 60_000))
        tx = transact(
            self.forwarder.executeBatch, requests, ZERO_ADDRESS, params={"from": self.sender, "gas_limit": gas_limit}
        )
        events = tx.topics(EXECUTED_TOPIC)
        # data = (nonce, success)
        failed = [i for i, e in enumerate(events) if not int.from_bytes(bytes(e["data"])[32:64], "big")]
        if len(events) != len(calls) or failed:
            raise RuntimeError(
                f"relayed {calls[0].contract._name}.{calls[0].fn}: {len(events)} executed, failed {failed}"
            )
        return tx

    def run(self, calls: list[Call], chunk: int = 100) -> None:
        for i in range(0, len(calls), chunk):
            self.execute(calls[i : i + chunk])


@dataclass
class Ledger:
    forwarder: Any
    roles: Any
    datasets: Any
    consent: Any
    access: Any
    usage: Any
    relay: Relay
    relayer: Any
    admin: Any
    holder: Any
    reviewer: Any
    user: Any
    auditor: Any
    subjects: list[Any]
    consent_nonces: dict[str, int] = field(default_factory=dict)
    locals: dict[str, Any] = field(default_factory=dict)
    counter: int = 0

    def fresh(self, label: str) -> str:
        self.counter += 1
        return b32(f"gas:{label}:{self.counter}")

    def fresh_address(self) -> str:
        self.counter += 1
        return str(key(f"address:{self.counter}").address)

    def local(self, key: Any) -> Any:
        """The brownie account of a key, funded so that it can send directly."""
        if key.address not in self.locals:
            account = accounts.add(key.key.hex())
            try:
                # brownie annotates (Account, int) but takes its LocalAccount and a "100 ether" string
                accounts[0].transfer(account, "100 ether", silent=True)  # type: ignore[arg-type]
            except TransactionError as exc:
                web3.eth.wait_for_transaction_receipt(HexStr(dropped_txid(exc)), timeout=120, poll_latency=0.02)
            self.locals[key.address] = account
        return self.locals[key.address]

    def consent_nonce(self, key: Any) -> int:
        nonce = self.consent_nonces.get(key.address, 0)
        self.consent_nonces[key.address] = nonce + 1
        return nonce

    def far(self, seconds: int = 365 * 86_400) -> int:
        return latest_timestamp() + seconds


def key(label: str) -> Any:
    """A deterministic key per label, so that every run sends the same calldata (zero and non-zero
    bytes cost differently) and reproduces the same figures."""
    return Account.from_key(keccak(text=f"medledger-gas:{label}"))


def deploy(p: Any, pool: int) -> Ledger:
    deployer, relayer = accounts[0], accounts[1]
    admin, holder, reviewer, user, auditor = (key(name) for name in ("admin", "holder", "reviewer", "user", "auditor"))
    subjects = [key(f"subject:{i}") for i in range(pool)]
    forwarder = p.LedgerForwarder.deploy({"from": deployer}, silent=True)
    roles = p.LedgerRoles.deploy(forwarder, admin.address, {"from": deployer}, silent=True)
    datasets = p.DatasetRegistry.deploy(forwarder, roles, {"from": deployer}, silent=True)
    consent = p.ConsentRegistry.deploy(forwarder, datasets, {"from": deployer}, silent=True)
    access = p.AccessRegistry.deploy(forwarder, roles, datasets, {"from": deployer}, silent=True)
    usage = p.UsageRegistry.deploy(forwarder, roles, datasets, access, {"from": deployer}, silent=True)
    relay = Relay(forwarder, relayer)
    ledger = Ledger(
        forwarder,
        roles,
        datasets,
        consent,
        access,
        usage,
        relay,
        relayer,
        admin,
        holder,
        reviewer,
        user,
        auditor,
        subjects,
    )
    relay.run(
        [
            Call(admin, roles, "grantRole", (role, key.address))
            for role, key in (
                (HOLDER_ROLE, holder),
                (REVIEWER_ROLE, reviewer),
                (USER_ROLE, user),
                (AUDITOR_ROLE, auditor),
            )
        ]
    )
    # steady state: every key has used its forwarder nonce and a consent-nonce word
    relay.run([Call(key, datasets, "exists", (ZERO32,)) for key in [holder, reviewer, user, auditor, *subjects]])
    primes = [
        sign_consent(
            consent,
            s,
            "AppointDelegate",
            subject=s.address,
            delegate=ZERO_ADDRESS.replace("0x0", "0x1", 1),
            expiry=ledger.far(),
            nonce=ledger.consent_nonce(s),
        )
        for s in subjects
    ]
    relay_signed(ledger, primes)
    return ledger


def relay_signed(ledger: Ledger, signed: list[SignedConsent], chunk: int = 100) -> Any:
    tx = None
    for i in range(0, len(signed), chunk):
        part = signed[i : i + chunk]
        gas_limit = min(BLOCK_GAS_LIMIT, 2_000_000 + len(part) * 200_000)
        tx = transact(
            ledger.consent.relayBatch,
            [s.calldata(ledger.consent) for s in part],
            params={"from": ledger.relayer, "gas_limit": gas_limit},
        )
        if tx.status != 1 or tx.topics(SIGNED_CALL_FAILED_TOPIC):
            raise RuntimeError(f"relayBatch of {len(part)} {part[0].primary} failed: {tx.txid}")
    return tx
