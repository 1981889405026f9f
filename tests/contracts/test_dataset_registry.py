"""DatasetRegistry: registration and lineage, sharing, deprecation, retraction, suspension."""

import brownie
import pytest
from chain_helpers import (
    AUDITOR_ROLE,
    HOLDER_ROLE,
    USER_ROLE,
    ZERO32,
    Status,
    Tier,
    assert_event,
    assert_no_event,
    b32,
    expect_revert,
    latest_timestamp,
    plain,
)

VIEW_FIELDS = (
    "contentRoot",
    "holder",
    "tier",
    "status",
    "classification",
    "embargoEnd",
    "registeredBlock",
    "metadataDigest",
    "activityDigest",
    "subjectRoot",
    "successor",
    "derivedCount",
    "parents",
)


def as_view(record):
    return dict(zip(VIEW_FIELDS, record, strict=True))


def assert_view(record, **expected):
    view = as_view(record)
    for key, value in expected.items():
        assert plain(view[key]) == plain(value), f"{key}: {view[key]!r} != {value!r}"


# ------------------------------------------------------------------------------------------ register


def test_register_primary_dataset(datasets, holder):
    root, meta, activity, subjects = b32("root"), b32("meta"), b32("activity"), b32("subjects")
    embargo = latest_timestamp() + 86400
    tx = datasets.register(root, meta, [], activity, Tier.CONTROLLED, 211, embargo, subjects, {"from": holder})
    assert_event(
        tx,
        "DatasetRegistered",
        contentRoot=root,
        holder=holder,
        metadataDigest=meta,
        activityDigest=activity,
        subjectRoot=subjects,
        parents=[],
        tier=Tier.CONTROLLED,
        classification=211,
        embargoEnd=embargo,
        emitter=datasets,
    )
    assert_no_event(tx, "DerivedFrom")
    assert datasets.exists(root)
    assert_view(
        datasets.getDataset(root),
        contentRoot=root,
        holder=holder,
        tier=Tier.CONTROLLED,
        status=Status.ACTIVE,
        classification=211,
        embargoEnd=embargo,
        registeredBlock=tx.block_number,
        metadataDigest=meta,
        activityDigest=activity,
        subjectRoot=subjects,
        successor=ZERO32,
        derivedCount=0,
        parents=[],
    )
    assert plain(datasets.accessInfo(root)) == plain((holder, Tier.CONTROLLED, Status.ACTIVE, embargo))
    assert datasets.parentsOf(root) == []


def test_register_derived_dataset_records_lineage(datasets, register, holder, user):
    p1, p2, p3 = (register(holder) for _ in range(3))
    parents = sorted([p1, p2, p3])
    child, meta, activity = b32("child"), b32("child-meta"), b32("deidentify")
    tx = datasets.register(child, meta, parents, activity, Tier.REGISTERED, 3, 0, ZERO32, {"from": user})
    assert_event(tx, "DatasetRegistered", contentRoot=child, holder=user, parents=parents, tier=Tier.REGISTERED)
    for i, parent in enumerate(parents):
        assert_event(tx, "DerivedFrom", index=i, count=3, child=child, parent=parent)
    assert datasets.parentsOf(child) == parents
    assert_view(datasets.getDataset(child), holder=user, parents=parents, derivedCount=0)
    for parent in parents:
        assert as_view(datasets.getDataset(parent))["derivedCount"] == 1
    grandchild = register(holder, parents=[child, p1])
    assert as_view(datasets.getDataset(child))["derivedCount"] == 1
    assert as_view(datasets.getDataset(p1))["derivedCount"] == 2
    assert datasets.parentsOf(grandchild) == sorted([child, p1])


def test_register_primary_needs_holder_role(datasets, user, stranger, reviewer):
    for account in (user, stranger, reviewer):
        with expect_revert("MissingRole(bytes32,address)", HOLDER_ROLE, account):
            datasets.register(b32("x"), b32("m"), [], ZERO32, 0, 0, 0, ZERO32, {"from": account})


def test_register_derived_needs_holder_or_user_role(datasets, register, holder, stranger, auditor):
    parent = register(holder)
    for account in (stranger, auditor):
        with expect_revert("MissingRole(bytes32,address)", USER_ROLE, account):
            datasets.register(b32("x"), b32("m"), [parent], ZERO32, 0, 0, 0, ZERO32, {"from": account})
    datasets.register(b32("x"), b32("m"), [parent], ZERO32, 0, 0, 0, ZERO32, {"from": holder})


def test_register_zero_values(datasets, holder):
    with expect_revert("ZeroValue(string)", "contentRoot"):
        datasets.register(ZERO32, b32("m"), [], ZERO32, 0, 0, 0, ZERO32, {"from": holder})
    with expect_revert("ZeroValue(string)", "metadataDigest"):
        datasets.register(b32("r"), ZERO32, [], ZERO32, 0, 0, 0, ZERO32, {"from": holder})


def test_register_duplicate_names_existing_record(datasets, register, holder, user):
    root = register(holder)
    block = datasets.getDataset(root)[6]
    for _account in (holder, user):
        with expect_revert("DatasetAlreadyRegistered(bytes32,address,uint256)", root, holder, block):
            datasets.register(root, b32("other"), [], ZERO32, 0, 0, 0, ZERO32, {"from": holder})
    # derived registration of the same content is refused too
    other = register(holder)
    with expect_revert("DatasetAlreadyRegistered(bytes32,address,uint256)", root, holder, block):
        datasets.register(root, b32("other"), [other], ZERO32, 0, 0, 0, ZERO32, {"from": user})


def test_register_parents_must_be_sorted_and_unique(datasets, register, holder):
    a, b = sorted([register(holder), register(holder)])
    with expect_revert("ParentsNotSorted(uint256)", 1):
        datasets.register(b32("c"), b32("m"), [b, a], ZERO32, 0, 0, 0, ZERO32, {"from": holder})
    with expect_revert("ParentsNotSorted(uint256)", 1):
        datasets.register(b32("c"), b32("m"), [a, a], ZERO32, 0, 0, 0, ZERO32, {"from": holder})
    c = register(holder)
    ordered = sorted([a, b, c])
    with expect_revert("ParentsNotSorted(uint256)", 2):
        datasets.register(
            b32("d"), b32("m"), [ordered[0], ordered[2], ordered[1]], ZERO32, 0, 0, 0, ZERO32, {"from": holder}
        )


def test_register_unknown_parent(datasets, register, holder):
    known = register(holder)
    unknown = b32("never-registered")
    parents = sorted([known, unknown])
    with expect_revert("UnknownParent(bytes32)", unknown):
        datasets.register(b32("c"), b32("m"), parents, ZERO32, 0, 0, 0, ZERO32, {"from": holder})


def test_register_too_many_parents(datasets, holder):
    parents = sorted(b32(f"p{i}") for i in range(257))
    assert datasets.MAX_PARENTS() == 256
    with expect_revert("TooManyParents(uint256,uint256)", 257, 256):
        datasets.register(b32("c"), b32("m"), parents, ZERO32, 0, 0, 0, ZERO32, {"from": holder})


def test_register_through_zero_parent_is_unknown(datasets, holder):
    with expect_revert("UnknownParent(bytes32)", ZERO32):
        datasets.register(b32("c"), b32("m"), [ZERO32], ZERO32, 0, 0, 0, ZERO32, {"from": holder})


# ------------------------------------------------------------------------------------------ views


def test_get_dataset_unknown_reverts_and_batch_view(datasets, register, holder):
    root = register(holder, tier=Tier.CLOSED)
    unknown = b32("unknown")
    with expect_revert("DatasetNotFound(bytes32)", unknown):
        datasets.getDataset(unknown)
    assert not datasets.exists(unknown)
    assert plain(datasets.accessInfo(unknown)) == plain(("0x" + "00" * 20, Tier.OPEN, Status.NONE, 0))
    out = datasets.getDatasets([root, unknown])
    assert_view(out[0], contentRoot=root, holder=holder, status=Status.ACTIVE, tier=Tier.CLOSED)
    assert_view(out[1], contentRoot=unknown, status=Status.NONE, holder="0x" + "00" * 20)


# ------------------------------------------------------------------------------------------ setSharing


def test_set_sharing(datasets, register, holder):
    root = register(holder, tier=Tier.OPEN)
    embargo = latest_timestamp() + 1000
    tx = datasets.setSharing(root, Tier.CONTROLLED, embargo, {"from": holder})
    assert_event(tx, "SharingChanged", contentRoot=root, tier=Tier.CONTROLLED, embargoEnd=embargo)
    assert plain(datasets.accessInfo(root)) == plain((holder, Tier.CONTROLLED, Status.ACTIVE, embargo))


def test_set_sharing_errors(datasets, register, holder, user, auditor):
    root = register(holder)
    unknown = b32("unknown")
    with expect_revert("DatasetNotFound(bytes32)", unknown):
        datasets.setSharing(unknown, Tier.CLOSED, 0, {"from": holder})
    for account in (user, auditor):
        with expect_revert("NotDatasetHolder(bytes32,address,address)", root, account, holder):
            datasets.setSharing(root, Tier.CLOSED, 0, {"from": account})
    datasets.retract(root, b32("why"), {"from": holder})
    with expect_revert("InvalidStatus(bytes32,uint8)", root, Status.RETRACTED):
        datasets.setSharing(root, Tier.CLOSED, 0, {"from": holder})


def test_set_sharing_allowed_while_suspended_or_deprecated(datasets, register, holder, auditor):
    a, b = register(holder), register(holder)
    datasets.deprecate(b, a, {"from": holder})
    datasets.suspend(a, b32("r"), {"from": auditor})
    datasets.setSharing(a, Tier.CLOSED, 0, {"from": holder})
    datasets.setSharing(b, Tier.REGISTERED, 0, {"from": holder})
    assert plain(datasets.accessInfo(a)[1:3]) == plain((Tier.CLOSED, Status.SUSPENDED))
    assert plain(datasets.accessInfo(b)[1:3]) == plain((Tier.REGISTERED, Status.DEPRECATED))


def test_holder_role_not_needed_after_registration(datasets, register, roles, admin, holder):
    """Record ownership, not the role, governs holder operations."""
    root = register(holder)
    roles.revokeRole(HOLDER_ROLE, holder, {"from": admin})
    datasets.setSharing(root, Tier.CLOSED, 0, {"from": holder})
    datasets.retract(root, ZERO32, {"from": holder})


# ------------------------------------------------------------------------------------------ deprecate


def test_deprecate(datasets, register, holder):
    old, new = register(holder), register(holder)
    tx = datasets.deprecate(old, new, {"from": holder})
    assert_event(tx, "DatasetDeprecated", contentRoot=old, successor=new)
    assert_view(datasets.getDataset(old), status=Status.DEPRECATED, successor=new)


def test_deprecate_successor_of_another_holder_allowed(datasets, register, holder, user):
    old = register(holder)
    newer = register(user, parents=[old])
    datasets.deprecate(old, newer, {"from": holder})
    assert_view(datasets.getDataset(old), successor=newer)


def test_deprecate_errors(datasets, register, holder, auditor, user):
    old, new, retracted = register(holder), register(holder), register(holder)
    datasets.retract(retracted, ZERO32, {"from": holder})
    unknown = b32("nope")
    with expect_revert("DatasetNotFound(bytes32)", unknown):
        datasets.deprecate(unknown, new, {"from": holder})
    with expect_revert("NotDatasetHolder(bytes32,address,address)", old, user, holder):
        datasets.deprecate(old, new, {"from": user})
    for successor in (old, unknown, retracted, ZERO32):
        with expect_revert("InvalidSuccessor(bytes32,bytes32)", old, successor):
            datasets.deprecate(old, successor, {"from": holder})
    datasets.deprecate(old, new, {"from": holder})
    with expect_revert("InvalidStatus(bytes32,uint8)", old, Status.DEPRECATED):
        datasets.deprecate(old, new, {"from": holder})
    datasets.suspend(new, ZERO32, {"from": auditor})
    other = register(holder)
    with expect_revert("InvalidStatus(bytes32,uint8)", new, Status.SUSPENDED):
        datasets.deprecate(new, other, {"from": holder})
    with expect_revert("InvalidStatus(bytes32,uint8)", retracted, Status.RETRACTED):
        datasets.deprecate(retracted, other, {"from": holder})


def test_deprecate_to_suspended_or_deprecated_successor_is_refused(datasets, register, holder, auditor):
    """A successor must be active: a deprecated one would let versions form a cycle (A->B, B->A)."""
    a, b, c = register(holder), register(holder), register(holder)
    datasets.suspend(b, ZERO32, {"from": auditor})
    with expect_revert("InvalidSuccessor(bytes32,bytes32)", a, b):
        datasets.deprecate(a, b, {"from": holder})
    datasets.deprecate(a, c, {"from": holder})
    with expect_revert("InvalidSuccessor(bytes32,bytes32)", c, a):
        datasets.deprecate(c, a, {"from": holder})
    assert datasets.getDataset(a)[10] == c


# ------------------------------------------------------------------------------------------ retract


@pytest.mark.parametrize("before", ["active", "deprecated", "suspended"])
def test_retract_from_any_live_status(datasets, register, holder, auditor, before):
    root, other = register(holder), register(holder)
    if before == "deprecated":
        datasets.deprecate(root, other, {"from": holder})
    elif before == "suspended":
        datasets.suspend(root, ZERO32, {"from": auditor})
    reason = b32("consent withdrawn")
    tx = datasets.retract(root, reason, {"from": holder})
    assert_event(tx, "DatasetRetracted", contentRoot=root, reasonDigest=reason)
    assert plain(datasets.accessInfo(root)[2]) == plain(Status.RETRACTED)


def test_retract_errors(datasets, register, holder, user):
    root = register(holder)
    with expect_revert("NotDatasetHolder(bytes32,address,address)", root, user, holder):
        datasets.retract(root, ZERO32, {"from": user})
    with expect_revert("DatasetNotFound(bytes32)", b32("zz")):
        datasets.retract(b32("zz"), ZERO32, {"from": holder})
    datasets.retract(root, ZERO32, {"from": holder})
    with expect_revert("InvalidStatus(bytes32,uint8)", root, Status.RETRACTED):
        datasets.retract(root, ZERO32, {"from": holder})


# ------------------------------------------------------------------------------------------ suspend / reinstate


@pytest.mark.parametrize("before", [Status.ACTIVE, Status.DEPRECATED])
def test_suspend_and_reinstate_restores_status(datasets, register, holder, auditor, before):
    root, other = register(holder), register(holder)
    if before == Status.DEPRECATED:
        datasets.deprecate(root, other, {"from": holder})
    reason = b32("breach")
    tx = datasets.suspend(root, reason, {"from": auditor})
    assert_event(tx, "DatasetSuspended", contentRoot=root, auditor=auditor, reasonDigest=reason)
    assert plain(datasets.accessInfo(root)[2]) == plain(Status.SUSPENDED)
    tx = datasets.reinstate(root, {"from": auditor})
    assert_event(tx, "DatasetReinstated", contentRoot=root, auditor=auditor, restored=before)
    assert plain(datasets.accessInfo(root)[2]) == plain(before)


def test_suspend_errors(datasets, register, holder, auditor, stranger):
    root = register(holder)
    for account in (holder, stranger):
        with expect_revert("MissingRole(bytes32,address)", AUDITOR_ROLE, account):
            datasets.suspend(root, ZERO32, {"from": account})
    with expect_revert("DatasetNotFound(bytes32)", b32("none")):
        datasets.suspend(b32("none"), ZERO32, {"from": auditor})
    datasets.suspend(root, ZERO32, {"from": auditor})
    with expect_revert("InvalidStatus(bytes32,uint8)", root, Status.SUSPENDED):
        datasets.suspend(root, ZERO32, {"from": auditor})
    datasets.retract(root, ZERO32, {"from": holder})
    with expect_revert("InvalidStatus(bytes32,uint8)", root, Status.RETRACTED):
        datasets.suspend(root, ZERO32, {"from": auditor})


def test_reinstate_errors(datasets, register, holder, auditor, user):
    root = register(holder)
    with expect_revert("MissingRole(bytes32,address)", AUDITOR_ROLE, user):
        datasets.reinstate(root, {"from": user})
    with expect_revert("DatasetNotFound(bytes32)", b32("none")):
        datasets.reinstate(b32("none"), {"from": auditor})
    with expect_revert("InvalidStatus(bytes32,uint8)", root, Status.ACTIVE):
        datasets.reinstate(root, {"from": auditor})
    datasets.suspend(root, ZERO32, {"from": auditor})
    datasets.retract(root, ZERO32, {"from": holder})
    with expect_revert("InvalidStatus(bytes32,uint8)", root, Status.RETRACTED):
        datasets.reinstate(root, {"from": auditor})


def test_suspend_twice_after_reinstate_remembers_latest(datasets, register, holder, auditor):
    root, other = register(holder), register(holder)
    datasets.suspend(root, ZERO32, {"from": auditor})
    datasets.reinstate(root, {"from": auditor})
    datasets.deprecate(root, other, {"from": holder})
    datasets.suspend(root, ZERO32, {"from": auditor})
    tx = datasets.reinstate(root, {"from": auditor})
    assert_event(tx, "DatasetReinstated", restored=Status.DEPRECATED)


def test_trusted_forwarder(datasets, forwarder, stranger):
    assert datasets.trustedForwarder() == forwarder
    assert datasets.isTrustedForwarder(forwarder)
    assert not datasets.isTrustedForwarder(stranger)
    assert datasets.roles() != brownie.ZERO_ADDRESS
