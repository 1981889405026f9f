"""ConsentRegistry, direct writes: grant, renew, withdraw, delegates; isInForce and DUO coverage."""

import eth_abi
import pytest
from chain_helpers import (
    CONSENT_TYPES,
    DUO,
    ZERO32,
    ZERO_ADDRESS,
    ConsentState,
    Scope,
    Status,
    Tier,
    addr,
    assert_event,
    b32,
    consent_type_string,
    expect_revert,
    hex32,
    holder_scope,
    jump,
    latest_timestamp,
    mine_at,
    plain,
    set_next_timestamp,
)
from eth_utils import keccak

DAY = 86400


def consent_id(subject, scope_kind, scope, grantee):
    return hex32(
        keccak(
            eth_abi.encode(
                ["address", "uint8", "bytes32", "address"],
                [addr(subject), scope_kind, bytes.fromhex(str(scope)[2:]), addr(grantee)],
            )
        )
    )


@pytest.fixture(scope="module")
def dataset(register, holder):
    return register(holder, tier=Tier.CONTROLLED)


@pytest.fixture(scope="module")
def other_dataset(register, holder):
    return register(holder, tier=Tier.CONTROLLED)


def stored(consent, subject, kind, scope, grantee):
    c = consent.getConsent(consent_id(subject, kind, scope, grantee))
    return {"purposes": c[0], "diseaseCode": c[1], "expiry": c[2], "state": c[3], "updatedBlock": c[4]}


# ------------------------------------------------------------------------------------------ grant


def test_consent_id_matches_abi_encoding(consent, subject, holder, user):
    scope = holder_scope(holder)
    assert plain(consent.consentId(subject, Scope.HOLDER, scope, user)) == plain(
        consent_id(subject, Scope.HOLDER, scope, user)
    )


def test_grant_holder_wide(consent, subject, holder):
    expiry = latest_timestamp() + 30 * DAY
    scope = holder_scope(holder)
    tx = consent.grant(subject, Scope.HOLDER, scope, ZERO_ADDRESS, DUO.GRU | DUO.NCU, 0, expiry, {"from": subject})
    cid = consent_id(subject, Scope.HOLDER, scope, ZERO_ADDRESS)
    assert_event(
        tx,
        "ConsentGiven",
        consentId=cid,
        subject=subject,
        scope=scope,
        scopeKind=Scope.HOLDER,
        grantee=ZERO_ADDRESS,
        purposes=DUO.GRU | DUO.NCU,
        diseaseCode=0,
        expiry=expiry,
        actor=subject,
        emitter=consent,
    )
    assert plain(tx.return_value) == plain(cid)
    assert stored(consent, subject, Scope.HOLDER, scope, ZERO_ADDRESS) == {
        "purposes": DUO.GRU | DUO.NCU,
        "diseaseCode": 0,
        "expiry": expiry,
        "state": ConsentState.GIVEN,
        "updatedBlock": tx.block_number,
    }


def test_grant_dataset_scoped_to_one_grantee(consent, subject, dataset, user):
    expiry = latest_timestamp() + DAY
    tx = consent.grant(subject, Scope.DATASET, dataset, user, DUO.DS, 1234, expiry, {"from": subject})
    assert_event(
        tx,
        "ConsentGiven",
        consentId=consent_id(subject, Scope.DATASET, dataset, user),
        scope=dataset,
        scopeKind=Scope.DATASET,
        grantee=user,
        purposes=DUO.DS,
        diseaseCode=1234,
        actor=subject,
    )
    assert consent.isInForce(subject, dataset, DUO.DS, 1234, user)
    assert not consent.isInForce(subject, dataset, DUO.DS, 1234, ZERO_ADDRESS)
    assert not consent.isInForce(subject, dataset, DUO.DS, 1235, user)


def test_grant_again_replaces_terms(consent, subject, holder):
    scope = holder_scope(holder)
    t = latest_timestamp()
    consent.grant(subject, Scope.HOLDER, scope, ZERO_ADDRESS, DUO.GRU, 0, t + DAY, {"from": subject})
    consent.withdraw(subject, Scope.HOLDER, scope, ZERO_ADDRESS, {"from": subject})
    tx = consent.grant(subject, Scope.HOLDER, scope, ZERO_ADDRESS, DUO.POA, 0, t + 2 * DAY, {"from": subject})
    s = stored(consent, subject, Scope.HOLDER, scope, ZERO_ADDRESS)
    assert (s["purposes"], s["expiry"], s["state"], s["updatedBlock"]) == (
        DUO.POA,
        t + 2 * DAY,
        ConsentState.GIVEN,
        tx.block_number,
    )


def test_grant_by_delegate_records_delegate_as_actor(consent, subject, delegate, holder):
    consent.appointDelegate(delegate, latest_timestamp() + DAY, {"from": subject})
    tx = consent.grant(
        subject,
        Scope.HOLDER,
        holder_scope(holder),
        ZERO_ADDRESS,
        DUO.HMB,
        0,
        latest_timestamp() + DAY,
        {"from": delegate},
    )
    assert_event(tx, "ConsentGiven", subject=subject, actor=delegate)


def test_grant_refused_to_others(consent, subject, stranger, holder, user):
    for account in (stranger, holder, user):
        with expect_revert("NotSubjectOrDelegate(address,address)", subject, account):
            consent.grant(
                subject,
                Scope.HOLDER,
                holder_scope(holder),
                ZERO_ADDRESS,
                DUO.GRU,
                0,
                latest_timestamp() + DAY,
                {"from": account},
            )


@pytest.mark.parametrize(
    "purposes,disease",
    [
        (0, 0),  # no permission
        (DUO.NCU, 0),  # modifier only
        (DUO.DS, 0),  # DS without a disease code
        (DUO.HMB, 7),  # disease code without DS
        (1 << 5, 0),  # unknown permission bit
        (DUO.GRU | (1 << 8), 0),  # bit between permissions and modifiers
        (DUO.GRU | DUO.USE_COMMERCIAL, 0),  # a use attribute in a consent
        (DUO.GRU | (1 << 63), 0),
    ],
)
def test_grant_invalid_purposes(consent, subject, holder, purposes, disease):
    with expect_revert("InvalidPurposes(uint64,uint32)", purposes, disease):
        consent.grant(
            subject,
            Scope.HOLDER,
            holder_scope(holder),
            ZERO_ADDRESS,
            purposes,
            disease,
            latest_timestamp() + DAY,
            {"from": subject},
        )


def test_grant_expiry_must_be_in_future(consent, subject, holder):
    t = latest_timestamp() + 10
    set_next_timestamp(t)
    with expect_revert("ExpiryNotInFuture(uint40,uint256)", t, t):
        consent.grant(subject, Scope.HOLDER, holder_scope(holder), ZERO_ADDRESS, DUO.GRU, 0, t, {"from": subject})
    set_next_timestamp(t + 1)
    consent.grant(subject, Scope.HOLDER, holder_scope(holder), ZERO_ADDRESS, DUO.GRU, 0, t + 2, {"from": subject})


def test_grant_invalid_scope(consent, subject, holder):
    expiry = latest_timestamp() + DAY
    too_wide = "0x01" + holder_scope(holder)[4:]
    for kind, scope in ((Scope.HOLDER, ZERO32), (Scope.HOLDER, too_wide), (Scope.DATASET, b32("unregistered"))):
        with expect_revert("InvalidScope(uint8,bytes32)", kind, scope):
            consent.grant(subject, kind, scope, ZERO_ADDRESS, DUO.GRU, 0, expiry, {"from": subject})


def test_grant_on_retracted_dataset_allowed(consent, datasets, subject, dataset, holder):
    """A dataset scope only has to be registered."""
    datasets.retract(dataset, ZERO32, {"from": holder})
    consent.grant(
        subject, Scope.DATASET, dataset, ZERO_ADDRESS, DUO.GRU, 0, latest_timestamp() + DAY, {"from": subject}
    )


# ------------------------------------------------------------------------------------------ renew


def test_renew(consent, subject, holder, dataset):
    scope = holder_scope(holder)
    t = latest_timestamp()
    consent.grant(subject, Scope.HOLDER, scope, ZERO_ADDRESS, DUO.HMB, 0, t + 100, {"from": subject})
    tx = consent.renew(subject, Scope.HOLDER, scope, ZERO_ADDRESS, t + 10 * DAY, {"from": subject})
    assert_event(
        tx,
        "ConsentRenewed",
        consentId=consent_id(subject, Scope.HOLDER, scope, ZERO_ADDRESS),
        subject=subject,
        expiry=t + 10 * DAY,
        actor=subject,
    )
    s = stored(consent, subject, Scope.HOLDER, scope, ZERO_ADDRESS)
    assert (s["purposes"], s["expiry"], s["state"], s["updatedBlock"]) == (
        DUO.HMB,
        t + 10 * DAY,
        ConsentState.RENEWED,
        tx.block_number,
    )
    # renewing a renewed consent again
    consent.renew(subject, Scope.HOLDER, scope, ZERO_ADDRESS, t + 20 * DAY, {"from": subject})
    assert consent.isInForce(subject, dataset, DUO.HMB, 0, ZERO_ADDRESS)


def test_renew_expired_consent(consent, subject, holder, dataset):
    scope = holder_scope(holder)
    consent.grant(subject, Scope.HOLDER, scope, ZERO_ADDRESS, DUO.GRU, 0, latest_timestamp() + 100, {"from": subject})
    jump(200)
    assert not consent.isInForce(subject, dataset, DUO.GRU, 0, ZERO_ADDRESS)
    consent.renew(subject, Scope.HOLDER, scope, ZERO_ADDRESS, latest_timestamp() + DAY, {"from": subject})
    assert consent.isInForce(subject, dataset, DUO.GRU, 0, ZERO_ADDRESS)


def test_renew_errors(consent, subject, holder, stranger):
    scope = holder_scope(holder)
    cid = consent_id(subject, Scope.HOLDER, scope, ZERO_ADDRESS)
    with expect_revert("ConsentNotRenewable(bytes32,uint8)", cid, ConsentState.NONE):
        consent.renew(subject, Scope.HOLDER, scope, ZERO_ADDRESS, latest_timestamp() + DAY, {"from": subject})
    consent.grant(subject, Scope.HOLDER, scope, ZERO_ADDRESS, DUO.GRU, 0, latest_timestamp() + DAY, {"from": subject})
    with expect_revert("NotSubjectOrDelegate(address,address)", subject, stranger):
        consent.renew(subject, Scope.HOLDER, scope, ZERO_ADDRESS, latest_timestamp() + DAY, {"from": stranger})
    t = latest_timestamp() + 5
    set_next_timestamp(t)
    with expect_revert("ExpiryNotInFuture(uint40,uint256)", t - 1, t):
        consent.renew(subject, Scope.HOLDER, scope, ZERO_ADDRESS, t - 1, {"from": subject})
    consent.withdraw(subject, Scope.HOLDER, scope, ZERO_ADDRESS, {"from": subject})
    with expect_revert("ConsentNotRenewable(bytes32,uint8)", cid, ConsentState.WITHDRAWN):
        consent.renew(subject, Scope.HOLDER, scope, ZERO_ADDRESS, latest_timestamp() + DAY, {"from": subject})


# ------------------------------------------------------------------------------------------ withdraw


def test_withdraw(consent, subject, holder, dataset):
    scope = holder_scope(holder)
    consent.grant(subject, Scope.HOLDER, scope, ZERO_ADDRESS, DUO.GRU, 0, latest_timestamp() + DAY, {"from": subject})
    assert consent.isInForce(subject, dataset, DUO.GRU, 0, ZERO_ADDRESS)
    tx = consent.withdraw(subject, Scope.HOLDER, scope, ZERO_ADDRESS, {"from": subject})
    assert_event(
        tx,
        "ConsentWithdrawn",
        consentId=consent_id(subject, Scope.HOLDER, scope, ZERO_ADDRESS),
        subject=subject,
        actor=subject,
    )
    s = stored(consent, subject, Scope.HOLDER, scope, ZERO_ADDRESS)
    assert (s["state"], s["updatedBlock"], s["purposes"]) == (ConsentState.WITHDRAWN, tx.block_number, DUO.GRU)
    assert not consent.isInForce(subject, dataset, DUO.GRU, 0, ZERO_ADDRESS)


def test_withdraw_by_delegate_and_of_expired_consent(consent, subject, delegate, holder):
    scope = holder_scope(holder)
    consent.appointDelegate(delegate, latest_timestamp() + 10 * DAY, {"from": subject})
    consent.grant(subject, Scope.HOLDER, scope, ZERO_ADDRESS, DUO.GRU, 0, latest_timestamp() + 100, {"from": subject})
    jump(500)
    tx = consent.withdraw(subject, Scope.HOLDER, scope, ZERO_ADDRESS, {"from": delegate})
    assert_event(tx, "ConsentWithdrawn", subject=subject, actor=delegate)


def test_withdraw_never_blocked_by_dataset_state(consent, datasets, subject, holder, auditor, dataset):
    """Suspension or retraction of the dataset does not stop a withdrawal."""
    consent.grant(
        subject, Scope.DATASET, dataset, ZERO_ADDRESS, DUO.GRU, 0, latest_timestamp() + DAY, {"from": subject}
    )
    datasets.suspend(dataset, ZERO32, {"from": auditor})
    datasets.retract(dataset, ZERO32, {"from": holder})
    consent.withdraw(subject, Scope.DATASET, dataset, ZERO_ADDRESS, {"from": subject})


def test_withdraw_errors(consent, subject, holder, stranger):
    scope = holder_scope(holder)
    cid = consent_id(subject, Scope.HOLDER, scope, ZERO_ADDRESS)
    with expect_revert("ConsentNotActive(bytes32,uint8)", cid, ConsentState.NONE):
        consent.withdraw(subject, Scope.HOLDER, scope, ZERO_ADDRESS, {"from": subject})
    consent.grant(subject, Scope.HOLDER, scope, ZERO_ADDRESS, DUO.GRU, 0, latest_timestamp() + DAY, {"from": subject})
    with expect_revert("NotSubjectOrDelegate(address,address)", subject, stranger):
        consent.withdraw(subject, Scope.HOLDER, scope, ZERO_ADDRESS, {"from": stranger})
    consent.withdraw(subject, Scope.HOLDER, scope, ZERO_ADDRESS, {"from": subject})
    with expect_revert("ConsentNotActive(bytes32,uint8)", cid, ConsentState.WITHDRAWN):
        consent.withdraw(subject, Scope.HOLDER, scope, ZERO_ADDRESS, {"from": subject})


# ------------------------------------------------------------------------------------------ delegates


def test_appoint_and_revoke_delegate(consent, subject, delegate, holder):
    expiry = latest_timestamp() + DAY
    tx = consent.appointDelegate(delegate, expiry, {"from": subject})
    assert_event(tx, "DelegateAppointed", subject=subject, delegate=delegate, expiry=expiry)
    assert consent.delegateExpiry(subject, delegate) == expiry
    tx = consent.revokeDelegate(delegate, {"from": subject})
    assert_event(tx, "DelegateRevoked", subject=subject, delegate=delegate)
    assert consent.delegateExpiry(subject, delegate) == 0
    with expect_revert("NotSubjectOrDelegate(address,address)", subject, delegate):
        consent.grant(subject, Scope.HOLDER, holder_scope(holder), ZERO_ADDRESS, DUO.GRU, 0, expiry, {"from": delegate})


def test_reappoint_changes_expiry(consent, subject, delegate):
    t = latest_timestamp()
    consent.appointDelegate(delegate, t + DAY, {"from": subject})
    tx = consent.appointDelegate(delegate, t + 2 * DAY, {"from": subject})
    assert_event(tx, "DelegateAppointed", expiry=t + 2 * DAY)
    assert consent.delegateExpiry(subject, delegate) == t + 2 * DAY


def test_delegate_expires(consent, subject, delegate, holder):
    t = latest_timestamp()
    consent.appointDelegate(delegate, t + 100, {"from": subject})
    consent.grant(subject, Scope.HOLDER, holder_scope(holder), ZERO_ADDRESS, DUO.GRU, 0, t + DAY, {"from": delegate})
    set_next_timestamp(t + 100)
    with expect_revert("NotSubjectOrDelegate(address,address)", subject, delegate):
        consent.withdraw(subject, Scope.HOLDER, holder_scope(holder), ZERO_ADDRESS, {"from": delegate})
    # an expired delegate is still on record and can be revoked
    consent.revokeDelegate(delegate, {"from": subject})


def test_appoint_errors(consent, subject):
    with expect_revert("InvalidDelegate(address,address)", subject, subject):
        consent.appointDelegate(subject, latest_timestamp() + DAY, {"from": subject})
    with expect_revert("InvalidDelegate(address,address)", subject, ZERO_ADDRESS):
        consent.appointDelegate(ZERO_ADDRESS, latest_timestamp() + DAY, {"from": subject})
    t = latest_timestamp() + 3
    set_next_timestamp(t)
    with expect_revert("ExpiryNotInFuture(uint40,uint256)", t, t):
        consent.appointDelegate(addr(b32("d")[:42]), t, {"from": subject})


def test_revoke_unknown_delegate(consent, subject, delegate, stranger):
    with expect_revert("DelegateNotAppointed(address,address)", subject, delegate):
        consent.revokeDelegate(delegate, {"from": subject})
    consent.appointDelegate(delegate, latest_timestamp() + DAY, {"from": subject})
    # only the subject who appointed can revoke: for anyone else the delegate is not theirs
    with expect_revert("DelegateNotAppointed(address,address)", stranger, delegate):
        consent.revokeDelegate(delegate, {"from": stranger})


def test_delegate_cannot_appoint_for_subject(consent, subject, delegate, stranger, holder):
    """appointDelegate always appoints for the caller: a delegate's appointee gets no power over the subject."""
    consent.appointDelegate(delegate, latest_timestamp() + DAY, {"from": subject})
    consent.appointDelegate(stranger, latest_timestamp() + DAY, {"from": delegate})
    assert consent.delegateExpiry(delegate, stranger) > 0
    assert consent.delegateExpiry(subject, stranger) == 0
    with expect_revert("NotSubjectOrDelegate(address,address)", subject, stranger):
        consent.grant(
            subject,
            Scope.HOLDER,
            holder_scope(holder),
            ZERO_ADDRESS,
            DUO.GRU,
            0,
            latest_timestamp() + DAY,
            {"from": stranger},
        )


# ------------------------------------------------------------------------------------------ isInForce


def test_holder_wide_consent_covers_future_datasets(consent, register, subject, holder, user):
    """Authorise once, use many times: a holder-wide consent covers datasets registered later."""
    consent.grant(
        subject,
        Scope.HOLDER,
        holder_scope(holder),
        ZERO_ADDRESS,
        DUO.HMB,
        0,
        latest_timestamp() + DAY,
        {"from": subject},
    )
    later = register(holder)
    assert consent.isInForce(subject, later, DUO.HMB, 0, ZERO_ADDRESS)
    assert consent.isInForce(subject, later, DUO.HMB, 0, user)
    other_holders = register(user, parents=[later])
    assert not consent.isInForce(subject, other_holders, DUO.HMB, 0, ZERO_ADDRESS)


def test_in_force_requires_registered_dataset(consent, subject, holder):
    consent.grant(
        subject,
        Scope.HOLDER,
        holder_scope(holder),
        ZERO_ADDRESS,
        DUO.NRES,
        0,
        latest_timestamp() + DAY,
        {"from": subject},
    )
    assert not consent.isInForce(subject, b32("unregistered"), DUO.GRU, 0, ZERO_ADDRESS)
    assert plain(consent.inForceBatch([subject], b32("unregistered"), DUO.GRU, 0, ZERO_ADDRESS)) == [False]


def test_expiry_is_exclusive(consent, subject, dataset, holder):
    t = latest_timestamp() + 10
    set_next_timestamp(t)
    consent.grant(subject, Scope.DATASET, dataset, ZERO_ADDRESS, DUO.GRU, 0, t + 100, {"from": subject})
    block = mine_at(t + 99)
    assert consent.isInForce(subject, dataset, DUO.GRU, 0, ZERO_ADDRESS, block_identifier=block)
    block = mine_at(t + 100)
    assert not consent.isInForce(subject, dataset, DUO.GRU, 0, ZERO_ADDRESS, block_identifier=block)


def test_grantee_specific_and_anyone_consents(consent, subject, dataset, holder, user, stranger):
    expiry = latest_timestamp() + DAY
    consent.grant(subject, Scope.HOLDER, holder_scope(holder), user, DUO.POA, 0, expiry, {"from": subject})
    consent.grant(subject, Scope.DATASET, dataset, ZERO_ADDRESS, DUO.HMB, 0, expiry, {"from": subject})
    assert consent.isInForce(subject, dataset, DUO.POA, 0, user)
    assert not consent.isInForce(subject, dataset, DUO.POA, 0, stranger)
    assert not consent.isInForce(subject, dataset, DUO.POA, 0, ZERO_ADDRESS)
    for grantee in (user, stranger, ZERO_ADDRESS):
        assert consent.isInForce(subject, dataset, DUO.HMB, 0, grantee)


def test_in_force_batch(consent, subject, delegate, stranger, dataset):
    expiry = latest_timestamp() + DAY
    consent.grant(subject, Scope.DATASET, dataset, ZERO_ADDRESS, DUO.GRU, 0, expiry, {"from": subject})
    consent.grant(stranger, Scope.DATASET, dataset, ZERO_ADDRESS, DUO.POA, 0, expiry, {"from": stranger})
    out = consent.inForceBatch([subject, delegate, stranger], dataset, DUO.HMB, 0, ZERO_ADDRESS)
    assert plain(out) == [True, False, False]
    out = consent.inForceBatch([subject, delegate, stranger], dataset, DUO.POA, 0, ZERO_ADDRESS)
    assert plain(out) == [True, False, True]


G = DUO
COVERAGE = [
    # (consent purposes, consent disease, use, use disease, covered)
    (G.NRES, 0, G.GRU, 0, True),
    (G.NRES, 0, G.POA | G.USE_COMMERCIAL, 0, True),
    (G.NRES, 0, G.DS, 9, True),
    (G.GRU, 0, G.GRU, 0, True),
    (G.GRU, 0, G.HMB, 0, True),
    (G.GRU, 0, G.DS, 5, True),
    (G.GRU, 0, G.POA, 0, True),
    (G.HMB, 0, G.HMB, 0, True),
    (G.HMB, 0, G.DS, 5, True),
    (G.HMB, 0, G.GRU, 0, False),
    (G.HMB, 0, G.POA, 0, False),
    (G.DS, 5, G.DS, 5, True),
    (G.DS, 5, G.DS, 6, False),
    (G.DS, 5, G.HMB, 0, False),
    (G.DS, 5, G.GRU, 0, False),
    (G.POA, 0, G.POA, 0, True),
    (G.POA, 0, G.HMB, 0, False),
    (G.POA, 0, G.GRU, 0, False),
    (G.HMB | G.POA, 0, G.POA, 0, True),
    (G.HMB | G.DS, 5, G.DS, 6, True),
    (G.GRU | G.NCU, 0, G.GRU, 0, True),
    (G.GRU | G.NCU, 0, G.GRU | G.USE_COMMERCIAL, 0, False),
    (G.GRU | G.NCU, 0, G.GRU | G.USE_FOR_PROFIT, 0, True),
    (G.GRU | G.NPU, 0, G.GRU | G.USE_FOR_PROFIT, 0, False),
    (G.GRU | G.NPU, 0, G.GRU | G.USE_COMMERCIAL, 0, True),
    (G.HMB | G.IRB, 0, G.HMB, 0, False),
    (G.HMB | G.IRB, 0, G.HMB | G.USE_ETHICS_APPROVED, 0, True),
    (G.GRU | G.PUB, 0, G.GRU, 0, False),
    (G.GRU | G.PUB, 0, G.GRU | G.USE_PUBLISHES, 0, True),
    (G.HMB | G.GSO, 0, G.DS | G.USE_GENETIC, 3, True),
    (G.HMB | G.GSO, 0, G.DS, 3, False),
    (G.GRU | G.COL, 0, G.POA | G.USE_COLLABORATION, 0, True),
    (G.GRU | G.COL, 0, G.POA, 0, False),
    (G.GRU | G.RTN, 0, G.GRU | G.USE_RETURNS_RESULTS, 0, True),
    (G.GRU | G.RTN, 0, G.GRU, 0, False),
    (G.GRU | G.NMDS, 0, G.GRU, 0, True),
    (G.GRU | G.NMDS, 0, G.GRU | G.USE_METHODS, 0, False),
    (G.HMB | G.IRB | G.PUB, 0, G.HMB | G.USE_ETHICS_APPROVED, 0, False),
    (G.HMB | G.IRB | G.PUB, 0, G.DS | G.USE_ETHICS_APPROVED | G.USE_PUBLISHES, 8, True),
    (G.NRES | G.NCU, 0, G.HMB | G.USE_COMMERCIAL, 0, False),
]


def test_duo_coverage_table(consent, register, subject, holder):
    """DataUse.covers through isInForce, one dataset-scoped consent per table row."""
    expiry = latest_timestamp() + DAY
    rows = []
    for purposes, disease, use, use_disease, covered in COVERAGE:
        dataset = register(holder)
        consent.grant(subject, Scope.DATASET, dataset, ZERO_ADDRESS, purposes, disease, expiry, {"from": subject})
        rows.append((dataset, use, use_disease, covered))
    got = [bool(consent.isInForce(subject, d, use, ud, ZERO_ADDRESS)) for d, use, ud, _ in rows]
    assert got == [covered for *_, covered in rows]


def test_status_of_dataset_does_not_change_consent(consent, datasets, subject, holder, auditor, dataset):
    """isInForce answers about consent only: suspension is enforced by the access and usage registries."""
    consent.grant(
        subject, Scope.DATASET, dataset, ZERO_ADDRESS, DUO.GRU, 0, latest_timestamp() + DAY, {"from": subject}
    )
    datasets.suspend(dataset, ZERO32, {"from": auditor})
    assert datasets.accessInfo(dataset)[2] == Status.SUSPENDED
    assert consent.isInForce(subject, dataset, DUO.GRU, 0, ZERO_ADDRESS)


# ------------------------------------------------------------------------------------------ metadata


def test_typehashes_match_message_types(consent):
    for primary, getter in (
        ("Grant", consent.GRANT_TYPEHASH),
        ("Renew", consent.RENEW_TYPEHASH),
        ("Withdraw", consent.WITHDRAW_TYPEHASH),
        ("AppointDelegate", consent.APPOINT_DELEGATE_TYPEHASH),
        ("RevokeDelegate", consent.REVOKE_DELEGATE_TYPEHASH),
    ):
        assert primary in CONSENT_TYPES
        assert plain(getter()) == plain(hex32(keccak(text=consent_type_string(primary))))


def test_domain_separator(consent, chain):
    domain_typehash = keccak(text="EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")
    expected = keccak(
        eth_abi.encode(
            ["bytes32", "bytes32", "bytes32", "uint256", "address"],
            [domain_typehash, keccak(text="MedLedgerConsent"), keccak(text="1"), chain.id, consent.address],
        )
    )
    assert plain(consent.domainSeparator()) == plain(hex32(expected))
    fields = consent.eip712Domain()
    assert fields[1] == "MedLedgerConsent" and fields[2] == "1" and fields[3] == chain.id
    assert consent.datasets() != ZERO_ADDRESS


def test_malformed_purpose_is_never_in_force(consent, subject, dataset):
    """A query with no research category (or DS without a disease) is not a use: false, even
    under a no-restriction consent."""
    consent.grant(
        subject, Scope.DATASET, dataset, ZERO_ADDRESS, DUO.NRES, 0, latest_timestamp() + DAY, {"from": subject}
    )
    assert consent.isInForce(subject, dataset, DUO.GRU, 0, ZERO_ADDRESS)
    assert not consent.isInForce(subject, dataset, 0, 0, ZERO_ADDRESS)
    assert not consent.isInForce(subject, dataset, DUO.DS, 0, ZERO_ADDRESS)
    assert plain(consent.inForceBatch([subject], dataset, 0, 0, ZERO_ADDRESS)) == [False]
