"""UsageRegistry: a use is recorded only where the tier's rule or an approval in force allows it."""

import pytest
from chain_helpers import (
    DUO,
    USER_ROLE,
    ZERO32,
    Status,
    Tier,
    assert_event,
    b32,
    expect_revert,
    jump,
    latest_timestamp,
    plain,
)

DAY = 86400


@pytest.fixture(scope="module")
def open_ds(register, holder):
    return register(holder, tier=Tier.OPEN)


@pytest.fixture(scope="module")
def registered_ds(register, holder):
    return register(holder, tier=Tier.REGISTERED)


@pytest.fixture(scope="module")
def controlled_ds(register, holder):
    return register(holder, tier=Tier.CONTROLLED)


@pytest.fixture(scope="module")
def closed_ds(register, holder):
    return register(holder, tier=Tier.CLOSED)


def approve(access, reviewer, user, dataset, purpose=DUO.HMB, disease=0, days=30):
    rid = access.requestAccess(dataset, purpose, disease, b32("protocol"), {"from": user}).return_value
    access.approve(rid, b32("conditions"), latest_timestamp() + days * DAY, {"from": reviewer})
    return rid


def test_open_dataset_used_by_anyone(usage, open_ds, stranger, user):
    tx = usage.recordUse(open_ds, 0, DUO.GRU, 0, b32("result"), {"from": stranger})
    assert_event(
        tx,
        "UseRecorded",
        dataset=open_ds,
        user=stranger,
        requestId=0,
        purpose=DUO.GRU,
        diseaseCode=0,
        resultDigest=b32("result"),
        useNumber=1,
        emitter=usage,
    )
    assert plain(usage.statsOf(open_ds)) == [1, 1]
    assert usage.hasUsed(open_ds, stranger) and not usage.hasUsed(open_ds, user)
    tx = usage.recordUse(open_ds, 0, DUO.POA, 0, ZERO32, {"from": stranger})
    assert_event(tx, "UseRecorded", useNumber=2, resultDigest=ZERO32)
    assert plain(usage.statsOf(open_ds)) == [2, 1]
    usage.recordUse(open_ds, 0, DUO.DS | DUO.USE_COMMERCIAL, 77, ZERO32, {"from": user})
    assert plain(usage.statsOf(open_ds)) == [3, 2]


def test_registered_dataset_needs_user_role(usage, registered_ds, user, parties):
    usage.recordUse(registered_ds, 0, DUO.HMB, 0, ZERO32, {"from": user})
    for name in ("reviewer", "auditor", "subject", "stranger", "admin"):
        with expect_revert("MissingRole(bytes32,address)", USER_ROLE, parties[name]):
            usage.recordUse(registered_ds, 0, DUO.HMB, 0, ZERO32, {"from": parties[name]})
    with expect_revert("UnexpectedRequestId(uint256)", 3):
        usage.recordUse(registered_ds, 3, DUO.HMB, 0, ZERO32, {"from": user})


def test_unexpected_request_id_on_open_and_own_datasets(usage, open_ds, closed_ds, holder, stranger):
    with expect_revert("UnexpectedRequestId(uint256)", 1):
        usage.recordUse(open_ds, 1, DUO.HMB, 0, ZERO32, {"from": stranger})
    with expect_revert("UnexpectedRequestId(uint256)", 1):
        usage.recordUse(closed_ds, 1, DUO.HMB, 0, ZERO32, {"from": holder})


def test_holder_uses_own_datasets_of_every_tier(usage, holder, open_ds, registered_ds, controlled_ds, closed_ds):
    for dataset in (open_ds, registered_ds, controlled_ds, closed_ds):
        tx = usage.recordUse(dataset, 0, DUO.GRU, 0, ZERO32, {"from": holder})
        assert_event(tx, "UseRecorded", dataset=dataset, user=holder, useNumber=1)


def test_closed_dataset_only_holder(usage, closed_ds, parties):
    for name in ("user", "reviewer", "auditor", "stranger"):
        with expect_revert("DatasetNotShared(bytes32)", closed_ds):
            usage.recordUse(closed_ds, 0, DUO.GRU, 0, ZERO32, {"from": parties[name]})


def test_controlled_dataset_with_approval(usage, access, reviewer, user, controlled_ds):
    rid = approve(access, reviewer, user, controlled_ds, DUO.HMB | DUO.USE_PUBLISHES)
    tx = usage.recordUse(controlled_ds, rid, DUO.HMB | DUO.USE_PUBLISHES, 0, b32("paper"), {"from": user})
    assert_event(tx, "UseRecorded", dataset=controlled_ds, user=user, requestId=rid, useNumber=1)
    # narrower category: HMB approval covers disease-specific research
    usage.recordUse(controlled_ds, rid, DUO.DS | DUO.USE_PUBLISHES, 99, ZERO32, {"from": user})
    assert plain(usage.statsOf(controlled_ds)) == [2, 1]


def test_controlled_dataset_purpose_limits(usage, access, reviewer, user, controlled_ds):
    hmb = approve(access, reviewer, user, controlled_ds, DUO.HMB | DUO.USE_PUBLISHES)
    for purpose, disease in (
        (DUO.GRU | DUO.USE_PUBLISHES, 0),  # wider category
        (DUO.POA | DUO.USE_PUBLISHES, 0),  # other category
        (DUO.HMB, 0),  # attributes differ from the approved ones
        (DUO.HMB | DUO.USE_PUBLISHES | DUO.USE_COMMERCIAL, 0),
    ):
        with expect_revert("PurposeNotApproved(uint256,uint64,uint32)", hmb, purpose, disease):
            usage.recordUse(controlled_ds, hmb, purpose, disease, ZERO32, {"from": user})
    ds = approve(access, reviewer, user, controlled_ds, DUO.DS, 5)
    usage.recordUse(controlled_ds, ds, DUO.DS, 5, ZERO32, {"from": user})
    with expect_revert("PurposeNotApproved(uint256,uint64,uint32)", ds, DUO.DS, 6):
        usage.recordUse(controlled_ds, ds, DUO.DS, 6, ZERO32, {"from": user})
    with expect_revert("PurposeNotApproved(uint256,uint64,uint32)", ds, DUO.HMB, 0):
        usage.recordUse(controlled_ds, ds, DUO.HMB, 0, ZERO32, {"from": user})
    gru = approve(access, reviewer, user, controlled_ds, DUO.GRU)
    for purpose, disease in ((DUO.GRU, 0), (DUO.HMB, 0), (DUO.DS, 3), (DUO.POA, 0)):
        usage.recordUse(controlled_ds, gru, purpose, disease, ZERO32, {"from": user})


def test_controlled_dataset_without_valid_approval(
    usage, access, datasets, register, reviewer, holder, user, stranger, roles, admin, controlled_ds
):
    with expect_revert("NoApproval(bytes32,address,uint256)", controlled_ds, user, 0):
        usage.recordUse(controlled_ds, 0, DUO.HMB, 0, ZERO32, {"from": user})
    with expect_revert("NoApproval(bytes32,address,uint256)", controlled_ds, user, 99):
        usage.recordUse(controlled_ds, 99, DUO.HMB, 0, ZERO32, {"from": user})
    pending = access.requestAccess(controlled_ds, DUO.HMB, 0, b32("p"), {"from": user}).return_value
    with expect_revert("NoApproval(bytes32,address,uint256)", controlled_ds, user, pending):
        usage.recordUse(controlled_ds, pending, DUO.HMB, 0, ZERO32, {"from": user})
    access.deny(pending, ZERO32, {"from": reviewer})
    with expect_revert("NoApproval(bytes32,address,uint256)", controlled_ds, user, pending):
        usage.recordUse(controlled_ds, pending, DUO.HMB, 0, ZERO32, {"from": user})
    rid = approve(access, reviewer, user, controlled_ds)
    # someone else's approval
    roles.grantRole(USER_ROLE, stranger, {"from": admin})
    with expect_revert("NoApproval(bytes32,address,uint256)", controlled_ds, stranger, rid):
        usage.recordUse(controlled_ds, rid, DUO.HMB, 0, ZERO32, {"from": stranger})
    # another dataset's approval
    other = register(holder, tier=Tier.CONTROLLED)
    with expect_revert("NoApproval(bytes32,address,uint256)", other, user, rid):
        usage.recordUse(other, rid, DUO.HMB, 0, ZERO32, {"from": user})
    access.revoke(rid, ZERO32, {"from": reviewer})
    with expect_revert("NoApproval(bytes32,address,uint256)", controlled_ds, user, rid):
        usage.recordUse(controlled_ds, rid, DUO.HMB, 0, ZERO32, {"from": user})


def test_expired_approval(usage, access, reviewer, user, controlled_ds):
    rid = approve(access, reviewer, user, controlled_ds, days=1)
    usage.recordUse(controlled_ds, rid, DUO.HMB, 0, ZERO32, {"from": user})
    jump(DAY + 1)
    with expect_revert("NoApproval(bytes32,address,uint256)", controlled_ds, user, rid):
        usage.recordUse(controlled_ds, rid, DUO.HMB, 0, ZERO32, {"from": user})


def test_dataset_state_errors(usage, datasets, register, holder, auditor, stranger, open_ds):
    with expect_revert("DatasetNotFound(bytes32)", b32("none")):
        usage.recordUse(b32("none"), 0, DUO.GRU, 0, ZERO32, {"from": stranger})
    datasets.suspend(open_ds, ZERO32, {"from": auditor})
    for account in (stranger, holder):
        with expect_revert("DatasetNotUsable(bytes32,uint8)", open_ds, Status.SUSPENDED):
            usage.recordUse(open_ds, 0, DUO.GRU, 0, ZERO32, {"from": account})
    datasets.reinstate(open_ds, {"from": auditor})
    usage.recordUse(open_ds, 0, DUO.GRU, 0, ZERO32, {"from": stranger})
    datasets.retract(open_ds, ZERO32, {"from": holder})
    with expect_revert("DatasetNotUsable(bytes32,uint8)", open_ds, Status.RETRACTED):
        usage.recordUse(open_ds, 0, DUO.GRU, 0, ZERO32, {"from": stranger})


def test_deprecated_dataset_still_usable(usage, datasets, register, holder, stranger, open_ds):
    datasets.deprecate(open_ds, register(holder), {"from": holder})
    usage.recordUse(open_ds, 0, DUO.GRU, 0, ZERO32, {"from": stranger})


def test_suspended_user_records_no_use(usage, access, reviewer, auditor, user, holder, controlled_ds, open_ds):
    rid = approve(access, reviewer, user, controlled_ds)
    access.suspendUser(user, b32("r"), {"from": auditor})
    with expect_revert("UserSuspended(address)", user):
        usage.recordUse(controlled_ds, rid, DUO.HMB, 0, ZERO32, {"from": user})
    with expect_revert("UserSuspended(address)", user):
        usage.recordUse(open_ds, 0, DUO.HMB, 0, ZERO32, {"from": user})
    access.suspendUser(holder, b32("r"), {"from": auditor})
    with expect_revert("UserSuspended(address)", holder):
        usage.recordUse(open_ds, 0, DUO.HMB, 0, ZERO32, {"from": holder})
    access.reinstateUser(user, {"from": auditor})
    usage.recordUse(controlled_ds, rid, DUO.HMB, 0, ZERO32, {"from": user})


@pytest.mark.parametrize(
    "purpose,disease",
    [(DUO.NRES, 0), (0, 0), (DUO.HMB | DUO.POA, 0), (DUO.DS, 0), (DUO.GRU, 3), (DUO.GRU | DUO.IRB, 0)],
)
def test_invalid_purpose_checked_first(usage, purpose, disease, stranger):
    with expect_revert("InvalidPurpose(uint64,uint32)", purpose, disease):
        usage.recordUse(b32("none"), 0, purpose, disease, ZERO32, {"from": stranger})


def test_wiring(usage, access, datasets, roles):
    assert usage.access() == access and usage.datasets() == datasets and usage.roles() == roles
