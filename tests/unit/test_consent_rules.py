"""The consent rules (ledger/rules/consent.py) without a node: consent ids, the candidates
``_inForce`` checks, in force at a time, the replay of an event history, delegate authority and
the offline checks of signed messages."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from eth_abi.abi import encode
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from hypothesis import given
from hypothesis import strategies as st

from ledger.core.errors import InvalidInput
from ledger.core.records import ZERO32, ZERO_ADDRESS, ConsentState, ScopeKind
from ledger.history.sources import ConsentEvent, ConsentEventKind
from ledger.rules import consent as rules
from ledger.rules import datause as du

SUBJECT = to_checksum_address("0x" + "11" * 20)
HOLDER = to_checksum_address("0x" + "22" * 20)
USER = to_checksum_address("0x" + "33" * 20)
DELEGATE = to_checksum_address("0x" + "44" * 20)
DATASET = bytes.fromhex("ab" * 32)
HMB = du.Purpose(du.HMB)
T = 1_000_000

addresses = st.binary(min_size=20, max_size=20).map(lambda b: to_checksum_address(b))


@given(addresses, st.sampled_from(list(ScopeKind)), st.binary(min_size=32, max_size=32), addresses)
def test_consent_id_is_the_contracts_abi_encoding(subject: str, kind: ScopeKind, scope: bytes, grantee: str) -> None:
    encoded = encode(["address", "uint8", "bytes32", "address"], [subject, int(kind), scope, grantee])
    assert rules.consent_id(subject, kind, scope, grantee) == keccak(encoded)


def test_consent_id_defaults_to_anyone_and_checks_addresses() -> None:
    assert rules.consent_id(SUBJECT, ScopeKind.DATASET, DATASET) == rules.consent_id(
        SUBJECT.lower(), ScopeKind.DATASET, DATASET, ZERO_ADDRESS
    )
    with pytest.raises(InvalidInput, match="subject 'nope' is not an Ethereum address"):
        rules.consent_id("nope", ScopeKind.DATASET, DATASET)
    with pytest.raises(InvalidInput, match="scope must be 32 bytes"):
        rules.consent_id(SUBJECT, ScopeKind.DATASET, b"short")


def test_holder_scope_is_the_left_padded_address() -> None:
    assert rules.holder_scope(HOLDER.lower()) == bytes(12) + bytes.fromhex(HOLDER[2:])


def test_candidates_in_the_contracts_order() -> None:
    scope = rules.holder_scope(HOLDER)
    anyone = [rules.consent_id(SUBJECT, ScopeKind.DATASET, DATASET), rules.consent_id(SUBJECT, ScopeKind.HOLDER, scope)]
    assert rules.candidate_ids(SUBJECT, DATASET, HOLDER) == anyone
    assert rules.candidate_ids(SUBJECT, DATASET, HOLDER, ZERO_ADDRESS) == anyone
    assert rules.candidate_ids(SUBJECT, DATASET, HOLDER, USER) == [
        *anyone,
        rules.consent_id(SUBJECT, ScopeKind.DATASET, DATASET, USER),
        rules.consent_id(SUBJECT, ScopeKind.HOLDER, scope, USER),
    ]


def _consent(**fields: Any) -> rules.Consent:
    base = rules.Consent(
        subject=SUBJECT,
        scope_kind=ScopeKind.HOLDER,
        scope=rules.holder_scope(HOLDER),
        purposes=du.HMB,
        expiry=T + 100,
        state=ConsentState.GIVEN,
    )
    return replace(base, **fields)


def test_in_force_states_expiry_and_purpose() -> None:
    assert rules.in_force(_consent(), HMB, T)
    assert rules.in_force(_consent(state=ConsentState.RENEWED), HMB, T)
    assert not rules.in_force(_consent(state=ConsentState.WITHDRAWN), HMB, T)
    assert not rules.in_force(_consent(state=ConsentState.NONE), HMB, T)
    assert not rules.in_force(None, HMB, T)
    # expired from the expiry second on (`c.expiry <= block.timestamp`)
    assert rules.in_force(_consent(), HMB, T + 99)
    assert not rules.in_force(_consent(), HMB, T + 100)
    assert rules.in_force(_consent(), (du.DS, 7), T)  # HMB covers disease-specific research
    assert not rules.in_force(_consent(), (du.POA, 0), T)
    # a malformed use is covered by nothing, not even by general research use
    assert not rules.in_force(_consent(purposes=du.GRU), (du.DS, 0), T)
    assert not rules.in_force(_consent(purposes=du.GRU), (du.NRES, 0), T)
    assert rules.in_force(_consent(purposes=du.GRU), (du.POA, 0), T)


def test_in_force_grantee() -> None:
    to_user = _consent(grantee=USER)
    assert rules.in_force(to_user, HMB, T, USER)
    assert rules.in_force(to_user, HMB, T, USER.lower())
    assert not rules.in_force(to_user, HMB, T)
    assert not rules.in_force(to_user, HMB, T, DELEGATE)
    assert rules.in_force(_consent(), HMB, T, USER)  # to anyone covers every grantee


def _event(kind: ConsentEventKind, block: int, log_index: int = 0, **fields: Any) -> ConsentEvent:
    return ConsentEvent(kind, block, log_index, "0x" + "00" * 32, SUBJECT, **fields)


def _given(
    block: int, scope_kind: ScopeKind, scope: bytes, grantee: str = ZERO_ADDRESS, **fields: object
) -> ConsentEvent:
    terms: dict[str, Any] = {"purposes": du.HMB, "disease": 0, "expiry": T + 100, "actor": SUBJECT}
    terms.update(fields)
    return _event(
        ConsentEventKind.GIVEN,
        block,
        consent_id=rules.consent_id(SUBJECT, scope_kind, scope, grantee),
        scope_kind=scope_kind,
        scope=scope,
        grantee=grantee,
        **terms,
    )


def test_replay_given_renewed_withdrawn_and_given_again() -> None:
    scope = rules.holder_scope(HOLDER)
    cid = rules.consent_id(SUBJECT, ScopeKind.HOLDER, scope)
    first = _given(10, ScopeKind.HOLDER, scope, expiry=T + 50)
    again = _given(40, ScopeKind.HOLDER, scope, purposes=du.POA)
    history = [
        first,
        _event(ConsentEventKind.RENEWED, 20, consent_id=cid, expiry=T + 500, actor=SUBJECT),
        _event(ConsentEventKind.WITHDRAWN, 30, consent_id=cid, actor=SUBJECT),
        again,
    ]
    assert rules.replay(history, 9).consent(cid) is None
    at10 = rules.replay(history, 10)
    assert at10.consent(cid) == rules.Consent(
        SUBJECT, ScopeKind.HOLDER, scope, ZERO_ADDRESS, du.HMB, 0, T + 50, ConsentState.GIVEN, 10
    )
    assert at10.given[cid] is first
    assert not at10.is_in_force(SUBJECT, DATASET, HOLDER, HMB, T + 60)
    at20 = rules.replay(history, 20)
    assert at20.consent(cid) == replace(
        at10.consents[cid], expiry=T + 500, state=ConsentState.RENEWED, updated_block=20
    )
    assert at20.is_in_force(SUBJECT, DATASET, HOLDER, HMB, T + 60)
    at30 = rules.replay(history, 30)
    assert at30.consents[cid].state is ConsentState.WITHDRAWN and at30.consents[cid].updated_block == 30
    assert not at30.is_in_force(SUBJECT, DATASET, HOLDER, HMB, T)
    last = rules.replay(history)
    assert last.consents[cid].state is ConsentState.GIVEN and last.given[cid] is again
    assert last.is_in_force(SUBJECT, DATASET, HOLDER, (du.POA, 0), T)
    assert not last.is_in_force(SUBJECT, DATASET, HOLDER, HMB, T)  # the new grant replaced the terms
    assert rules.replay(history, before=(30, 0)).consents[cid].state is ConsentState.RENEWED


def test_registry_state_is_in_force_by_scope_and_grantee() -> None:
    other = bytes.fromhex("cd" * 32)
    state = rules.replay(
        [
            _given(1, ScopeKind.DATASET, DATASET, purposes=du.DS, disease=7),
            _given(2, ScopeKind.HOLDER, rules.holder_scope(HOLDER), USER, purposes=du.POA),
        ]
    )
    ds7 = du.Purpose(du.DS, 7)
    assert state.covering(SUBJECT, DATASET, HOLDER, ds7, T) == rules.consent_id(SUBJECT, ScopeKind.DATASET, DATASET)
    assert not state.is_in_force(SUBJECT, DATASET, HOLDER, (du.DS, 8), T)
    assert not state.is_in_force(SUBJECT, other, HOLDER, ds7, T)  # dataset scope: that dataset only
    poa = du.Purpose(du.POA)
    assert state.is_in_force(SUBJECT, other, HOLDER, poa, T, USER)  # holder-wide, to the user
    assert not state.is_in_force(SUBJECT, other, HOLDER, poa, T)
    assert not state.is_in_force(SUBJECT, other, DELEGATE, poa, T, USER)  # another holder's dataset
    assert not state.is_in_force(SUBJECT, DATASET, None, ds7, T)  # an unregistered dataset
    assert not state.is_in_force(DELEGATE, DATASET, HOLDER, ds7, T)


def test_delegates() -> None:
    history = [
        _event(ConsentEventKind.DELEGATE_APPOINTED, 5, delegate=DELEGATE, expiry=T + 10),
        _event(ConsentEventKind.DELEGATE_REVOKED, 8, delegate=DELEGATE),
        _event(ConsentEventKind.DELEGATE_APPOINTED, 9, 3, delegate=DELEGATE, expiry=T + 20),
    ]
    assert rules.replay(history, 4).delegate_expiry(SUBJECT, DELEGATE) == 0
    at5 = rules.replay(history, 5)
    assert at5.delegate_expiry(SUBJECT.lower(), DELEGATE.lower()) == T + 10
    assert at5.may_act(SUBJECT, DELEGATE, T + 9) and not at5.may_act(SUBJECT, DELEGATE, T + 10)
    assert not at5.may_act(SUBJECT, DELEGATE, T, allow_delegate=False)  # delegates cannot manage delegates
    assert at5.may_act(SUBJECT, SUBJECT, T + 10**9, allow_delegate=False)
    assert not at5.may_act(SUBJECT, USER, T)
    assert rules.replay(history, 8).delegate_expiry(SUBJECT, DELEGATE) == 0
    assert rules.replay(history).delegate_expiry(SUBJECT, DELEGATE) == T + 20
    assert rules.delegate_appointed_before(history, SUBJECT, DELEGATE, (5, 0)) == 0
    assert rules.delegate_appointed_before(history, SUBJECT, DELEGATE, (5, 1)) == T + 10
    assert rules.delegate_appointed_before(history, SUBJECT, DELEGATE, (9, 3)) == 0
    assert rules.delegate_appointed_before(history, SUBJECT, DELEGATE, (9, 4)) == T + 20
    assert rules.delegate_appointed_before(history, SUBJECT, USER, (99, 0)) == 0
    assert rules.delegate_in_force(T + 1, T) and not rules.delegate_in_force(T, T) and not rules.delegate_in_force(0, 0)


def test_offline_checks_of_messages() -> None:
    grant = {
        "purposes": du.HMB,
        "diseaseCode": 0,
        "scopeKind": 0,
        "scope": "0x" + rules.holder_scope(HOLDER).hex(),
        "expiry": T + 1,
    }
    assert rules.check_message("Grant", grant, T) is False
    assert rules.check_message("Grant", {**grant, "scopeKind": 1, "scope": DATASET}, T) is True
    with pytest.raises(InvalidInput, match="purposes or disease code are not valid") as bad:
        rules.check_message("Grant", {**grant, "purposes": du.DS}, T)
    assert bad.value.hint == "at least one of NRES, GRU, HMB, DS (with a MONDO code), POA"
    for scope in (ZERO32, b"\x01" + rules.holder_scope(HOLDER)[1:]):
        with pytest.raises(InvalidInput, match="a holder scope must be the holder's address"):
            rules.check_message("Grant", {**grant, "scope": scope}, T)
    with pytest.raises(InvalidInput, match="neither holder"):
        rules.check_grant(du.HMB, 0, 2, DATASET)
    for kind in ("Grant", "Renew", "AppointDelegate"):
        with pytest.raises(InvalidInput, match="the expiry is not in the future") as late:
            rules.check_message(kind, {**grant, "expiry": T}, T)
        assert late.value.hint == "choose a later expiry"
    assert rules.check_message("Withdraw", {}, T) is False
    assert rules.check_message("RevokeDelegate", {}, T) is False
    rules.check_delegate(SUBJECT, DELEGATE)
    for bad_delegate in (SUBJECT.lower(), ZERO_ADDRESS):
        with pytest.raises(InvalidInput, match="cannot be the subject itself or the zero address"):
            rules.check_delegate(SUBJECT, bad_delegate)
