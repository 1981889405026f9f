"""Differential tests: the Python consent rules (ledger/rules/consent.py) against ConsentRegistry.

Hypothesis generates scenarios: consents (holder-wide and dataset-scoped, to anyone or to one
grantee, random DUO permissions and modifiers, DS with disease codes), given by the subject or a
delegate, renewals, withdrawals, delegate appointments and revocations, and time jumps. Every write
is first judged by the rules (who may act, purposes, scope shape, expiry, the state a renewal or
withdrawal needs); a write they refuse must revert, the others must go through. The rules' state
is rebuilt only from the events the chain emitted (``rules.replay``). After every step, for every
query of a generated set (subjects, datasets including an unregistered one, uses with attributes
and diseases, malformed uses, grantees), the rules' answer equals ``isInForce`` at the latest
block; at the end of a scenario the replay up to each earlier block equals ``isInForce`` at that
block (anvil keeps historical state). Every block's timestamp is pinned with
evm_setNextBlockTimestamp, and each example runs in its own evm_snapshot, reverted afterwards.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, cast

import requests
from brownie import accounts, history, web3
from brownie.exceptions import VirtualMachineError
from brownie.test import given as brownie_given
from chain_helpers import HOLDER_ROLE, ZERO_ADDRESS, addr, b32, latest_timestamp, mine_at, set_next_timestamp
from eth_utils.address import to_checksum_address
from hexbytes import HexBytes
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from web3 import HTTPProvider
from web3.types import RPCEndpoint

from ledger.core.errors import InvalidInput
from ledger.core.records import ScopeKind
from ledger.history.sources import ConsentEvent, ConsentEventKind
from ledger.rules import consent as rules
from ledger.rules import datause as du

#: brownie's hypothesis ``given`` (it keeps brownie's isolation hooks), which brownie leaves untyped
given = cast(Callable[..., Callable[[Callable[..., None]], Callable[[], None]]], brownie_given)
EXAMPLES = int(os.environ.get("RULES_DIFF_EXAMPLES", "20"))
PERMISSION_BITS = (du.NRES, du.GRU, du.HMB, du.DS, du.POA)
MODIFIER_BITS = (du.NCU, du.NPU, du.IRB, du.PUB, du.GSO, du.COL, du.RTN, du.NMDS)
ATTRIBUTE_BITS = tuple(du.USE_ATTRIBUTE_NAMES.values())
DISEASES = (5148, 7254)
#: malformed uses: never in force
BAD_USES = [(du.DS, 0), (du.NRES, 0), (du.HMB | du.POA, 0), (du.GRU, 5148), (du.HMB | du.NCU, 0)]


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


# ---------------------------------------------------------------------------------------------- strategies


def _bits(choices: tuple[int, ...], min_size: int = 0) -> st.SearchStrategy[int]:
    return st.lists(st.sampled_from(choices), unique=True, min_size=min_size, max_size=3).map(lambda xs: sum(xs, 0))


@st.composite
def grant_terms(draw: st.DrawFn) -> tuple[int, int]:
    """Mostly valid grants, sometimes malformed ones (a modifier alone, DS without a disease or a
    disease without DS). Hypothesis shrinks towards the first choices: they are the valid ones."""
    mask = draw(_bits(PERMISSION_BITS, min_size=1)) | draw(_bits(MODIFIER_BITS))
    disease = draw(st.sampled_from(DISEASES)) if mask & du.DS else 0
    malformed = draw(st.integers(0, 9))
    if malformed == 8:
        mask &= ~du.PERMISSIONS
    elif malformed == 9:
        disease = 0 if disease else DISEASES[0]
    return mask, disease


@st.composite
def uses(draw: st.DrawFn) -> tuple[int, int]:
    category = draw(st.sampled_from((du.GRU, du.HMB, du.DS, du.POA)))
    attributes = draw(st.lists(st.sampled_from(ATTRIBUTE_BITS), unique=True, max_size=3).map(lambda xs: sum(xs, 0)))
    return category | attributes, draw(st.sampled_from(DISEASES)) if category == du.DS else 0


subject_i = st.integers(0, 1)
grantee_i = st.integers(0, 2)
offset = st.sampled_from([3600, 60, 1, 86400, 600, 0, -5])  # the last two are refused

grants = st.tuples(
    st.just("grant"), subject_i, st.booleans(), st.integers(0, 5), grantee_i, grant_terms(), offset
)  # scope 5: malformed
steps = st.one_of(
    grants,
    grants,  # twice as likely: most other steps need a consent or a delegate to act on
    # renewals and withdrawals pick one of the consents given so far (any key when none was)
    st.tuples(st.just("renew"), st.integers(0, 29), st.booleans(), offset),
    st.tuples(st.just("withdraw"), st.integers(0, 29), st.booleans()),
    st.tuples(st.just("appoint"), subject_i, st.integers(0, 2), offset),
    st.tuples(st.just("revoke"), subject_i, st.integers(0, 2)),
    st.tuples(st.just("jump"), st.sampled_from([1, 59, 600, 3600, 90000])),
)


# ---------------------------------------------------------------------------------------------- the world


class World:
    """The accounts, scopes and datasets of the scenarios, and a batched eth_call."""

    def __init__(self, ledger: Any, register: Any, admin: Any, holder: Any) -> None:
        holder2 = accounts[9]
        ledger.roles.grantRole(HOLDER_ROLE, holder2, {"from": admin})
        d1, d2, d3 = register(holder), register(holder), register(holder2)
        self.consent = ledger.consent
        self.subjects = [accounts[5], accounts[7]]
        self.delegates = [accounts[6], accounts[3], accounts[7]]  # accounts[7] is also a subject
        self.grantees = [ZERO_ADDRESS, addr(accounts[3]), addr(accounts[8])]
        self.holders = {d1: addr(holder), d2: addr(holder), d3: addr(holder2)}
        self.datasets = [d1, d2, d3, b32("never-registered")]
        self.scopes: list[tuple[ScopeKind, bytes]] = [
            (ScopeKind.HOLDER, rules.holder_scope(addr(holder))),
            (ScopeKind.HOLDER, rules.holder_scope(addr(holder2))),
            (ScopeKind.DATASET, bytes(HexBytes(d1))),
            (ScopeKind.DATASET, bytes(HexBytes(d2))),
            (ScopeKind.DATASET, bytes(HexBytes(d3))),
            (ScopeKind.HOLDER, b"\x01" + rules.holder_scope(addr(holder))[1:]),  # not an address
        ]
        self.session = requests.Session()

    def calls(self, datas: list[str], block: int) -> tuple[int, list[str]]:
        """The timestamp of ``block`` and eth_call results on the consent registry, one request."""
        tag = hex(block)
        payload: list[dict[str, Any]] = [
            {"jsonrpc": "2.0", "id": 0, "method": "eth_getBlockByNumber", "params": [tag, False]}
        ]
        payload += [
            {"jsonrpc": "2.0", "id": i + 1, "method": "eth_call", "params": [{"to": str(self.consent), "data": d}, tag]}
            for i, d in enumerate(datas)
        ]
        response = self.session.post(
            str(cast(HTTPProvider, web3.provider).endpoint_uri), json=payload, timeout=60
        ).json()
        by_id = {r["id"]: r for r in response}
        assert all("error" not in r for r in by_id.values()), response
        return int(by_id[0]["result"]["timestamp"], 16), [by_id[i + 1]["result"] for i in range(len(datas))]


def _event(kind: ConsentEventKind, tx: Any, args: Any) -> ConsentEvent:
    """A brownie event as the history layer's ConsentEvent (one write, one event per transaction)."""
    a = dict(args)
    common: dict[str, Any] = {
        "kind": kind,
        "block": tx.block_number,
        "log_index": 0,
        "tx_hash": str(tx.txid),
        "subject": to_checksum_address(str(a["subject"])),
    }
    if "consentId" in a:
        common["consent_id"] = bytes(HexBytes(a["consentId"]))
    if kind is ConsentEventKind.GIVEN:
        common |= {
            "scope_kind": ScopeKind(int(a["scopeKind"])),
            "scope": bytes(HexBytes(a["scope"])),
            "grantee": to_checksum_address(str(a["grantee"])),
            "purposes": int(a["purposes"]),
            "disease": int(a["diseaseCode"]),
        }
    if "expiry" in a:
        common["expiry"] = int(a["expiry"])
    if "actor" in a:
        common["actor"] = to_checksum_address(str(a["actor"]))
    if "delegate" in a:
        common["delegate"] = to_checksum_address(str(a["delegate"]))
    return ConsentEvent(**common)


EVENT_NAMES = {
    "ConsentGiven": ConsentEventKind.GIVEN,
    "ConsentRenewed": ConsentEventKind.RENEWED,
    "ConsentWithdrawn": ConsentEventKind.WITHDRAWN,
    "DelegateAppointed": ConsentEventKind.DELEGATE_APPOINTED,
    "DelegateRevoked": ConsentEventKind.DELEGATE_REVOKED,
}


@dataclass
class Run:
    """One scenario: the chain's events so far, and the clock the rules know."""

    world: World
    outcomes: Counter[str]
    now: int = field(default_factory=latest_timestamp)
    events: list[ConsentEvent] = field(default_factory=list)
    blocks: list[int] = field(default_factory=list)

    def state(self) -> rules.RegistryState[ConsentEvent]:
        return rules.replay(self.events)

    def send(self, name: str, allowed: bool, fn: Any, *args: Any) -> None:
        """Send a write whose outcome the rules predicted; record its events."""
        self.now += 1
        set_next_timestamp(self.now)
        if not allowed:
            self.outcomes[f"{name}:refused"] += 1
            before = web3.eth.block_number
            try:
                fn(*args)
            except VirtualMachineError:
                # brownie may broadcast the refused transaction (a reverted block at `now`) or stop
                # at its gas estimate (no block)
                if web3.eth.block_number == before:
                    self.now -= 1
                else:
                    self.blocks.append(web3.eth.block_number)
                return
            raise AssertionError(f"{name}{args[:-1]} went through; the rules refuse it")
        tx = fn(*args)
        assert tx.timestamp == self.now
        self.outcomes[f"{name}:ok"] += 1
        for event_name, kind in EVENT_NAMES.items():
            if event_name in tx.events:  # brownie's EventDict has no .get
                self.events += [_event(kind, tx, ev) for ev in tx.events[event_name]]
        self.blocks.append(tx.block_number)

    def sender(self, subject: Any, by_delegate: bool, state: rules.RegistryState[ConsentEvent]) -> Any:
        """The subject, or a delegate: one in force at the next block if there is one, else any."""
        if not by_delegate:
            return subject
        for d in self.world.delegates:
            if d != subject and state.may_act(addr(subject), addr(d), self.now + 1):
                return d
        return self.world.delegates[0] if subject != self.world.delegates[0] else self.world.delegates[1]

    def step(self, step: tuple[Any, ...]) -> None:
        w, state, kind = self.world, self.state(), step[0]
        if kind == "jump":
            self.now += step[1]
            self.blocks.append(mine_at(self.now))
            return
        t = self.now + 1  # the next block's timestamp
        if kind in ("renew", "withdraw"):
            self.renew_or_withdraw(state, step, t)
            return
        subject = w.subjects[step[1]]
        if kind in ("appoint", "revoke"):
            delegate = w.delegates[step[2]]
            if kind == "appoint":
                expiry = t + step[3]
                allowed = _accepts(rules.check_delegate, addr(subject), addr(delegate)) and _accepts(
                    rules.check_expiry, expiry, t
                )
                self.send(kind, allowed, w.consent.appointDelegate, delegate, expiry, {"from": subject})
            else:
                allowed = state.delegate_expiry(addr(subject), addr(delegate)) != 0
                self.send(kind, allowed, w.consent.revokeDelegate, delegate, {"from": subject})
            return
        sender = self.sender(subject, step[2], state)
        scope_kind, scope = w.scopes[step[3]]
        grantee = w.grantees[step[4]]
        (purposes, disease), expiry = step[5], t + step[6]
        allowed = (
            state.may_act(addr(subject), addr(sender), t)
            and _accepts(rules.check_grant, purposes, disease, scope_kind, scope)
            and _accepts(rules.check_expiry, expiry, t)
        )
        key = (subject, int(scope_kind), "0x" + scope.hex(), grantee)
        self.send(kind, allowed, w.consent.grant, *key, purposes, disease, expiry, {"from": sender})

    def renew_or_withdraw(self, state: rules.RegistryState[ConsentEvent], step: tuple[Any, ...], t: int) -> None:
        w, kind, pick = self.world, step[0], step[1]
        given = list(state.consents.values())
        if given:
            c = given[pick % len(given)]
            subject, scope_kind, scope, grantee = accounts.at(c.subject), c.scope_kind, c.scope, c.grantee
        else:
            subject, grantee = w.subjects[pick % 2], w.grantees[pick % 3]
            scope_kind, scope = w.scopes[pick % 5]
        sender = self.sender(subject, step[2], state)
        current = state.consent(rules.consent_id(addr(subject), scope_kind, scope, grantee))
        allowed = (
            state.may_act(addr(subject), addr(sender), t) and current is not None and rules.is_active(current.state)
        )
        key = (subject, int(scope_kind), "0x" + scope.hex(), grantee)
        if kind == "renew":
            print("RENEW", len(given), current, addr(sender) == addr(subject), step)
            expiry = t + step[3]
            allowed = allowed and _accepts(rules.check_expiry, expiry, t)
            self.send(kind, allowed, w.consent.renew, *key, expiry, {"from": sender})
        else:
            self.send(kind, allowed, w.consent.withdraw, *key, {"from": sender})

    def check(self, queries: list[tuple[int, int]], block: int | None = None) -> None:
        """The rules' answers (state replayed up to ``block``) equal isInForce at ``block``."""
        w = self.world
        at = block if block is not None else web3.eth.block_number
        state = rules.replay(self.events, at)
        calls, expected = [], []
        subjects = [addr(s) for s in w.subjects]
        for dataset in w.datasets:
            holder = w.holders.get(dataset)
            raw = bytes(HexBytes(dataset))
            for use, disease in queries:
                for grantee in w.grantees:
                    calls.append(w.consent.inForceBatch.encode_input(subjects, dataset, use, disease, grantee))
                    expected.append((raw, holder, use, disease, grantee))
        for s in subjects:
            for d in w.delegates:
                calls.append(w.consent.delegateExpiry.encode_input(s, d))
        timestamp, results = w.calls(calls, at)
        if block is None:
            assert timestamp == self.now
        n = len(expected)
        for (raw, holder, use, disease, grantee), result in zip(expected, results[:n], strict=True):
            got = [bool(x) for x in w.consent.inForceBatch.decode_output(result)]
            want = [state.is_in_force(s, raw, holder, (use, disease), timestamp, grantee) for s in subjects]
            assert got == want, f"block {at}: isInForce{(raw.hex(), hex(use), disease, grantee)} {got}, rules {want}"
            self.outcomes["check:in-force" if any(got) else "check:none"] += 1
        delegate_results = iter(results[n:])
        for s in subjects:
            for d in w.delegates:
                got_expiry = int(w.consent.delegateExpiry.decode_output(next(delegate_results)))
                assert got_expiry == state.delegate_expiry(s, addr(d))
                if addr(d) != s:
                    assert rules.delegate_in_force(got_expiry, timestamp) == state.may_act(s, addr(d), timestamp)


def _accepts(check: Any, *args: Any) -> bool:
    try:
        check(*args)
    except InvalidInput:
        return False
    return True


# ---------------------------------------------------------------------------------------------- the test


def test_consent_rules_equal_the_registry(ledger: Any, register: Any, admin: Any, holder: Any) -> None:
    world = World(ledger, register, admin, holder)
    outcomes: Counter[str] = Counter()

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=os.environ.get("RULES_DIFF_RANDOM", "") != "1",
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(
        st.lists(grants, min_size=1, max_size=4),  # a few consents first, for the other steps to act on
        st.lists(steps, min_size=2, max_size=12),
        st.lists(uses(), min_size=1, max_size=4, unique=True),
    )
    def scenario(first: list[tuple[Any, ...]], then: list[tuple[Any, ...]], drawn_uses: list[tuple[int, int]]) -> None:
        plan = first + then
        queries = sorted({(du.HMB, 0), (du.DS, DISEASES[0]), (du.POA, 0), (du.GRU, 0), *drawn_uses}) + BAD_USES
        with _snapshot():
            run = Run(world, outcomes)
            for step in plan:
                run.step(step)
                run.check(queries)
            for block in run.blocks[:-1]:
                run.check(queries, block)

    scenario()
    print("consent rules differential outcomes:", dict(sorted(outcomes.items())))
    for required in ("grant:ok", "grant:refused", "renew:ok", "withdraw:ok", "appoint:ok", "check:in-force"):
        assert outcomes[required] > 0, f"no {required} in {dict(outcomes)}"
