#!/usr/bin/env python3
"""Gas used by every ledger operation: sent directly, and relayed in batches of 1, 10 and 100.

Run with `bash scripts/gas_report.sh` (it sources scripts/bootstrap.sh first). The script loads the
brownie project, starts its own anvil on a free port (prague hardfork, 1e9 block gas limit, so
batches of 100 fit in one block), deploys the ledger with fresh keys as the parties, measures, and
writes benchmarks/gas.md.

Method:
- direct: the acting party sends the transaction itself; the figure is the receipt's gasUsed
  (21,000 intrinsic + calldata + execution - refunds);
- relayed: n requests signed by the acting parties go in one transaction; the figure is the
  transaction's gasUsed / n. Forwarded writes go through LedgerForwarder.executeBatch (atomic,
  refundReceiver = 0); signed consent messages through ConsentRegistry.relayBatch;
- institutions (admin, holder, reviewer, user, auditor) sign their own batches (one key, consecutive
  forwarder nonces); each data subject signs for itself (one key per request). Every key has used
  its forwarder nonce, and its consent-nonce bitmap word, before it is measured (steady state; a
  key's first-ever request costs about 17,100 more for the 0 -> 1 nonce slot);
- every request in a batch works on its own records (its own dataset, request, consent), so no
  request profits from another's warm storage beyond the contracts' shared code and counters.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "contracts"))

import yaml  # noqa: E402
from brownie import accounts, web3  # noqa: E402
from brownie._config import CONFIG  # noqa: E402
from brownie.exceptions import TransactionError  # noqa: E402
from brownie.network.main import connect, disconnect  # noqa: E402
from brownie.project.main import load as load_project  # noqa: E402
from chain_helpers import (  # noqa: E402
    AUDITOR_ROLE,
    DUO,
    HOLDER_ROLE,
    REVIEWER_ROLE,
    USER_ROLE,
    ZERO32,
    ZERO_ADDRESS,
    Scope,
    SignedConsent,
    Tier,
    b32,
    holder_scope,
    latest_timestamp,
    sign_consent,
    sign_forward,
)
from eth_account import Account  # noqa: E402
from eth_typing import HexStr  # noqa: E402
from eth_utils.crypto import keccak  # noqa: E402
from hexbytes import HexBytes  # noqa: E402
from web3.types import RPCEndpoint  # noqa: E402

BATCH_SIZES = (1, 10, 100)
REQUEST_GAS = 600_000  # gas each forwarded call may use (a cap; only what is used is charged)
BLOCK_GAS_LIMIT = 1_000_000_000
HARDFORK = "prague"
START_TIME = 1_800_000_000
TARGETS = {
    # operation name -> (target gas, label)
    "consent grant, holder-wide": (50_000, "consent grant (direct; holder-wide, by the subject)"),
    "consent withdraw": (30_000, "consent withdrawal (direct, by the subject)"),
    "recordUse, controlled, first use": (60_000, "recording a use (direct; controlled tier, first use of the dataset)"),
    "recordUse, controlled, repeat use": (60_000, "recording a use (direct; controlled tier, repeat use)"),
    "register, no parents": (160_000, "registering a dataset without parents (direct)"),
}


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


def transact(fn: Any, *args: Any, params: dict[str, Any]) -> Receipt:
    """Send a transaction with brownie and return its receipt from the node.

    brownie sometimes reports "Tx dropped without known replacement" for a transaction anvil has
    mined (its nonce check races the transaction lookup); the transaction id in that message is
    then waited for directly."""
    try:
        txid = fn(*args, params, silent=True).txid
    except TransactionError as exc:
        if "dropped without known replacement" not in str(exc):
            raise
        txid = str(exc).split()[-1]
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
            except TransactionError as exc:  # see transact()
                if "dropped without known replacement" not in str(exc):
                    raise
                web3.eth.wait_for_transaction_receipt(HexStr(str(exc).split()[-1]), timeout=120, poll_latency=0.02)
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


# ---------------------------------------------------------------------------------------------- operations


@dataclass(frozen=True)
class Operation:
    name: str
    party: str
    prepare: Callable[[Ledger, int], list[Any]]  # -> list[Call] or list[SignedConsent] for n requests
    signed: bool = False  # signed consent messages (relayBatch) rather than forwarded calls
    note: str = ""


def _register_datasets(ledger: Ledger, n: int, tier: int = Tier.CONTROLLED, embargo: int = 0) -> list[str]:
    roots = [ledger.fresh("dataset") for _ in range(n)]
    ledger.relay.run(
        [
            Call(
                ledger.holder,
                ledger.datasets,
                "register",
                (root, ledger.fresh("meta"), [], ZERO32, tier, 211, embargo, ledger.fresh("subjects")),
            )
            for root in roots
        ]
    )
    return roots


def op_register(parent_count: int, activity: bool = False) -> Callable[[Ledger, int], list[Call]]:
    def prepare(ledger: Ledger, n: int) -> list[Call]:
        parents = _register_datasets(ledger, n * parent_count) if parent_count else []
        calls = []
        for i in range(n):
            own = sorted(parents[i * parent_count : (i + 1) * parent_count])
            calls.append(
                Call(
                    ledger.holder,
                    ledger.datasets,
                    "register",
                    (
                        ledger.fresh("root"),
                        ledger.fresh("meta"),
                        own,
                        ledger.fresh("activity") if (parent_count or activity) else ZERO32,
                        Tier.CONTROLLED,
                        211,
                        0,
                        ledger.fresh("subjects"),
                    ),
                )
            )
        return calls

    return prepare


def prep_set_sharing(ledger: Ledger, n: int) -> list[Call]:
    return [
        Call(ledger.holder, ledger.datasets, "setSharing", (root, Tier.REGISTERED, ledger.far(86_400)))
        for root in _register_datasets(ledger, n)
    ]


def prep_deprecate(ledger: Ledger, n: int) -> list[Call]:
    roots = _register_datasets(ledger, 2 * n)
    return [Call(ledger.holder, ledger.datasets, "deprecate", (roots[2 * i], roots[2 * i + 1])) for i in range(n)]


def prep_retract(ledger: Ledger, n: int) -> list[Call]:
    return [
        Call(ledger.holder, ledger.datasets, "retract", (root, ledger.fresh("reason")))
        for root in _register_datasets(ledger, n)
    ]


def prep_suspend(ledger: Ledger, n: int) -> list[Call]:
    return [
        Call(ledger.auditor, ledger.datasets, "suspend", (root, ledger.fresh("reason")))
        for root in _register_datasets(ledger, n)
    ]


def prep_reinstate(ledger: Ledger, n: int) -> list[Call]:
    calls = prep_suspend(ledger, n)
    ledger.relay.run(calls)
    return [Call(ledger.auditor, ledger.datasets, "reinstate", (c.args[0],)) for c in calls]


def _subjects(ledger: Ledger, n: int) -> list[Any]:
    if n > len(ledger.subjects):
        raise ValueError(f"need {n} subjects, have {len(ledger.subjects)}")
    return ledger.subjects[:n]


def _holder_wide_grants(ledger: Ledger, n: int) -> list[Call]:
    # a fresh holder address per batch, so every request writes a new consent slot
    scope = holder_scope(ledger.fresh_address())
    return [
        Call(
            s,
            ledger.consent,
            "grant",
            (s.address, Scope.HOLDER, scope, ZERO_ADDRESS, DUO.HMB | DUO.NCU, 0, ledger.far()),
        )
        for s in _subjects(ledger, n)
    ]


def prep_grant_dataset(ledger: Ledger, n: int) -> list[Call]:
    (dataset,) = _register_datasets(ledger, 1)
    return [
        Call(s, ledger.consent, "grant", (s.address, Scope.DATASET, dataset, ZERO_ADDRESS, DUO.DS, 1234, ledger.far()))
        for s in _subjects(ledger, n)
    ]


def prep_renew(ledger: Ledger, n: int) -> list[Call]:
    grants = _holder_wide_grants(ledger, n)
    ledger.relay.run(grants)
    return [Call(c.key, ledger.consent, "renew", (*c.args[:4], ledger.far(2 * 365 * 86_400))) for c in grants]


def prep_withdraw(ledger: Ledger, n: int) -> list[Call]:
    grants = _holder_wide_grants(ledger, n)
    ledger.relay.run(grants)
    return [Call(c.key, ledger.consent, "withdraw", c.args[:4]) for c in grants]


def prep_appoint(ledger: Ledger, n: int) -> list[Call]:
    return [
        Call(s, ledger.consent, "appointDelegate", (ledger.fresh_address(), ledger.far())) for s in _subjects(ledger, n)
    ]


def prep_revoke_delegate(ledger: Ledger, n: int) -> list[Call]:
    appointments = prep_appoint(ledger, n)
    ledger.relay.run(appointments)
    return [Call(c.key, ledger.consent, "revokeDelegate", (c.args[0],)) for c in appointments]


def _signed_grants(ledger: Ledger, n: int, fresh_word: bool = False) -> list[SignedConsent]:
    scope = holder_scope(ledger.fresh_address())
    out = []
    for s in _subjects(ledger, n):
        nonce = int.from_bytes(keccak(text=ledger.fresh("nonce")), "big") if fresh_word else ledger.consent_nonce(s)
        out.append(
            sign_consent(
                ledger.consent,
                s,
                "Grant",
                subject=s.address,
                scopeKind=Scope.HOLDER,
                scope=scope,
                grantee=ZERO_ADDRESS,
                purposes=DUO.HMB | DUO.NCU,
                diseaseCode=0,
                expiry=ledger.far(),
                nonce=nonce,
                deadline=ledger.far(86_400),
            )
        )
    return out


def prep_grant_by_sig(ledger: Ledger, n: int) -> list[SignedConsent]:
    return _signed_grants(ledger, n)


def prep_grant_by_sig_fresh_word(ledger: Ledger, n: int) -> list[SignedConsent]:
    return _signed_grants(ledger, n, fresh_word=True)


def _signed_after_grants(ledger: Ledger, n: int, primary: str) -> list[SignedConsent]:
    grants = _signed_grants(ledger, n)
    relay_signed(ledger, grants)
    out = []
    for g in grants:
        s = next(k for k in ledger.subjects if k.address == g.message["subject"])
        fields = {k: g.message[k] for k in ("subject", "scopeKind", "scope", "grantee")}
        if primary == "Renew":
            fields["expiry"] = ledger.far(2 * 365 * 86_400)
        out.append(
            sign_consent(
                ledger.consent, s, primary, **fields, nonce=ledger.consent_nonce(s), deadline=ledger.far(86_400)
            )
        )
    return out


def prep_withdraw_by_sig(ledger: Ledger, n: int) -> list[SignedConsent]:
    return _signed_after_grants(ledger, n, "Withdraw")


def prep_renew_by_sig(ledger: Ledger, n: int) -> list[SignedConsent]:
    return _signed_after_grants(ledger, n, "Renew")


def prep_appoint_by_sig(ledger: Ledger, n: int) -> list[SignedConsent]:
    return [
        sign_consent(
            ledger.consent,
            s,
            "AppointDelegate",
            subject=s.address,
            delegate=ledger.fresh_address(),
            expiry=ledger.far(),
            nonce=ledger.consent_nonce(s),
            deadline=ledger.far(86_400),
        )
        for s in _subjects(ledger, n)
    ]


def prep_revoke_delegate_by_sig(ledger: Ledger, n: int) -> list[SignedConsent]:
    appointments = prep_appoint_by_sig(ledger, n)
    relay_signed(ledger, appointments)
    out = []
    for a in appointments:
        s = next(k for k in ledger.subjects if k.address == a.message["subject"])
        out.append(
            sign_consent(
                ledger.consent,
                s,
                "RevokeDelegate",
                subject=s.address,
                delegate=a.message["delegate"],
                nonce=ledger.consent_nonce(s),
                deadline=ledger.far(86_400),
            )
        )
    return out


def prep_request_access(ledger: Ledger, n: int) -> list[Call]:
    return [
        Call(
            ledger.user,
            ledger.access,
            "requestAccess",
            (root, DUO.HMB | DUO.USE_PUBLISHES, 0, ledger.fresh("protocol")),
        )
        for root in _register_datasets(ledger, n)
    ]


def _requests(ledger: Ledger, n: int, tier: int = Tier.CONTROLLED) -> list[tuple[str, int]]:
    """n pending requests by the user, each on its own dataset: [(dataset, request id)]."""
    calls = prep_request_access(ledger, n)
    first = int(ledger.access.requestCount()) + 1
    ledger.relay.run(calls)
    return [(c.args[0], first + i) for i, c in enumerate(calls)]


def prep_approve(ledger: Ledger, n: int) -> list[Call]:
    return [
        Call(ledger.reviewer, ledger.access, "approve", (rid, ledger.fresh("conditions"), ledger.far()))
        for _, rid in _requests(ledger, n)
    ]


def prep_deny(ledger: Ledger, n: int) -> list[Call]:
    return [
        Call(ledger.reviewer, ledger.access, "deny", (rid, ledger.fresh("reason"))) for _, rid in _requests(ledger, n)
    ]


def _approved(ledger: Ledger, n: int) -> list[tuple[str, int]]:
    pending = _requests(ledger, n)
    ledger.relay.run(
        [
            Call(ledger.reviewer, ledger.access, "approve", (rid, ledger.fresh("conditions"), ledger.far()))
            for _, rid in pending
        ]
    )
    return pending


def prep_revoke(ledger: Ledger, n: int) -> list[Call]:
    return [
        Call(ledger.reviewer, ledger.access, "revoke", (rid, ledger.fresh("reason"))) for _, rid in _approved(ledger, n)
    ]


def prep_override_embargo(ledger: Ledger, n: int) -> list[Call]:
    roots = _register_datasets(ledger, n, embargo=ledger.far(30 * 86_400))
    return [Call(ledger.auditor, ledger.access, "overrideEmbargo", (root, ledger.fresh("reason"))) for root in roots]


def prep_suspend_user(ledger: Ledger, n: int) -> list[Call]:
    return [
        Call(ledger.auditor, ledger.access, "suspendUser", (ledger.fresh_address(), ledger.fresh("reason")))
        for _ in range(n)
    ]


def prep_reinstate_user(ledger: Ledger, n: int) -> list[Call]:
    calls = prep_suspend_user(ledger, n)
    ledger.relay.run(calls)
    return [Call(ledger.auditor, ledger.access, "reinstateUser", (c.args[0],)) for c in calls]


USE = DUO.HMB | DUO.USE_PUBLISHES


def prep_use_first(ledger: Ledger, n: int) -> list[Call]:
    return [
        Call(ledger.user, ledger.usage, "recordUse", (ds, rid, USE, 0, ledger.fresh("result")))
        for ds, rid in _approved(ledger, n)
    ]


def prep_use_repeat(ledger: Ledger, n: int) -> list[Call]:
    first = prep_use_first(ledger, n)
    ledger.relay.run(first)
    return [Call(c.key, c.contract, c.fn, (*c.args[:4], ledger.fresh("result"))) for c in first]


def prep_use_open_first(ledger: Ledger, n: int) -> list[Call]:
    return [
        Call(ledger.user, ledger.usage, "recordUse", (root, 0, USE, 0, ledger.fresh("result")))
        for root in _register_datasets(ledger, n, tier=Tier.OPEN)
    ]


def prep_use_open_repeat(ledger: Ledger, n: int) -> list[Call]:
    first = prep_use_open_first(ledger, n)
    ledger.relay.run(first)
    return [Call(c.key, c.contract, c.fn, (*c.args[:4], ledger.fresh("result"))) for c in first]


def prep_role_grant(ledger: Ledger, n: int) -> list[Call]:
    return [Call(ledger.admin, ledger.roles, "grantRole", (USER_ROLE, ledger.fresh_address())) for _ in range(n)]


def prep_role_revoke(ledger: Ledger, n: int) -> list[Call]:
    grants = prep_role_grant(ledger, n)
    ledger.relay.run(grants)
    return [Call(ledger.admin, ledger.roles, "revokeRole", c.args) for c in grants]


OPERATIONS = [
    Operation(
        "register, no parents",
        "holder",
        op_register(0),
        note="metadata digest and subject root set, no activity digest",
    ),
    Operation("register, no parents, activity digest set", "holder", op_register(0, activity=True)),
    Operation("register, 1 parent", "holder", op_register(1)),
    Operation("register, 3 parents", "holder", op_register(3)),
    Operation("setSharing", "holder", prep_set_sharing),
    Operation("deprecate", "holder", prep_deprecate),
    Operation("retract", "holder", prep_retract),
    Operation("suspend (dataset)", "auditor", prep_suspend),
    Operation("reinstate (dataset)", "auditor", prep_reinstate),
    Operation("consent grant, holder-wide", "subject", _holder_wide_grants),
    Operation("consent grant, dataset-scoped", "subject", prep_grant_dataset),
    Operation("consent renew", "subject", prep_renew),
    Operation("consent withdraw", "subject", prep_withdraw),
    Operation("appointDelegate", "subject", prep_appoint),
    Operation("revokeDelegate", "subject", prep_revoke_delegate),
    Operation("grantBySig", "subject", prep_grant_by_sig, signed=True),
    Operation(
        "grantBySig, nonce in a new bitmap word",
        "subject",
        prep_grant_by_sig_fresh_word,
        signed=True,
        note="random 256-bit nonce: its bitmap word goes 0 -> non-zero",
    ),
    Operation("renewBySig", "subject", prep_renew_by_sig, signed=True),
    Operation("withdrawBySig", "subject", prep_withdraw_by_sig, signed=True),
    Operation("appointDelegateBySig", "subject", prep_appoint_by_sig, signed=True),
    Operation("revokeDelegateBySig", "subject", prep_revoke_delegate_by_sig, signed=True),
    Operation("requestAccess", "user", prep_request_access),
    Operation("approve", "reviewer", prep_approve),
    Operation("deny", "reviewer", prep_deny),
    Operation("revoke (approval)", "reviewer", prep_revoke),
    Operation("overrideEmbargo", "auditor", prep_override_embargo),
    Operation("suspendUser", "auditor", prep_suspend_user),
    Operation("reinstateUser", "auditor", prep_reinstate_user),
    Operation(
        "recordUse, controlled, first use",
        "user",
        prep_use_first,
        note="first use of the dataset at all: counters slot and first-use flag go 0 -> non-zero",
    ),
    Operation("recordUse, controlled, repeat use", "user", prep_use_repeat),
    Operation("recordUse, open tier, first use", "user", prep_use_open_first),
    Operation("recordUse, open tier, repeat use", "user", prep_use_open_repeat),
    Operation("role grant", "admin", prep_role_grant),
    Operation("role revoke", "admin", prep_role_revoke),
]


# ---------------------------------------------------------------------------------------------- measuring


def calldata_gas(data: bytes) -> tuple[int, int]:
    """(EIP-2028 calldata gas, EIP-7623 floor tokens)."""
    zeros = data.count(0)
    nonzero = len(data) - zeros
    return 4 * zeros + 16 * nonzero, zeros + 4 * nonzero


def breakdown(tx: Any) -> dict[str, int]:
    """Where a direct transaction's gas went, from anvil's opcode trace: intrinsic (base and
    calldata), then execution by kind at the top call frame. Calls to other contracts count the
    whole call (cold account access, the callee's execution and its storage reads)."""
    data = bytes(HexBytes(web3.eth.get_transaction(tx.txid)["input"]))
    cd, _ = calldata_gas(data)
    trace = web3.provider.make_request(
        RPCEndpoint("debug_traceTransaction"),
        [tx.txid, {"disableStack": True, "disableMemory": True, "disableStorage": True}],
    )["result"]["structLogs"]
    top = min(step["depth"] for step in trace)
    parts = {"base": 21_000, "calldata": cd, "SSTORE": 0, "SLOAD": 0, "calls": 0, "LOG": 0, "KECCAK256": 0, "other": 0}
    for i, step in enumerate(trace):
        if step["depth"] != top:
            continue
        op = step["op"]
        if op in ("CALL", "STATICCALL", "DELEGATECALL", "CALLCODE"):
            after = next((s for s in trace[i + 1 :] if s["depth"] == top), None)
            parts["calls"] += step["gas"] - after["gas"] if after else step["gasCost"]
        elif op == "SSTORE":
            parts["SSTORE"] += step["gasCost"]
        elif op == "SLOAD":
            parts["SLOAD"] += step["gasCost"]
        elif op.startswith("LOG"):
            parts["LOG"] += step["gasCost"]
        elif op in ("KECCAK256", "SHA3"):
            parts["KECCAK256"] += step["gasCost"]
        else:
            parts["other"] += step["gasCost"]
    parts["refund"] = sum(parts.values()) - int(tx.gas_used)
    parts["gasUsed"] = int(tx.gas_used)
    return parts


@dataclass
class Result:
    op: Operation
    direct: int
    relayed: dict[int, float]
    parts: dict[str, int]


def direct(ledger: Ledger, op: Operation) -> Receipt:
    """One request of `op`, sent by its party (signed messages: submitted by the relayer)."""
    (item,) = op.prepare(ledger, 1)
    if op.signed:
        tx = transact(
            getattr(ledger.consent, item.fn_name), *item.args(), params={"from": ledger.relayer, "gas_limit": 3_000_000}
        )
    else:
        tx = transact(
            getattr(item.contract, item.fn), *item.args, params={"from": ledger.local(item.key), "gas_limit": 3_000_000}
        )
    if tx.status != 1:
        raise RuntimeError(f"{op.name}: direct call failed ({tx.txid})")
    return tx


def trace_direct(ledger: Ledger, op: Operation) -> dict[str, int]:
    return breakdown(direct(ledger, op))


def measure(ledger: Ledger, op: Operation, sizes: tuple[int, ...], parts: dict[str, int]) -> Result:
    result = Result(op, direct(ledger, op).gas_used, {}, parts)
    for n in sizes:
        items = op.prepare(ledger, n)
        tx = relay_signed(ledger, items, chunk=n) if op.signed else ledger.relay.execute(items)
        result.relayed[n] = tx.gas_used / n
    log(
        f"{op.name}: direct {result.direct:,}; relayed "
        + ", ".join(f"x{n} {g:,.0f}" for n, g in result.relayed.items())
    )
    return result


# ---------------------------------------------------------------------------------------------- report


def environment(anvil_version: str, project_dir: Path) -> dict[str, str]:
    artifact = json.loads((project_dir / "build" / "contracts" / "ConsentRegistry.json").read_text())
    compiler = artifact["compiler"]
    config = yaml.safe_load((project_dir / "brownie-config.yaml").read_text())["compiler"]
    meminfo = Path("/proc/meminfo").read_text().splitlines() if Path("/proc/meminfo").exists() else []
    mem_kib = next((int(line.split()[1]) for line in meminfo if line.startswith("MemTotal")), 0)
    cpu = ""
    if Path("/proc/cpuinfo").exists():
        cpu = next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            "",
        )
    return {
        "solc": compiler["version"],
        "optimizer": (
            f"enabled, runs = {compiler['optimizer']['runs']}" if compiler["optimizer"]["enabled"] else "disabled"
        ),
        "evm target": str(compiler.get("evm_version")),
        "brownie-config.yaml": (
            f"solc {config['solc']['version']}, optimizer enabled = {config['solc']['optimizer']['enabled']}, "
            f"runs = {config['solc']['optimizer']['runs']}, evm_version = {config['evm_version']}"
        ),
        "node": f"{anvil_version}, hardfork {HARDFORK}, block gas limit {BLOCK_GAS_LIMIT:,}, base fee 0",
        "machine": f"nproc {len(os.sched_getaffinity(0))}, memory {mem_kib / 1024 / 1024:.1f} GiB, "
        f"CPU {cpu or platform.machine()}",
        "system": f"{platform.system()} {platform.release()}, Python {platform.python_version()}",
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def fmt(value: float) -> str:
    return f"{value:,.0f}"


def explain(result: Result, target: int) -> str:
    p = result.parts
    pieces = [f"21,000 base + {p['calldata']:,} calldata", f"{p['SSTORE']:,} SSTORE"]
    if p["calls"]:
        pieces.append(f"{p['calls']:,} calls to other contracts")
    pieces.append(f"{p['SLOAD']:,} SLOAD")
    pieces.append(f"{p['LOG']:,} event")
    pieces.append(f"{p['KECCAK256'] + p['other']:,} other execution")
    if p["refund"]:
        pieces.append(f"-{p['refund']:,} refund")
    over = result.direct - target
    head = f"{'over' if over > 0 else 'under'} by {abs(over):,}"
    return f"{head}: " + ", ".join(pieces)


def reason(name: str, r: Result) -> str:
    """Why an operation costs what it costs, in terms of the contract's storage, calls and events;
    the figures come from the trace breakdown."""
    p = r.parts
    storage = p["SSTORE"] + p["SLOAD"]
    other = p["KECCAK256"] + p["other"]
    fixed = 21_000 + storage
    if name == "register, no parents":
        return (
            f"storage is {storage:,} of it: three new slots (the packed holder/tier/status/classification/embargo/"
            f"block slot, the metadata digest, the subject root; 22,100 each when 0 -> non-zero), the activity digest "
            f"left zero; then {p['calls']:,} for the roles.hasRole check in LedgerRoles, {p['LOG']:,} for the "
            f"DatasetRegistered event with every field, {p['calldata']:,} calldata and {other:,} other execution"
        )
    if name == "consent grant, holder-wide":
        return (
            f"21,000 base plus {storage:,} for writing the consent's one new slot (cold, 0 -> non-zero) is already "
            f"{fixed:,}, so only {50_000 - fixed:,} remain for everything else; the ConsentGiven event alone costs "
            f"{p['LOG']:,} (three indexed topics and six data words: scopeKind, grantee, purposes, diseaseCode, "
            f"expiry, actor), calldata {p['calldata']:,} (seven arguments), checks and ABI decoding {other:,}. "
            "The event is the one cost that can shrink (pack the terms into one word, drop topics and fields "
            "derivable from the others)"
        )
    if name == "consent withdraw":
        return (
            f"21,000 base plus {storage:,} for the consent slot (cold read, then a non-zero -> non-zero write) is "
            f"{fixed:,}; the ConsentWithdrawn event (two indexed topics and the actor) costs {p['LOG']:,}, calldata "
            f"{p['calldata']:,} (four arguments), the rest {other:,}"
        )
    if name == "recordUse, controlled, first use":
        return (
            f"two new slots are written - the dataset's counters and the (dataset, user) first-use flag, {storage:,} "
            f"with reads - so 21,000 + storage is already {fixed:,}, above the target before anything else; then "
            f"{p['calls']:,} for three calls to other registries (datasets.accessInfo, access.isSuspended, "
            f"access.getRequest, which reads three request slots), {p['LOG']:,} for the UseRecorded event, "
            f"{p['calldata']:,} calldata and {other:,} other execution. Counting distinct users on chain is what "
            "makes a first use expensive"
        )
    if name == "recordUse, controlled, repeat use":
        return (
            f"the counters slot is updated (non-zero -> non-zero) and the first-use flag read: {storage:,}; the three "
            f"calls to other registries cost {p['calls']:,}, the event {p['LOG']:,}"
        )
    return ""


# Measured once with `python benchmarks/gas.py --project <copy> --only ...` on a scratch copy of the
# project with the change applied (contracts of commit 5859f4e); kept as text, not re-measured.
PROPOSALS = [
    "Changes that would meet the missed targets (measured on 2026-11-23 on a scratch copy of the contracts of "
    "commit 5859f4e with the change applied, via `benchmarks/gas.py --project`; not part of the contracts):",
    "",
    "- Consent grant and withdrawal: slimmer events. `ConsentGiven(address indexed subject, bytes32 indexed scope, "
    "address indexed grantee, uint256 terms)` with `terms = scopeKind | purposes << 8 | diseaseCode << 72 | "
    "expiry << 104` (the consent id is keccak256(subject, scopeKind, scope, grantee), all in the event), "
    "`ConsentWithdrawn(bytes32 indexed consentId)`, and `ActedByDelegate(bytes32 indexed consentId, address indexed "
    "delegate)` emitted only when a delegate, not the subject, acts. Measured: grant 49,796 (-1,388), withdrawal "
    "29,885 (-633); grantBySig 63,359, withdrawBySig 42,631. Packing the terms and dropping the consent-id topic "
    "alone gives about 50,040 and 30,130: not enough without moving the actor out of the common case.",
    "- Recording a use: keep the use counters out of storage. Without `_stats` and `_hasUsed` (uses and distinct "
    "users counted by the indexer from UseRecorded events, which carry dataset and user) a controlled-tier use "
    "costs 47,698 and an open-tier use 38,056, first or repeat. Keeping only the total-uses counter costs 69,925 "
    "for a dataset's first use (its slot goes 0 -> non-zero) and 52,837 afterwards; the "
    "per-(dataset, user) first-use flag alone costs 22,100 per new user, so no design that counts distinct users "
    "on chain meets 60,000 for a first use.",
]


def render(results: list[Result], env: dict[str, str], sizes: tuple[int, ...]) -> str:
    by_name = {r.op.name: r for r in results}
    lines = [
        "# Gas report",
        "",
        "Generated by `bash scripts/gas_report.sh` (benchmarks/gas.py): the contracts deployed on a fresh anvil, every "
        "operation sent directly by its party and relayed in batches. Figures are gasUsed of the transaction; for a "
        "batch, gasUsed / n per request. Regenerate after any contract or compiler change.",
        "",
        "## Setup",
        "",
        "| item | value |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in env.items()],
        "",
        "## Targets",
        "",
        "| target | limit | measured (direct) | status | where the gas goes |",
        "|---|---:|---:|---|---|",
    ]
    for name, (target, label) in TARGETS.items():
        r = by_name[name]
        status = "met" if r.direct <= target else "**missed**"
        lines.append(f"| {label} | {fmt(target)} | {fmt(r.direct)} | {status} | {explain(r, target)} |")
    lines += ["", "Why these costs:", ""]
    for name, (target, _) in TARGETS.items():
        r = by_name[name]
        verdict = "meets" if r.direct <= target else "misses"
        lines.append(f"- **{name}** {verdict} its target ({fmt(r.direct)} vs {fmt(target)}): {reason(name, r)}.")
    lines += ["", *PROPOSALS]
    relay_cols = " | ".join(f"relayed x{n} (per request)" for n in sizes)
    lines += [
        "",
        "## Every operation",
        "",
        "Direct: sent by the acting party. Relayed: n requests in one transaction by a relayer account, through "
        "LedgerForwarder.executeBatch for forwarded calls, ConsentRegistry.relayBatch for the *BySig messages (whose "
        "direct figure is one grantBySig/... transaction sent by the relayer).",
        "",
        f"| operation | party | direct | {relay_cols} |",
        "|---|---|---:|" + "---:|" * len(sizes),
    ]
    for r in results:
        cells = " | ".join(fmt(r.relayed[n]) for n in sizes)
        name = r.op.name + (f" ({r.op.note})" if r.op.note else "")
        lines.append(f"| {name} | {r.op.party} | {fmt(r.direct)} | {cells} |")
    lines += [
        "",
        "## Where the gas goes (direct transactions)",
        "",
        "From anvil's opcode trace of each direct transaction, at the top call frame: `calls` is the whole cost "
        "of each call into another contract (cold account access, the callee's execution and storage reads); "
        "`other` is the remaining execution (ABI decoding, checks, memory, hashing). The columns add up to gasUsed "
        "plus the refund.",
        "",
        "| operation | gasUsed | calldata | SSTORE | SLOAD | calls | LOG | other | refund |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        p = r.parts
        lines.append(
            f"| {r.op.name} | {fmt(r.direct)} | {fmt(p['calldata'])} | {fmt(p['SSTORE'])} | {fmt(p['SLOAD'])} | "
            f"{fmt(p['calls'])} | {fmt(p['LOG'])} | {fmt(p['KECCAK256'] + p['other'])} | {fmt(p['refund'])} |"
        )
    lines += [
        "",
        "## Notes",
        "",
        "- The dataset-scoped consent grant costs more than the holder-wide one because it calls "
        "DatasetRegistry.accessInfo to check that the dataset exists (a cold account and slot).",
        "- A relayed batch of one costs more than the direct call: the single request pays the whole 21,000 base "
        "and the forwarder's overhead; from ten requests on, the base is shared.",
        "- Relaying costs per request: the forwarder's signature recovery (ecrecover 3,000 plus EIP-712 hashing), the "
        "signer's nonce update, the target's isTrustedForwarder check, the ExecutedForwardRequest event and the "
        "request's own calldata (about 250 more bytes than the direct call, signature included); the 21,000 base "
        "is shared by the batch.",
        "- Institutions sign their own batch (one key, consecutive forwarder nonces: after the first request the "
        "nonce slot is warm); subjects sign one request each (distinct keys: every request pays a cold nonce "
        "update). Every key had already used its forwarder nonce and a consent-nonce bitmap word; a key's very first "
        "request costs about 17,100 more (nonce slot 0 -> 1), as the 'new bitmap word' row shows for signed messages.",
        "- Each request works on its own records (datasets, requests, consents), so a batch does not profit from "
        "another request's warm storage, except the contracts' shared counters (request ids) and, for the "
        "dataset-scoped consent grant, the one dataset all subjects consent to.",
        "",
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- main


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_anvil(tracing: bool) -> None:
    port = free_port()
    settings = CONFIG.networks["development"]
    settings["cmd_settings"] = {
        **(settings.get("cmd_settings") or {}),
        "port": port,
        "gas_limit": BLOCK_GAS_LIMIT,
        "evm_version": HARDFORK,
        "accounts": 10,
        "base_fee": 0,
        # opcode traces (for the breakdown) are kept in memory for every transaction: only in the
        # short tracing run, and pruned to the last few blocks
        "steps_tracing": tracing,
    }
    cmd = "anvil --transaction-block-keeper 8" if tracing else "anvil"
    settings["cmd"] = cmd
    log(f"starting anvil on port {port}{' with opcode tracing' if tracing else ''}")
    connect("development")
    # block timestamps independent of the wall clock (start fixed, +1 s per block): deadlines and
    # expiries, hence signatures and calldata, and so the figures, are the same in every run
    for method, params in (
        ("evm_setNextBlockTimestamp", [START_TIME]),
        ("anvil_setBlockTimestampInterval", [1]),
        ("evm_mine", []),
    ):
        response = web3.provider.make_request(RPCEndpoint(method), params)
        if "error" in response:
            raise RuntimeError(f"{method}: {response['error']}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "gas.md")
    parser.add_argument("--sizes", default=",".join(map(str, BATCH_SIZES)), help="batch sizes, comma-separated")
    parser.add_argument(
        "--only", default="", help="measure only operations whose name contains one of these comma-separated texts"
    )
    parser.add_argument(
        "--project",
        type=Path,
        default=ROOT,
        help="measure another brownie project, e.g. a copy of this one with a proposed contract change "
        "(the report is then written only if --out is given)",
    )
    args = parser.parse_args()
    other_project = args.project.resolve() != ROOT
    if other_project and "--out" not in sys.argv:
        args.out = None
    sizes = tuple(int(s) for s in args.sizes.split(","))
    wanted = [w.strip() for w in args.only.split(",")]
    operations = [op for op in OPERATIONS if any(w in op.name for w in wanted)]

    os.chdir(args.project)
    p = load_project(args.project, name="MedLedgerGas")
    CONFIG.argv["silent"] = True
    anvil_version = subprocess.run(["anvil", "--version"], capture_output=True, text=True).stdout.splitlines()[0]

    # 1. where the gas of each direct transaction goes (opcode traces)
    start_anvil(tracing=True)
    try:
        ledger = deploy(p, 1)
        parts = {op.name: trace_direct(ledger, op) for op in operations}
    finally:
        disconnect()
    # 2. direct and relayed figures, on a node without tracing
    start_anvil(tracing=False)
    try:
        ledger = deploy(p, max(sizes))
        results = [measure(ledger, op, sizes, parts[op.name]) for op in operations]
    finally:
        disconnect()
    if args.only or args.out is None:
        log("report not written (--only, or another --project without --out)")
        return 0
    args.out.write_text(render(results, environment(anvil_version, args.project), sizes))
    log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
