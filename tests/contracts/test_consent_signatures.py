"""ConsentRegistry, signed writes: EIP-712 messages (domain "MedLedgerConsent", "1") signed by a
subject or its delegate with fresh keys and submitted by a relayer, alone or in relayBatch.

Nonces are unordered (a bitmap per signer), so any unused nonce works and a later-signed withdrawal
can run before an earlier-signed grant. A signed call that reverts uses no nonce.
"""

import pytest
from chain_helpers import (
    DUO,
    ZERO_ADDRESS,
    ConsentState,
    Scope,
    addr,
    assert_event,
    assert_no_event,
    consent_typed_data,
    encode_error,
    expect_revert,
    holder_scope,
    latest_timestamp,
    new_key,
    plain,
    recover_consent_signer,
    set_next_timestamp,
    sign_consent,
)
from eth_account import Account
from eth_account.messages import encode_typed_data
from hexbytes import HexBytes

DAY = 86400


@pytest.fixture
def patient():
    return new_key()


@pytest.fixture
def guardian():
    return new_key()


def grant_fields(
    subject_key,
    scope,
    *,
    nonce,
    purposes=DUO.GRU,
    disease=0,
    grantee=ZERO_ADDRESS,
    kind=Scope.HOLDER,
    expiry=None,
    deadline=None,
):
    fields = dict(
        subject=subject_key.address,
        scopeKind=kind,
        scope=scope,
        grantee=grantee,
        purposes=purposes,
        diseaseCode=disease,
        expiry=expiry or latest_timestamp() + 30 * DAY,
        nonce=nonce,
    )
    if deadline is not None:
        fields["deadline"] = deadline
    return fields


def appoint(consent, relayer, patient, guardian, nonce=1000):
    signed = sign_consent(
        consent,
        patient,
        "AppointDelegate",
        subject=patient.address,
        delegate=guardian.address,
        expiry=latest_timestamp() + 10 * DAY,
        nonce=nonce,
    )
    return signed.submit(consent, relayer)


def test_grant_by_sig_records_signer_as_actor(consent, relayer, patient, holder, register):
    scope = holder_scope(holder)
    signed = sign_consent(consent, patient, "Grant", **grant_fields(patient, scope, nonce=7, purposes=DUO.HMB))
    tx = signed.submit(consent, relayer)
    cid = consent.consentId(patient.address, Scope.HOLDER, scope, ZERO_ADDRESS)
    assert_event(
        tx,
        "ConsentGiven",
        consentId=cid,
        subject=patient.address,
        scope=scope,
        scopeKind=Scope.HOLDER,
        grantee=ZERO_ADDRESS,
        purposes=DUO.HMB,
        diseaseCode=0,
        expiry=signed.message["expiry"],
        actor=patient.address,
    )
    assert plain(tx.return_value) == plain(cid)
    assert tx.sender == relayer
    assert consent.nonceUsed(patient.address, 7)
    assert not consent.nonceUsed(patient.address, 6)
    assert consent.isInForce(patient.address, register(holder), DUO.DS, 4, ZERO_ADDRESS)


def test_grant_by_delegate_signature(consent, relayer, patient, guardian, holder):
    tx = appoint(consent, relayer, patient, guardian)
    assert_event(tx, "DelegateAppointed", subject=patient.address, delegate=guardian.address)
    assert consent.nonceUsed(patient.address, 1000)
    signed = sign_consent(consent, guardian, "Grant", **grant_fields(patient, holder_scope(holder), nonce=0))
    tx = signed.submit(consent, relayer)
    assert_event(tx, "ConsentGiven", subject=patient.address, actor=guardian.address)
    # the nonce belongs to the signer (the delegate), not to the subject
    assert consent.nonceUsed(guardian.address, 0)
    assert not consent.nonceUsed(patient.address, 0)


def test_renew_withdraw_by_sig_signed_by_subject_and_delegate(consent, relayer, patient, guardian, holder):
    scope = holder_scope(holder)
    sign_consent(consent, patient, "Grant", **grant_fields(patient, scope, nonce=1)).submit(consent, relayer)
    appoint(consent, relayer, patient, guardian)
    expiry = latest_timestamp() + 60 * DAY
    renew = sign_consent(
        consent,
        guardian,
        "Renew",
        subject=patient.address,
        scopeKind=Scope.HOLDER,
        scope=scope,
        grantee=ZERO_ADDRESS,
        expiry=expiry,
        nonce=1,
    )
    tx = renew.submit(consent, relayer)
    cid = consent.consentId(patient.address, Scope.HOLDER, scope, ZERO_ADDRESS)
    assert_event(tx, "ConsentRenewed", consentId=cid, subject=patient.address, expiry=expiry, actor=guardian.address)
    withdraw = sign_consent(
        consent,
        patient,
        "Withdraw",
        subject=patient.address,
        scopeKind=Scope.HOLDER,
        scope=scope,
        grantee=ZERO_ADDRESS,
        nonce=2,
    )
    tx = withdraw.submit(consent, relayer)
    assert_event(tx, "ConsentWithdrawn", consentId=cid, subject=patient.address, actor=patient.address)
    assert consent.getConsent(cid)[3] == ConsentState.WITHDRAWN


def test_appoint_and_revoke_delegate_by_sig(consent, relayer, patient, guardian, holder):
    appoint(consent, relayer, patient, guardian, nonce=3)
    signed = sign_consent(
        consent, patient, "RevokeDelegate", subject=patient.address, delegate=guardian.address, nonce=4
    )
    tx = signed.submit(consent, relayer)
    assert_event(tx, "DelegateRevoked", subject=patient.address, delegate=guardian.address)
    assert consent.delegateExpiry(patient.address, guardian.address) == 0
    late = sign_consent(consent, guardian, "Grant", **grant_fields(patient, holder_scope(holder), nonce=0))
    with expect_revert("InvalidSigner(address,address)", guardian.address, patient.address):
        late.submit(consent, relayer)


def test_delegate_cannot_manage_delegates(consent, relayer, patient, guardian):
    appoint(consent, relayer, patient, guardian)
    other = new_key()
    signed = sign_consent(
        consent,
        guardian,
        "AppointDelegate",
        subject=patient.address,
        delegate=other.address,
        expiry=latest_timestamp() + DAY,
        nonce=0,
    )
    with expect_revert("InvalidSigner(address,address)", guardian.address, patient.address):
        signed.submit(consent, relayer)
    signed = sign_consent(
        consent, guardian, "RevokeDelegate", subject=patient.address, delegate=guardian.address, nonce=1
    )
    with expect_revert("InvalidSigner(address,address)", guardian.address, patient.address):
        signed.submit(consent, relayer)


def test_expired_delegate_signature_refused(consent, relayer, patient, guardian, holder):
    t = latest_timestamp()
    sign_consent(
        consent,
        patient,
        "AppointDelegate",
        subject=patient.address,
        delegate=guardian.address,
        expiry=t + 50,
        nonce=0,
    ).submit(consent, relayer)
    signed = sign_consent(
        consent, guardian, "Grant", **grant_fields(patient, holder_scope(holder), nonce=0, deadline=t + DAY)
    )
    set_next_timestamp(t + 50)
    with expect_revert("InvalidSigner(address,address)", guardian.address, patient.address):
        signed.submit(consent, relayer)


def test_replay_refused(consent, relayer, patient, holder):
    signed = sign_consent(consent, patient, "Grant", **grant_fields(patient, holder_scope(holder), nonce=42))
    signed.submit(consent, relayer)
    with expect_revert("NonceAlreadyUsed(address,uint256)", patient.address, 42):
        signed.submit(consent, relayer)
    # the same nonce cannot be reused for a different message either
    other = sign_consent(
        consent,
        patient,
        "Withdraw",
        subject=patient.address,
        scopeKind=Scope.HOLDER,
        scope=holder_scope(holder),
        grantee=ZERO_ADDRESS,
        nonce=42,
    )
    with expect_revert("NonceAlreadyUsed(address,uint256)", patient.address, 42):
        other.submit(consent, relayer)


def test_expired_deadline_refused(consent, relayer, patient, holder):
    t = latest_timestamp() + 20
    signed = sign_consent(consent, patient, "Grant", **grant_fields(patient, holder_scope(holder), nonce=1, deadline=t))
    set_next_timestamp(t + 1)
    with expect_revert("SignatureExpired(uint256,uint256)", t, t + 1):
        signed.submit(consent, relayer)
    assert not consent.nonceUsed(patient.address, 1)


def test_deadline_is_inclusive(consent, relayer, patient, holder):
    t = latest_timestamp() + 20
    signed = sign_consent(consent, patient, "Grant", **grant_fields(patient, holder_scope(holder), nonce=1, deadline=t))
    set_next_timestamp(t)
    signed.submit(consent, relayer)


@pytest.mark.parametrize(
    "field,value",
    [
        ("purposes", DUO.NRES),
        ("expiry", 4_000_000_000),
        ("grantee", "0x000000000000000000000000000000000000dEaD"),
        ("scopeKind", Scope.DATASET),
        ("nonce", 8),
        ("deadline", 4_000_000_000),
    ],
)
def test_tampered_field_refused(consent, relayer, patient, holder, field, value):
    signed = sign_consent(consent, patient, "Grant", **grant_fields(patient, holder_scope(holder), nonce=7))
    recovered = recover_consent_signer(consent, signed, **{field: value})
    assert addr(recovered) != addr(patient.address)
    with expect_revert("InvalidSigner(address,address)", recovered, patient.address):
        signed.submit(consent, relayer, **{field: value})


def test_tampered_subject_refused(consent, relayer, patient, holder, subject):
    """Claiming the signature is another subject's recovers a stranger, not that subject."""
    signed = sign_consent(consent, patient, "Grant", **grant_fields(patient, holder_scope(holder), nonce=7))
    recovered = recover_consent_signer(consent, signed, subject=subject.address)
    with expect_revert("InvalidSigner(address,address)", recovered, subject.address):
        signed.submit(consent, relayer, subject=subject.address)


def test_malformed_signature(consent, relayer, patient, holder):
    signed = sign_consent(consent, patient, "Grant", **grant_fields(patient, holder_scope(holder), nonce=7))
    with expect_revert("InvalidSigner(address,address)", ZERO_ADDRESS, patient.address):
        consent.grantBySig(signed.struct(), b"\x01" * 10, {"from": relayer})


def test_signature_bound_to_this_contract(consent, relayer, patient, holder, forwarder):
    """A message signed for another verifying contract does not recover to the subject here."""
    fields = grant_fields(patient, holder_scope(holder), nonce=7, deadline=latest_timestamp() + 3600)
    signed = sign_consent(forwarder, patient, "Grant", **fields)  # domain names the forwarder's address
    recovered = Account.recover_message(
        encode_typed_data(full_message=consent_typed_data(consent, "Grant", signed.message)), signature=signed.signature
    )
    with expect_revert("InvalidSigner(address,address)", recovered, patient.address):
        signed.submit(consent, relayer)


def test_failed_signed_call_uses_no_nonce(consent, relayer, patient, holder):
    bad = sign_consent(consent, patient, "Grant", **grant_fields(patient, holder_scope(holder), nonce=5, purposes=0))
    with expect_revert("InvalidPurposes(uint64,uint32)", 0, 0):
        bad.submit(consent, relayer)
    assert not consent.nonceUsed(patient.address, 5)


def test_later_withdrawal_runs_before_earlier_grant(consent, relayer, patient, holder, register):
    """Unordered nonces: a withdrawal signed later (higher nonce) executes first; the earlier grant
    (lower nonce) still executes afterwards. Nothing can hold a withdrawal back."""
    scope = holder_scope(holder)
    dataset = register(holder)
    sign_consent(consent, patient, "Grant", **grant_fields(patient, scope, nonce=1)).submit(consent, relayer)
    assert consent.isInForce(patient.address, dataset, DUO.GRU, 0, ZERO_ADDRESS)
    earlier_grant = sign_consent(
        consent, patient, "Grant", **grant_fields(patient, scope, nonce=2, grantee=relayer.address, purposes=DUO.POA)
    )
    later_withdrawal = sign_consent(
        consent,
        patient,
        "Withdraw",
        subject=patient.address,
        scopeKind=Scope.HOLDER,
        scope=scope,
        grantee=ZERO_ADDRESS,
        nonce=3,
    )
    tx = later_withdrawal.submit(consent, relayer)
    assert_event(tx, "ConsentWithdrawn", subject=patient.address, actor=patient.address)
    assert not consent.isInForce(patient.address, dataset, DUO.GRU, 0, ZERO_ADDRESS)
    assert consent.nonceUsed(patient.address, 3) and not consent.nonceUsed(patient.address, 2)
    earlier_grant.submit(consent, relayer)
    assert consent.isInForce(patient.address, dataset, DUO.POA, 0, relayer.address)
    assert not consent.isInForce(patient.address, dataset, DUO.GRU, 0, ZERO_ADDRESS)


def test_large_and_sparse_nonces(consent, relayer, patient, holder):
    scope = holder_scope(holder)
    for nonce in (2**256 - 1, 255, 256):
        sign_consent(consent, patient, "Grant", **grant_fields(patient, scope, nonce=nonce)).submit(consent, relayer)
        assert consent.nonceUsed(patient.address, nonce)
    assert not consent.nonceUsed(patient.address, 254)
    assert not consent.nonceUsed(patient.address, 257)


# ------------------------------------------------------------------------------------------ relayBatch


def test_relay_batch_signed_by_subject_and_delegate(consent, relayer, patient, guardian, holder):
    scope = holder_scope(holder)
    other = new_key()
    calls = [
        sign_consent(
            consent,
            patient,
            "AppointDelegate",
            subject=patient.address,
            delegate=guardian.address,
            expiry=latest_timestamp() + DAY,
            nonce=0,
        ).calldata(consent),
        sign_consent(consent, guardian, "Grant", **grant_fields(patient, scope, nonce=0)).calldata(consent),
        sign_consent(consent, other, "Grant", **grant_fields(other, scope, nonce=0)).calldata(consent),
    ]
    tx = consent.relayBatch(calls, {"from": relayer})
    assert plain(tx.return_value) == [True, True, True]
    assert_no_event(tx, "SignedCallFailed")
    assert_event(tx, "DelegateAppointed", subject=patient.address, delegate=guardian.address)
    assert_event(tx, "ConsentGiven", index=0, count=2, subject=patient.address, actor=guardian.address)
    assert_event(tx, "ConsentGiven", index=1, count=2, subject=other.address, actor=other.address)


def test_relay_batch_with_one_bad_call(consent, relayer, patient, holder):
    """A failing signed call emits SignedCallFailed(index, revert data); the others execute."""
    scope = holder_scope(holder)
    first = sign_consent(consent, patient, "Grant", **grant_fields(patient, scope, nonce=1))
    replayed = first  # same message twice: the second is a replay
    tampered = sign_consent(consent, patient, "Grant", **grant_fields(patient, scope, nonce=2))
    recovered = recover_consent_signer(consent, tampered, purposes=DUO.NRES)
    withdrawal = sign_consent(
        consent,
        patient,
        "Withdraw",
        subject=patient.address,
        scopeKind=Scope.HOLDER,
        scope=scope,
        grantee=ZERO_ADDRESS,
        nonce=3,
    )
    calls = [
        first.calldata(consent),
        replayed.calldata(consent),
        tampered.calldata(consent, purposes=DUO.NRES),
        withdrawal.calldata(consent),
    ]
    tx = consent.relayBatch(calls, {"from": relayer})
    assert plain(tx.return_value) == [True, False, False, True]
    assert_event(
        tx,
        "SignedCallFailed",
        index=0,
        count=2,
        reason=HexBytes(encode_error("NonceAlreadyUsed(address,uint256)", patient.address, 1)),
    )
    assert tx.events["SignedCallFailed"][0]["index"] == 1
    assert_event(
        tx,
        "SignedCallFailed",
        index=1,
        count=2,
        reason=HexBytes(encode_error("InvalidSigner(address,address)", recovered, patient.address)),
    )
    assert tx.events["SignedCallFailed"][1]["index"] == 2
    assert_event(tx, "ConsentGiven", subject=patient.address)
    assert_event(tx, "ConsentWithdrawn", subject=patient.address)
    assert not consent.nonceUsed(patient.address, 2)


def test_relay_batch_refuses_unsigned_calls(consent, relayer, patient, holder):
    scope = holder_scope(holder)
    good = sign_consent(consent, patient, "Grant", **grant_fields(patient, scope, nonce=1)).calldata(consent)
    direct = HexBytes(
        consent.grant.encode_input(patient.address, Scope.HOLDER, scope, ZERO_ADDRESS, DUO.GRU, 0, 2**40 - 1)
    )
    with expect_revert("NotASignedCall(uint256,bytes4)", 1, direct[:4]):
        consent.relayBatch([good, direct], {"from": relayer})
    nested = HexBytes(consent.relayBatch.encode_input([good]))
    with expect_revert("NotASignedCall(uint256,bytes4)", 0, nested[:4]):
        consent.relayBatch([nested], {"from": relayer})
    with expect_revert("NotASignedCall(uint256,bytes4)", 0, b"\x00" * 4):
        consent.relayBatch([b"\x12\x34"], {"from": relayer})
    assert not consent.nonceUsed(patient.address, 1)


def test_relay_batch_empty(consent, relayer):
    tx = consent.relayBatch([], {"from": relayer})
    assert plain(tx.return_value) == []
