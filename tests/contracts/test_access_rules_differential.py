"""Differential tests: the Python access rules (ledger/rules/access.py) against AccessRegistry,
DatasetRegistry and UsageRegistry.

Hypothesis generates scenarios over a few dataset slots (two holders): registrations (any tier,
embargo ends in the past, at the block's time, in the future, or none), the holder's setSharing
(new tier and embargo end, the current end kept or an overridden end set again), an auditor's
overrideEmbargo, suspension and reinstatement of datasets, retraction, deprecation in favour of
another slot, suspension and reinstatement of users (the holder included), access requests,
approvals, and time steps. Every block's timestamp is pinned with evm_setNextBlockTimestamp, and
each example runs in its own evm_snapshot, reverted afterwards.

Every write is first judged: the access rules (``dataset_usable``, ``requestable``,
``embargo_in_force``, ``override_applies``, ``holder_decides_alone``, ``can_override``) decide the
access-side outcome, a small model of DatasetRegistry the registry-side one (who may change a
record, which status changes are allowed); the prediction is exact, the custom error with its
arguments or success, and the chain must agree byte for byte. After every step, for every slot
(registered or not) one batched set of eth_calls at the latest block compares the rules with the
chain without changing state: ``override_applies`` with ``embargoOverridden``, the record with
``accessInfo``, and the predicted outcome of requestAccess by each user, of overrideEmbargo by the
auditor, of approve and deny of each request by the reviewer, the holder and a stranger,
and of recordUse by the holder and each user, with request id 0 and with each approval.

A fixed scenario runs first: an override made, lapsed by a new embargo end and back with the old
end, around approvals by the reviewer and the holder. RULES_DIFF_EXAMPLES sets the number of
generated examples (default 40); RULES_DIFF_RANDOM=1 draws them at
random instead of from the fixed seed.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from typing import Any, cast

import requests
from brownie import accounts, history, web3
from brownie.exceptions import VirtualMachineError
from brownie.test import given as brownie_given
from chain_helpers import (
    HOLDER_ROLE,
    REVIEWER_ROLE,
    USER_ROLE,
    ZERO32,
    _known_errors,
    addr,
    b32,
    describe_revert,
    encode_error,
    latest_timestamp,
    mine_at,
    revert_data,
    set_next_timestamp,
)
from hexbytes import HexBytes
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from web3 import HTTPProvider
from web3.types import RPCEndpoint

from ledger.core.classification import DatasetStatus, Tier
from ledger.rules import access as rules
from ledger.rules import datause as du

#: brownie's hypothesis ``given`` (it keeps brownie's isolation hooks), which brownie leaves untyped
given = cast(Callable[..., Callable[[Callable[..., None]], Callable[[], None]]], brownie_given)
EXAMPLES = int(os.environ.get("RULES_DIFF_EXAMPLES", "40"))
SLOTS = 4
PURPOSE = du.HMB  # a valid use; requests and uses share it, so an approval covers the use
DIGEST = b32("access-diff-digest")
#: the outcome of a call: None for success, else the exact revert data
Outcome = bytes | None


def _rpc(method: str, params: list[Any] | None = None) -> Any:
    response = web3.provider.make_request(RPCEndpoint(method), params or [])
    if "error" in response:
        raise RuntimeError(f"{method}: {response['error']}")
    return response["result"]


@contextmanager
def _snapshot() -> Iterator[None]:
    snapshot = _rpc("evm_snapshot")
    try:
        yield
    finally:
        _rpc("evm_revert", [snapshot])
        history._revert(web3.eth.block_number)  # brownie's nonces follow its transaction history


@cache
def _error_names() -> dict[bytes, str]:
    return {selector: sig.split("(")[0] for selector, sig in _known_errors().items()}


def _name(outcome: Outcome) -> str:
    return "ok" if outcome is None else _error_names().get(outcome[:4], "0x" + outcome[:4].hex())


# ---------------------------------------------------------------------------------------------- strategies

slot_i = st.integers(0, SLOTS - 1)
tiers = st.sampled_from([Tier.CONTROLLED, Tier.OPEN, Tier.CONTROLLED, Tier.REGISTERED, Tier.CLOSED])
#: embargo ends relative to the next block's time (0: ends at that very time, so not in force);
#: "none" is no embargo, "keep" the current end, "restore" the end an auditor overrode
embargoes = st.sampled_from([3600, "none", 86400, 1, 0, -1, 60, -3600, "keep", "restore"])
user_i = st.integers(0, 2)  # user, second user, the holder of slot 0

registrations = st.tuples(st.just("register"), slot_i, tiers, embargoes)


def approvals() -> st.SearchStrategy[tuple[Any, ...]]:
    return st.tuples(st.just("approve"), st.integers(0, 9), st.integers(0, 5), st.sampled_from([3600, 60, 1, 0]))


steps = st.one_of(
    registrations,
    st.tuples(st.just("sharing"), slot_i, tiers, embargoes, st.integers(0, 7)),  # 7: not the holder
    # overrides go to a dataset under embargo, if there is one, unless the last element is 3
    st.tuples(st.just("override"), slot_i, st.integers(0, 3)),
    st.tuples(st.just("suspend"), slot_i),
    st.tuples(st.just("reinstate"), slot_i),
    st.tuples(st.just("retract"), slot_i),
    st.tuples(st.just("deprecate"), slot_i, slot_i),
    st.tuples(st.just("suspend-user"), user_i),
    st.tuples(st.just("reinstate-user"), user_i),
    # requests go to a controlled dataset, if there is one, unless the last element is 3
    st.tuples(st.just("request"), slot_i, st.integers(0, 1), st.integers(0, 3)),
    st.tuples(st.just("request"), slot_i, st.integers(0, 1), st.integers(0, 3)),  # approvals need them
    # approvals of one of the requests filed (a pending one, if there is one), by the party the
    # rules name as decider, the reviewer, the holder or a stranger
    approvals(),
    approvals(),  # twice as likely (one_of counts a strategy object once)
    st.tuples(st.just("jump"), st.sampled_from([1, 59, 600, 3600, 90000])),
)


# ---------------------------------------------------------------------------------------------- the model


@dataclass
class Slot:
    """What the registries hold for one content root (status NONE: not registered)."""

    root: str
    holder: str
    status: int = DatasetStatus.NONE
    tier: int = Tier.OPEN
    embargo_end: int = 0
    overridden_end: int = 0  # AccessRegistry._overriddenEmbargo
    before_suspension: int = DatasetStatus.NONE
    registered_block: int = 0


@dataclass
class Request:
    id: int
    slot: int
    requester: str
    approved: bool = False
    expiry: int = 0


@dataclass
class Model:
    slots: list[Slot]
    suspended: set[str] = field(default_factory=set)
    requests: list[Request] = field(default_factory=list)


class World:
    """The contracts and parties, and a batched eth_call."""

    def __init__(self, ledger: Any, admin: Any, holder: Any, reviewer: Any, user: Any, auditor: Any) -> None:
        holder2, user2 = accounts[9], accounts[6]
        ledger.roles.grantRole(HOLDER_ROLE, holder2, {"from": admin})
        ledger.roles.grantRole(USER_ROLE, user2, {"from": admin})
        self.ledger = ledger
        self.holders = [holder, holder2]
        self.reviewer, self.auditor, self.stranger = reviewer, auditor, accounts[7]
        self.users = [user, user2, holder]  # suspension targets: the holder of slots 0 and 2 too
        self.requesters = [user, user2]
        self.user_role = {addr(user), addr(user2)}
        self.session = requests.Session()

    def fresh_model(self) -> Model:
        return Model([Slot(b32(f"access-diff-{i}"), addr(self.holders[i % 2])) for i in range(SLOTS)])

    def account(self, address: str) -> Any:
        return accounts.at(address)

    def calls(self, calls: list[tuple[Any, str, str]], block: int) -> tuple[int, list[tuple[bool, str]]]:
        """The timestamp of ``block`` and, for each (contract, sender, calldata), whether the
        eth_call at ``block`` succeeded and its return or revert data; one request."""
        tag = hex(block)
        payload: list[dict[str, Any]] = [
            {"jsonrpc": "2.0", "id": 0, "method": "eth_getBlockByNumber", "params": [tag, False]}
        ]
        payload += [
            {
                "jsonrpc": "2.0",
                "id": i + 1,
                "method": "eth_call",
                "params": [{"to": str(contract), "from": sender, "data": data}, tag],
            }
            for i, (contract, sender, data) in enumerate(calls)
        ]
        response = self.session.post(
            str(cast(HTTPProvider, web3.provider).endpoint_uri), json=payload, timeout=60
        ).json()
        by_id = {r["id"]: r for r in response}
        results = []
        for i in range(len(calls)):
            r = by_id[i + 1]
            if "error" in r:
                assert r["error"].get("code") == 3 and "data" in r["error"], r  # a revert, with its data
                results.append((False, r["error"]["data"]))
            else:
                results.append((True, r["result"]))
        return int(by_id[0]["result"]["timestamp"], 16), results


# ---------------------------------------------------------------------------------------------- predictions


def _dataset_error(s: Slot) -> Outcome:
    """AccessRegistry._usableDataset and UsageRegistry's same checks."""
    if s.status == DatasetStatus.NONE:
        return encode_error("DatasetNotFound(bytes32)", s.root)
    if not rules.dataset_usable(s.status):
        return encode_error("DatasetNotUsable(bytes32,uint8)", s.root, s.status)
    return None


def embargo_holds(s: Slot, now: int) -> bool:
    """An embargo in force that no override covers: only the holder decides."""
    holds = rules.embargo_in_force(s.embargo_end, now) and not rules.override_applies(s.overridden_end, s.embargo_end)
    assert holds == rules.holder_decides_alone(s.embargo_end, s.overridden_end, now)
    return holds


def predict_request(m: Model, s: Slot, user: str) -> Outcome:
    if user in m.suspended:
        return encode_error("UserSuspended(address)", user)
    if rules.requestable(s.status, s.tier):
        return None
    # not requestable: the contract names the reason
    return _dataset_error(s) or encode_error("AccessNotRequestable(bytes32,uint8)", s.root, s.tier)


def _decider_error(w: World, s: Slot, sender: str, now: int) -> Outcome:
    if embargo_holds(s, now):
        return None if sender == s.holder else encode_error("DatasetEmbargoed(bytes32,uint32,address)", *_embargo(s))
    if sender != addr(w.reviewer):
        return encode_error("MissingRole(bytes32,address)", REVIEWER_ROLE, sender)
    return None


def _embargo(s: Slot) -> tuple[str, int, str]:
    return s.root, s.embargo_end, s.holder


def predict_approve(w: World, m: Model, r: Request, sender: str, expiry: int, now: int) -> Outcome:
    s = m.slots[r.slot]
    if r.approved:
        return encode_error("InvalidRequestStatus(uint256,uint8)", r.id, 2)
    error = _dataset_error(s) or _decider_error(w, s, sender, now)
    if error is not None:
        return error
    if r.requester in m.suspended:
        return encode_error("UserSuspended(address)", r.requester)
    if expiry <= now:
        return encode_error("ExpiryNotInFuture(uint40,uint256)", expiry, now)
    return None


def predict_deny(w: World, m: Model, r: Request, sender: str, now: int) -> Outcome:
    """deny: the same deciders, on unusable datasets too."""
    if r.approved:
        return encode_error("InvalidRequestStatus(uint256,uint8)", r.id, 2)
    return _decider_error(w, m.slots[r.slot], sender, now)


def predict_override(m: Model, s: Slot, now: int) -> Outcome:
    error = _dataset_error(s)
    if error is not None:
        return error
    if not rules.can_override(s.embargo_end, s.overridden_end, now):
        return encode_error("NotEmbargoed(bytes32)", s.root)
    return None


def predict_use(w: World, m: Model, s: Slot, user: str, request_id: int, now: int) -> Outcome:
    error = _dataset_error(s)
    if error is not None:
        return error
    if user in m.suspended:
        return encode_error("UserSuspended(address)", user)
    if user == s.holder or s.tier in (Tier.OPEN, Tier.REGISTERED):
        if request_id != 0:
            return encode_error("UnexpectedRequestId(uint256)", request_id)
        if user != s.holder and s.tier == Tier.REGISTERED and user not in w.user_role:
            return encode_error("MissingRole(bytes32,address)", USER_ROLE, user)
        return None
    if s.tier == Tier.CONTROLLED:
        r = next((r for r in m.requests if r.id == request_id), None)
        if r is None or r.requester != user or m.slots[r.slot] is not s or not r.approved or r.expiry <= now:
            return encode_error("NoApproval(bytes32,address,uint256)", s.root, user, request_id)
        return None
    return encode_error("DatasetNotShared(bytes32)", s.root)


# ---------------------------------------------------------------------------------------------- a scenario


@dataclass
class Run:
    world: World
    outcomes: Counter[str]
    model: Model
    now: int = field(default_factory=latest_timestamp)

    def send(self, name: str, expected: Outcome, fn: Any, *args: Any) -> Any:
        """Send a write whose outcome was predicted at the next block's time; its transaction if it
        went through, else None."""
        self.now += 1
        set_next_timestamp(self.now)
        self.outcomes[f"write {name}:{_name(expected)}"] += 1
        before = web3.eth.block_number
        try:
            tx = fn(*args)
        except VirtualMachineError as exc:
            got = revert_data(exc)
            assert expected is not None, f"{name}{args[:-1]} reverted {describe_revert(got)}; predicted success"
            assert got == expected, f"{name}{args[:-1]}: {describe_revert(got)}, predicted {describe_revert(expected)}"
            # brownie may broadcast the refused transaction (a reverted block at `now`) or stop at
            # its gas estimate (no block; the estimate ran at the pinned time)
            if web3.eth.block_number == before:
                self.now -= 1
            return None
        assert expected is None, f"{name}{args[:-1]} went through; predicted {describe_revert(expected)}"
        assert tx.timestamp == self.now
        return tx

    def step(self, step: tuple[Any, ...]) -> None:
        w, m, kind = self.world, self.model, step[0]
        t = self.now + 1  # the next block's timestamp
        d, a = w.ledger.datasets, w.ledger.access
        if kind == "jump":
            self.now += step[1]
            mine_at(self.now)
            return
        if kind in ("suspend-user", "reinstate-user"):
            u = addr(w.users[step[1]])
            if kind == "suspend-user":
                expected = encode_error("UserSuspended(address)", u) if u in m.suspended else None
                if self.send(kind, expected, a.suspendUser, u, DIGEST, {"from": w.auditor}):
                    m.suspended.add(u)
            else:
                expected = None if u in m.suspended else encode_error("UserNotSuspended(address)", u)
                if self.send(kind, expected, a.reinstateUser, u, {"from": w.auditor}):
                    m.suspended.discard(u)
            return
        if kind == "approve":
            self.approve(step, t)
            return
        if kind in ("request", "override") and step[-1] != 3:
            if kind == "request":
                targets = [i for i, x in enumerate(m.slots) if x.status and x.tier == Tier.CONTROLLED]
            else:
                targets = [i for i, x in enumerate(m.slots) if rules.embargo_in_force(x.embargo_end, t)]
            step = (kind, targets[step[1] % len(targets)] if targets else step[1], *step[2:])
        s = m.slots[step[1]]
        not_found = encode_error("DatasetNotFound(bytes32)", s.root) if s.status == DatasetStatus.NONE else None
        holder = w.account(s.holder)
        if kind == "register":
            end = self.embargo_end(s, step[3], t, register=True)
            expected = (
                None
                if s.status == DatasetStatus.NONE
                else encode_error(
                    "DatasetAlreadyRegistered(bytes32,address,uint256)", s.root, s.holder, s.registered_block
                )
            )
            args = (s.root, DIGEST, [], ZERO32, step[2], 11, end, ZERO32, {"from": holder})
            tx = self.send(kind, expected, d.register, *args)
            if tx:
                s.status, s.tier, s.embargo_end = DatasetStatus.ACTIVE, step[2], end
                s.registered_block = tx.block_number
        elif kind == "sharing":
            end = self.embargo_end(s, step[3], t)
            sender = w.account(s.holder) if step[4] != 7 else next(h for h in w.holders if addr(h) != s.holder)
            expected = not_found
            if expected is None and addr(sender) != s.holder:
                expected = encode_error("NotDatasetHolder(bytes32,address,address)", s.root, addr(sender), s.holder)
            if expected is None and s.status == DatasetStatus.RETRACTED:
                expected = encode_error("InvalidStatus(bytes32,uint8)", s.root, s.status)
            if self.send(kind, expected, d.setSharing, s.root, step[2], end, {"from": sender}):
                if end != s.embargo_end and rules.override_applies(s.overridden_end, end):
                    self.outcomes["write sharing:an overridden end set again"] += 1
                s.tier, s.embargo_end = step[2], end
        elif kind == "override":
            expected = predict_override(m, s, t)
            if self.send(kind, expected, a.overrideEmbargo, s.root, DIGEST, {"from": w.auditor}):
                s.overridden_end = s.embargo_end
        elif kind == "suspend":
            expected = not_found
            if expected is None and s.status not in (DatasetStatus.ACTIVE, DatasetStatus.DEPRECATED):
                expected = encode_error("InvalidStatus(bytes32,uint8)", s.root, s.status)
            if self.send(kind, expected, d.suspend, s.root, DIGEST, {"from": w.auditor}):
                s.before_suspension, s.status = s.status, DatasetStatus.SUSPENDED
        elif kind == "reinstate":
            expected = not_found
            if expected is None and s.status != DatasetStatus.SUSPENDED:
                expected = encode_error("InvalidStatus(bytes32,uint8)", s.root, s.status)
            if self.send(kind, expected, d.reinstate, s.root, {"from": w.auditor}):
                s.status, s.before_suspension = s.before_suspension, DatasetStatus.NONE
        elif kind == "retract":
            expected = not_found
            if expected is None and s.status == DatasetStatus.RETRACTED:
                expected = encode_error("InvalidStatus(bytes32,uint8)", s.root, s.status)
            if self.send(kind, expected, d.retract, s.root, DIGEST, {"from": holder}):
                s.status = DatasetStatus.RETRACTED
        elif kind == "deprecate":
            successor = m.slots[step[2]]
            expected = not_found
            if expected is None and s.status != DatasetStatus.ACTIVE:
                expected = encode_error("InvalidStatus(bytes32,uint8)", s.root, s.status)
            if expected is None and (successor is s or successor.status != DatasetStatus.ACTIVE):
                expected = encode_error("InvalidSuccessor(bytes32,bytes32)", s.root, successor.root)
            if self.send(kind, expected, d.deprecate, s.root, successor.root, {"from": holder}):
                s.status = DatasetStatus.DEPRECATED
        elif kind == "request":
            user = w.requesters[step[2]]
            expected = predict_request(m, s, addr(user))
            args = (s.root, PURPOSE, 0, DIGEST, {"from": user})
            if self.send(kind, expected, a.requestAccess, *args):
                m.requests.append(Request(len(m.requests) + 1, step[1], addr(user)))
        else:  # pragma: no cover
            raise AssertionError(step)

    def approve(self, step: tuple[Any, ...], t: int) -> None:
        w, m = self.world, self.model
        a = w.ledger.access
        if not m.requests:
            request_id = step[1] + 1
            expected: Outcome = encode_error("RequestNotFound(uint256)", request_id)
            self.send("approve", expected, a.approve, request_id, DIGEST, t + step[3], {"from": w.reviewer})
            return
        pending = [r for r in m.requests if not r.approved] or m.requests
        r = pending[step[1] % len(pending)]
        s = m.slots[r.slot]
        decider = w.account(s.holder) if embargo_holds(s, t) else w.reviewer
        sender = [decider, decider, decider, w.reviewer, w.account(s.holder), w.stranger][step[2]]
        expiry = t + step[3]
        expected = predict_approve(w, m, r, addr(sender), expiry, t)
        if self.send("approve", expected, a.approve, r.id, DIGEST, expiry, {"from": sender}):
            r.approved, r.expiry = True, expiry

    def embargo_end(self, s: Slot, choice: Any, t: int, register: bool = False) -> int:
        if choice == "none" or (register and choice in ("keep", "restore")):
            return 0
        if choice == "keep":
            return s.embargo_end
        if choice == "restore":  # set an overridden end again: the override holds again
            return s.overridden_end
        return int(t + choice)

    def check(self) -> None:
        """For every slot: the rules' answers at the latest block equal the chain's."""
        w, m, now = self.world, self.model, self.now
        a, d, u = w.ledger.access, w.ledger.datasets, w.ledger.usage
        reviewer, stranger, auditor = addr(w.reviewer), addr(w.stranger), addr(w.auditor)
        requesters = [addr(x) for x in w.requesters]
        calls: list[tuple[Any, str, str]] = []
        expected: list[tuple[str, Slot, Outcome]] = []

        def probe(label: str, s: Slot, contract: Any, sender: str, data: str, outcome: Outcome = None) -> None:
            calls.append((contract, sender, data))
            expected.append((label, s, outcome))

        for s in m.slots:
            probe("embargoOverridden", s, a, reviewer, a.embargoOverridden.encode_input(s.root))
            probe("accessInfo", s, d, reviewer, d.accessInfo.encode_input(s.root))
            for user in requesters:
                data = a.requestAccess.encode_input(s.root, PURPOSE, 0, DIGEST)
                probe("requestAccess", s, a, user, data, predict_request(m, s, user))
            data = a.overrideEmbargo.encode_input(s.root, DIGEST)
            probe("overrideEmbargo", s, a, auditor, data, predict_override(m, s, now))
            for user in dict.fromkeys([s.holder, *requesters, stranger]):
                data = u.recordUse.encode_input(s.root, 0, PURPOSE, 0, DIGEST)
                probe("recordUse", s, u, user, data, predict_use(w, m, s, user, 0, now))
        for r in m.requests:
            s = m.slots[r.slot]
            for sender in (reviewer, s.holder, stranger):
                data = a.approve.encode_input(r.id, DIGEST, now + 3600)
                probe("approve", s, a, sender, data, predict_approve(w, m, r, sender, now + 3600, now))
                data = a.deny.encode_input(r.id, DIGEST)
                probe("deny", s, a, sender, data, predict_deny(w, m, r, sender, now))
            if r.approved:
                for user in requesters:
                    for other in m.slots:
                        data = u.recordUse.encode_input(other.root, r.id, PURPOSE, 0, DIGEST)
                        outcome = predict_use(w, m, other, user, r.id, now)
                        probe("recordUse(approval)", other, u, user, data, outcome)

        timestamp, results = w.calls(calls, web3.eth.block_number)
        assert timestamp == now
        for (label, s, outcome), (_, sender, _), (ok, data) in zip(expected, calls, results, strict=True):
            if label == "embargoOverridden":
                assert ok, data
                got = bool(a.embargoOverridden.decode_output(data))
                want = rules.override_applies(s.overridden_end, s.embargo_end)
                assert got == want, f"embargoOverridden({s.root}) = {got}, rules {want}: {s}"
                self.outcomes[f"check embargoOverridden:{got}"] += 1
            elif label == "accessInfo":  # the model of the registry follows the chain
                assert ok, data
                holder, tier, status, end = d.accessInfo.decode_output(data)
                got_record = (int(status), int(tier), int(end)) + ((addr(holder),) if s.status else ())
                want_record = (s.status, s.tier if s.status else 0, s.embargo_end) + ((s.holder,) if s.status else ())
                assert got_record == want_record, s
            else:
                got_outcome: Outcome = None if ok else bytes(HexBytes(data))
                assert got_outcome == outcome, (
                    f"{label} by {sender} at {now}: chain {describe_revert(got_outcome) if got_outcome else 'ok'},"
                    f" rules {describe_revert(outcome) if outcome else 'ok'}; {s}; model {m}"
                )
                self.outcomes[f"check {label}:{_name(outcome)}"] += 1


# ---------------------------------------------------------------------------------------------- the test


def test_access_rules_equal_the_registries(
    ledger: Any, admin: Any, holder: Any, reviewer: Any, user: Any, auditor: Any
) -> None:
    world = World(ledger, admin, holder, reviewer, user, auditor)
    outcomes: Counter[str] = Counter()

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=os.environ.get("RULES_DIFF_RANDOM", "") != "1",
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(
        st.lists(registrations, min_size=2, max_size=SLOTS, unique_by=lambda r: r[1]),  # datasets first, to act on
        st.lists(steps, min_size=3, max_size=16),
    )
    def scenario(first: list[tuple[Any, ...]], then: list[tuple[Any, ...]]) -> None:
        play(first + then)

    def play(plan: list[tuple[Any, ...]]) -> None:
        with _snapshot():
            run = Run(world, outcomes, world.fresh_model())
            run.check()
            for step in plan:
                run.step(step)
                run.check()

    # the override's life, whatever the draws: made, lapsed by a new end, back with the old one
    play(
        [
            ("register", 0, Tier.CONTROLLED, 3600),
            ("register", 1, Tier.CONTROLLED, "none"),
            ("request", 0, 0, 3),
            ("request", 0, 1, 3),
            ("approve", 0, 3, 3600),  # the reviewer, under embargo: refused
            ("override", 0, 3),
            ("approve", 0, 3, 3600),  # the reviewer, overridden: accepted
            ("sharing", 0, Tier.CONTROLLED, 86400, 0),  # a new end: the override lapses
            ("approve", 0, 4, 3600),  # the holder decides alone again
            ("sharing", 0, Tier.CONTROLLED, "restore", 0),  # the overridden end again: overridden
            ("suspend-user", 0),
            ("suspend", 0),
            ("reinstate", 0),
            ("deprecate", 0, 1),
            ("jump", 3600),  # the embargo has ended
            ("override", 0, 3),
            ("retract", 0),
        ]
    )
    scenario()
    print("access rules differential outcomes:", dict(sorted(outcomes.items())))
    checks = sum(v for k, v in outcomes.items() if k.startswith("check "))
    writes = sum(v for k, v in outcomes.items() if k.startswith("write "))
    print(f"access rules differential: {checks} comparisons, {writes} predicted writes")
    for required in (
        "check embargoOverridden:True",
        "check approve:DatasetEmbargoed",
        "check approve:ok",
        "check approve:DatasetNotUsable",
        "check requestAccess:ok",
        "check requestAccess:DatasetNotUsable",
        "check requestAccess:UserSuspended",
        "check recordUse:ok",
        "check recordUse(approval):ok",
        "check recordUse(approval):NoApproval",
        "check recordUse:DatasetNotUsable",
        "check recordUse:UserSuspended",
        "write override:ok",
        "write override:NotEmbargoed",
        "write approve:ok",
        "write sharing:an overridden end set again",
    ):
        assert outcomes[required] > 0, f"no {required} in {dict(outcomes)}"
