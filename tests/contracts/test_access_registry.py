"""AccessRegistry: access requests, reviewer decisions, embargo and its override, user suspension."""

import pytest
from chain_helpers import (
    AUDITOR_ROLE,
    DUO,
    REVIEWER_ROLE,
    USER_ROLE,
    ZERO32,
    RequestStatus,
    Status,
    Tier,
    assert_event,
    b32,
    expect_revert,
    jump,
    latest_timestamp,
    plain,
    set_next_timestamp,
)

DAY = 86400
REQUEST_FIELDS = ("requester", "status", "expiry", "requestedAt", "dataset", "purpose", "disease", "decidedAt")


def request_of(access, request_id):
    return dict(zip(REQUEST_FIELDS, access.getRequest(request_id), strict=True))


@pytest.fixture(scope="module")
def controlled(register, holder):
    return register(holder, tier=Tier.CONTROLLED)


@pytest.fixture(scope="module")
def embargoed(register, holder):
    return register(holder, tier=Tier.CONTROLLED, embargo_end=latest_timestamp() + 30 * DAY)


def request(access, user, dataset, purpose=DUO.HMB, disease=0, protocol=None):
    tx = access.requestAccess(dataset, purpose, disease, protocol or b32("protocol"), {"from": user})
    return tx.return_value


# ------------------------------------------------------------------------------------------ requestAccess


def test_request_access(access, user, controlled):
    protocol = b32("protocol-v1")
    tx = access.requestAccess(controlled, DUO.DS | DUO.USE_PUBLISHES, 4242, protocol, {"from": user})
    assert tx.return_value == 1
    assert access.requestCount() == 1
    assert_event(
        tx,
        "AccessRequested",
        requestId=1,
        dataset=controlled,
        requester=user,
        purpose=DUO.DS | DUO.USE_PUBLISHES,
        diseaseCode=4242,
        protocolDigest=protocol,
        emitter=access,
    )
    assert plain(request_of(access, 1)) == plain(
        {
            "requester": user,
            "status": RequestStatus.PENDING,
            "expiry": 0,
            "requestedAt": tx.block_number,
            "dataset": controlled,
            "purpose": DUO.DS | DUO.USE_PUBLISHES,
            "disease": 4242,
            "decidedAt": 0,
        }
    )
    assert request(access, user, controlled) == 2
    got = access.getRequests([1, 2, 3])
    assert got[0][1] == RequestStatus.PENDING and got[1][1] == RequestStatus.PENDING
    assert got[2][1] == RequestStatus.NONE


def test_request_on_deprecated_dataset(access, datasets, register, holder, user, controlled):
    datasets.deprecate(controlled, register(holder), {"from": holder})
    assert request(access, user, controlled) == 1


def test_request_needs_user_role(access, parties, controlled):
    for name in ("admin", "holder", "reviewer", "auditor", "subject", "stranger"):
        with expect_revert("MissingRole(bytes32,address)", USER_ROLE, parties[name]):
            access.requestAccess(controlled, DUO.HMB, 0, b32("p"), {"from": parties[name]})


def test_request_by_suspended_user(access, auditor, user, controlled):
    access.suspendUser(user, b32("misuse"), {"from": auditor})
    with expect_revert("UserSuspended(address)", user):
        access.requestAccess(controlled, DUO.HMB, 0, b32("p"), {"from": user})


def test_request_dataset_errors(access, datasets, register, holder, auditor, user):
    unknown = b32("unknown")
    with expect_revert("DatasetNotFound(bytes32)", unknown):
        access.requestAccess(unknown, DUO.HMB, 0, b32("p"), {"from": user})
    suspended = register(holder, tier=Tier.CONTROLLED)
    datasets.suspend(suspended, ZERO32, {"from": auditor})
    with expect_revert("DatasetNotUsable(bytes32,uint8)", suspended, Status.SUSPENDED):
        access.requestAccess(suspended, DUO.HMB, 0, b32("p"), {"from": user})
    retracted = register(holder, tier=Tier.CONTROLLED)
    datasets.retract(retracted, ZERO32, {"from": holder})
    with expect_revert("DatasetNotUsable(bytes32,uint8)", retracted, Status.RETRACTED):
        access.requestAccess(retracted, DUO.HMB, 0, b32("p"), {"from": user})
    for tier in (Tier.OPEN, Tier.REGISTERED, Tier.CLOSED):
        root = register(holder, tier=tier)
        with expect_revert("AccessNotRequestable(bytes32,uint8)", root, tier):
            access.requestAccess(root, DUO.HMB, 0, b32("p"), {"from": user})


@pytest.mark.parametrize(
    "purpose,disease",
    [
        (DUO.NRES, 0),  # NRES is a consent permission, not a use
        (0, 0),
        (DUO.GRU | DUO.HMB, 0),  # two categories
        (DUO.DS, 0),  # DS without disease
        (DUO.HMB, 12),  # disease without DS
        (DUO.GRU | DUO.NCU, 0),  # a consent modifier in a use
        (DUO.GRU | (1 << 40), 0),  # unknown attribute bit
        (1 << 5, 0),
    ],
)
def test_request_invalid_purpose(access, user, controlled, purpose, disease):
    with expect_revert("InvalidPurpose(uint64,uint32)", purpose, disease):
        access.requestAccess(controlled, purpose, disease, b32("p"), {"from": user})


def test_request_missing_protocol(access, user, controlled):
    with expect_revert("MissingDigest()"):
        access.requestAccess(controlled, DUO.HMB, 0, ZERO32, {"from": user})


# ------------------------------------------------------------------------------------------ approve / deny


def test_approve(access, reviewer, user, controlled):
    rid = request(access, user, controlled)
    expiry = latest_timestamp() + 90 * DAY
    tx = access.approve(rid, b32("conditions"), expiry, {"from": reviewer})
    assert_event(
        tx, "AccessApproved", requestId=rid, reviewer=reviewer, conditionsDigest=b32("conditions"), expiry=expiry
    )
    r = request_of(access, rid)
    assert (r["status"], r["expiry"], r["decidedAt"]) == (RequestStatus.APPROVED, expiry, tx.block_number)
    assert access.isApprovalInForce(rid)
    jump(91 * DAY)
    assert not access.isApprovalInForce(rid)


def test_deny(access, reviewer, user, controlled):
    rid = request(access, user, controlled)
    tx = access.deny(rid, b32("no ethics approval"), {"from": reviewer})
    assert_event(tx, "AccessDenied", requestId=rid, reviewer=reviewer, reasonDigest=b32("no ethics approval"))
    r = request_of(access, rid)
    assert (r["status"], r["decidedAt"]) == (RequestStatus.DENIED, tx.block_number)
    assert not access.isApprovalInForce(rid)


def test_decision_errors(access, reviewer, user, controlled, parties):
    with expect_revert("RequestNotFound(uint256)", 7):
        access.approve(7, b32("c"), latest_timestamp() + DAY, {"from": reviewer})
    with expect_revert("RequestNotFound(uint256)", 7):
        access.deny(7, b32("c"), {"from": reviewer})
    rid = request(access, user, controlled)
    for name in ("admin", "holder", "user", "auditor", "stranger"):
        with expect_revert("MissingRole(bytes32,address)", REVIEWER_ROLE, parties[name]):
            access.approve(rid, b32("c"), latest_timestamp() + DAY, {"from": parties[name]})
        with expect_revert("MissingRole(bytes32,address)", REVIEWER_ROLE, parties[name]):
            access.deny(rid, b32("c"), {"from": parties[name]})
    with expect_revert("MissingDigest()"):
        access.approve(rid, ZERO32, latest_timestamp() + DAY, {"from": reviewer})
    t = latest_timestamp() + 5
    set_next_timestamp(t)
    with expect_revert("ExpiryNotInFuture(uint40,uint256)", t, t):
        access.approve(rid, b32("c"), t, {"from": reviewer})
    access.approve(rid, b32("c"), latest_timestamp() + DAY, {"from": reviewer})
    with expect_revert("InvalidRequestStatus(uint256,uint8)", rid, RequestStatus.APPROVED):
        access.approve(rid, b32("c"), latest_timestamp() + DAY, {"from": reviewer})
    with expect_revert("InvalidRequestStatus(uint256,uint8)", rid, RequestStatus.APPROVED):
        access.deny(rid, b32("c"), {"from": reviewer})
    denied = request(access, user, controlled)
    access.deny(denied, ZERO32, {"from": reviewer})
    with expect_revert("InvalidRequestStatus(uint256,uint8)", denied, RequestStatus.DENIED):
        access.approve(denied, b32("c"), latest_timestamp() + DAY, {"from": reviewer})


def test_no_approval_for_suspended_user_but_denial_allowed(access, reviewer, auditor, user, controlled):
    rid = request(access, user, controlled)
    other = request(access, user, controlled)
    access.suspendUser(user, b32("r"), {"from": auditor})
    with expect_revert("UserSuspended(address)", user):
        access.approve(rid, b32("c"), latest_timestamp() + DAY, {"from": reviewer})
    access.deny(other, b32("r"), {"from": reviewer})
    access.reinstateUser(user, {"from": auditor})
    access.approve(rid, b32("c"), latest_timestamp() + DAY, {"from": reviewer})


def test_no_approval_on_suspended_or_retracted_dataset_but_denial_closes_requests(
    access, datasets, reviewer, auditor, holder, user, controlled
):
    """Suspended or retracted datasets get no approvals; pending requests on them can be denied."""
    rid = request(access, user, controlled)
    other = request(access, user, controlled)
    datasets.suspend(controlled, ZERO32, {"from": auditor})
    with expect_revert("DatasetNotUsable(bytes32,uint8)", controlled, Status.SUSPENDED):
        access.approve(rid, b32("c"), latest_timestamp() + DAY, {"from": reviewer})
    tx = access.deny(rid, b32("c"), {"from": reviewer})
    assert_event(tx, "AccessDenied", requestId=rid, reviewer=reviewer)
    datasets.retract(controlled, ZERO32, {"from": holder})
    with expect_revert("DatasetNotUsable(bytes32,uint8)", controlled, Status.RETRACTED):
        access.approve(other, b32("c"), latest_timestamp() + DAY, {"from": reviewer})
    tx = access.deny(other, b32("c"), {"from": reviewer})
    assert_event(tx, "AccessDenied", requestId=other, reviewer=reviewer)


# ------------------------------------------------------------------------------------------ embargo


def test_embargo_only_holder_decides(access, datasets, reviewer, holder, user, embargoed):
    embargo_end = datasets.accessInfo(embargoed)[3]
    rid = request(access, user, embargoed)
    with expect_revert("DatasetEmbargoed(bytes32,uint32,address)", embargoed, embargo_end, holder):
        access.approve(rid, b32("c"), latest_timestamp() + DAY, {"from": reviewer})
    with expect_revert("DatasetEmbargoed(bytes32,uint32,address)", embargoed, embargo_end, holder):
        access.deny(rid, b32("c"), {"from": reviewer})
    tx = access.approve(rid, b32("c"), latest_timestamp() + DAY, {"from": holder})
    assert_event(tx, "AccessApproved", requestId=rid, reviewer=holder)
    other = request(access, user, embargoed)
    tx = access.deny(other, b32("r"), {"from": holder})
    assert_event(tx, "AccessDenied", requestId=other, reviewer=holder)


def test_embargo_lapses_with_time(access, reviewer, holder, user, embargoed):
    rid = request(access, user, embargoed)
    jump(31 * DAY)
    with expect_revert("MissingRole(bytes32,address)", REVIEWER_ROLE, holder):
        access.approve(rid, b32("c"), latest_timestamp() + DAY, {"from": holder})
    access.approve(rid, b32("c"), latest_timestamp() + DAY, {"from": reviewer})


def test_override_embargo(access, auditor, reviewer, holder, user, embargoed):
    rid = request(access, user, embargoed)
    tx = access.overrideEmbargo(embargoed, b32("outbreak"), {"from": auditor})
    assert_event(tx, "EmbargoOverridden", dataset=embargoed, auditor=auditor, reasonDigest=b32("outbreak"))
    assert access.embargoOverridden(embargoed)
    # after the override reviewers decide, and the holder (no reviewer role) no longer does
    with expect_revert("MissingRole(bytes32,address)", REVIEWER_ROLE, holder):
        access.approve(rid, b32("c"), latest_timestamp() + DAY, {"from": holder})
    access.approve(rid, b32("c"), latest_timestamp() + DAY, {"from": reviewer})


def test_override_embargo_errors(access, datasets, register, auditor, holder, parties, embargoed, controlled):
    for name in ("admin", "holder", "reviewer", "user", "stranger"):
        with expect_revert("MissingRole(bytes32,address)", AUDITOR_ROLE, parties[name]):
            access.overrideEmbargo(embargoed, b32("r"), {"from": parties[name]})
    with expect_revert("DatasetNotFound(bytes32)", b32("none")):
        access.overrideEmbargo(b32("none"), b32("r"), {"from": auditor})
    with expect_revert("NotEmbargoed(bytes32)", controlled):
        access.overrideEmbargo(controlled, b32("r"), {"from": auditor})
    with expect_revert("MissingDigest()"):
        access.overrideEmbargo(embargoed, ZERO32, {"from": auditor})
    access.overrideEmbargo(embargoed, b32("r"), {"from": auditor})
    with expect_revert("NotEmbargoed(bytes32)", embargoed):
        access.overrideEmbargo(embargoed, b32("r"), {"from": auditor})
    lapsed = register(holder, tier=Tier.CONTROLLED, embargo_end=latest_timestamp() + 10)
    jump(20)
    with expect_revert("NotEmbargoed(bytes32)", lapsed):
        access.overrideEmbargo(lapsed, b32("r"), {"from": auditor})
    suspended = register(holder, tier=Tier.CONTROLLED, embargo_end=latest_timestamp() + DAY)
    datasets.suspend(suspended, ZERO32, {"from": auditor})
    with expect_revert("DatasetNotUsable(bytes32,uint8)", suspended, Status.SUSPENDED):
        access.overrideEmbargo(suspended, b32("r"), {"from": auditor})


# ------------------------------------------------------------------------------------------ revoke


def approved(access, reviewer, user, dataset):
    rid = request(access, user, dataset)
    access.approve(rid, b32("c"), latest_timestamp() + DAY, {"from": reviewer})
    return rid


@pytest.mark.parametrize("by", ["reviewer", "holder"])
def test_revoke(access, parties, controlled, by):
    rid = approved(access, parties["reviewer"], parties["user"], controlled)
    tx = access.revoke(rid, b32("breach"), {"from": parties[by]})
    assert_event(tx, "AccessRevoked", requestId=rid, reviewer=parties[by], reasonDigest=b32("breach"))
    r = request_of(access, rid)
    assert (r["status"], r["decidedAt"]) == (RequestStatus.REVOKED, tx.block_number)
    assert not access.isApprovalInForce(rid)


def test_revoke_errors(access, reviewer, user, controlled, parties):
    with expect_revert("RequestNotFound(uint256)", 5):
        access.revoke(5, ZERO32, {"from": reviewer})
    pending = request(access, user, controlled)
    with expect_revert("InvalidRequestStatus(uint256,uint8)", pending, RequestStatus.PENDING):
        access.revoke(pending, ZERO32, {"from": reviewer})
    rid = approved(access, reviewer, user, controlled)
    for name in ("admin", "user", "auditor", "subject", "stranger"):
        with expect_revert("MissingRole(bytes32,address)", REVIEWER_ROLE, parties[name]):
            access.revoke(rid, ZERO32, {"from": parties[name]})
    access.revoke(rid, ZERO32, {"from": reviewer})
    with expect_revert("InvalidRequestStatus(uint256,uint8)", rid, RequestStatus.REVOKED):
        access.revoke(rid, ZERO32, {"from": reviewer})


def test_revoke_allowed_under_embargo_and_suspension(
    access, datasets, reviewer, holder, auditor, user, embargoed, controlled
):
    """Revoking only takes access away, so neither embargo nor suspension blocks it."""
    rid = request(access, user, embargoed)
    access.approve(rid, b32("c"), latest_timestamp() + DAY, {"from": holder})
    access.revoke(rid, ZERO32, {"from": reviewer})
    rid = approved(access, reviewer, user, controlled)
    datasets.suspend(controlled, ZERO32, {"from": auditor})
    access.revoke(rid, ZERO32, {"from": holder})


def test_revoke_expired_approval(access, reviewer, user, controlled):
    rid = approved(access, reviewer, user, controlled)
    jump(2 * DAY)
    access.revoke(rid, ZERO32, {"from": reviewer})


# ------------------------------------------------------------------------------------------ users


def test_suspend_and_reinstate_user(access, auditor, user):
    tx = access.suspendUser(user, b32("misuse"), {"from": auditor})
    assert_event(tx, "UserSuspendedBy", user=user, auditor=auditor, reasonDigest=b32("misuse"))
    assert access.isSuspended(user)
    tx = access.reinstateUser(user, {"from": auditor})
    assert_event(tx, "UserReinstated", user=user, auditor=auditor)
    assert not access.isSuspended(user)


def test_user_suspension_errors(access, auditor, user, parties):
    for name in ("admin", "holder", "reviewer", "user", "stranger"):
        with expect_revert("MissingRole(bytes32,address)", AUDITOR_ROLE, parties[name]):
            access.suspendUser(user, ZERO32, {"from": parties[name]})
        with expect_revert("MissingRole(bytes32,address)", AUDITOR_ROLE, parties[name]):
            access.reinstateUser(user, {"from": parties[name]})
    with expect_revert("UserNotSuspended(address)", user):
        access.reinstateUser(user, {"from": auditor})
    access.suspendUser(user, ZERO32, {"from": auditor})
    with expect_revert("UserSuspended(address)", user):
        access.suspendUser(user, ZERO32, {"from": auditor})


def test_wiring(access, datasets, roles, forwarder):
    assert access.datasets() == datasets
    assert access.roles() == roles
    assert access.isTrustedForwarder(forwarder)


def test_override_holds_for_the_overridden_embargo_only(access, datasets, auditor, reviewer, holder, user, embargoed):
    """An override lifts the embargo in force; a new embargo end set later by the holder is not
    overridden."""
    access.overrideEmbargo(embargoed, b32("outbreak"), {"from": auditor})
    assert access.embargoOverridden(embargoed)
    new_end = datasets.accessInfo(embargoed)[3] + 7 * DAY
    datasets.setSharing(embargoed, Tier.CONTROLLED, new_end, {"from": holder})
    assert not access.embargoOverridden(embargoed)
    rid = request(access, user, embargoed)
    end = datasets.accessInfo(embargoed)[3]
    with expect_revert("DatasetEmbargoed(bytes32,uint32,address)", embargoed, end, holder):
        access.approve(rid, b32("c"), latest_timestamp() + DAY, {"from": reviewer})
    access.overrideEmbargo(embargoed, b32("again"), {"from": auditor})
    access.approve(rid, b32("c"), latest_timestamp() + DAY, {"from": reviewer})
