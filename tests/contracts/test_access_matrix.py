"""Access-control matrix: every state-changing function called by every party.

Parties: admin, holder, reviewer, user, auditor (one role each), subject, delegate (no role; the
delegate is appointed by the subject) and stranger (nothing). Each cell either succeeds (the caller
is an intended one, and the expected event is emitted) or reverts with the exact error that names the
caller. The world is built once per module; each cell runs in its own snapshot.
"""

from types import SimpleNamespace

import pytest
from chain_helpers import (
    ADMIN_ROLE,
    AUDITOR_ROLE,
    DUO,
    HOLDER_ROLE,
    REVIEWER_ROLE,
    USER_ROLE,
    ZERO32,
    ZERO_ADDRESS,
    Scope,
    Tier,
    addr,
    b32,
    expect_revert,
    holder_scope,
    latest_timestamp,
)

CALLERS = ["admin", "holder", "reviewer", "user", "auditor", "subject", "delegate", "stranger"]
DAY = 86400
FAR = 4_000_000_000


@pytest.fixture(scope="module")
def world(ledger, register, parties):
    p = SimpleNamespace(**parties)
    w = SimpleNamespace(ledger=ledger, p=p)
    w.mine = register(p.holder, tier=Tier.OPEN)
    w.successor = register(p.holder)
    w.suspended = register(p.holder)
    ledger.datasets.suspend(w.suspended, b32("r"), {"from": p.auditor})
    w.controlled = register(p.holder, tier=Tier.CONTROLLED)
    w.embargo_end = latest_timestamp() + 30 * DAY
    w.embargoed = register(p.holder, tier=Tier.CONTROLLED, embargo_end=w.embargo_end)
    w.registered = register(p.holder, tier=Tier.REGISTERED)
    w.closed = register(p.holder, tier=Tier.CLOSED)
    access = ledger.access
    w.pending = access.requestAccess(w.controlled, DUO.HMB, 0, b32("p"), {"from": p.user}).return_value
    w.approved = access.requestAccess(w.controlled, DUO.HMB, 0, b32("p"), {"from": p.user}).return_value
    access.approve(w.approved, b32("c"), FAR, {"from": p.reviewer})
    w.pending_embargoed = access.requestAccess(w.embargoed, DUO.HMB, 0, b32("p"), {"from": p.user}).return_value
    w.suspended_user = addr("0x00000000000000000000000000000000000b0b01")
    access.suspendUser(w.suspended_user, b32("r"), {"from": p.auditor})
    w.newcomer = addr("0x00000000000000000000000000000000000c0c02")
    consent = ledger.consent
    w.scope = holder_scope(p.holder)
    consent.grant(p.subject, Scope.HOLDER, w.scope, ZERO_ADDRESS, DUO.GRU, 0, FAR, {"from": p.subject})
    consent.appointDelegate(p.delegate, FAR, {"from": p.subject})
    return w


def only(*names):
    return frozenset(names)


EVERYONE = frozenset(CALLERS)

# name: (call(w, caller), intended callers, error(w, caller_name, caller) -> (signature, args), success event)
OPERATIONS = {
    "roles.grantRole": (
        lambda w, c: w.ledger.roles.grantRole(USER_ROLE, w.newcomer, {"from": c}),
        only("admin"),
        lambda w, n, c: ("AccessControlUnauthorizedAccount(address,bytes32)", (c, ADMIN_ROLE)),
        "RoleGranted",
    ),
    "roles.revokeRole": (
        lambda w, c: w.ledger.roles.revokeRole(USER_ROLE, w.p.user, {"from": c}),
        only("admin"),
        lambda w, n, c: ("AccessControlUnauthorizedAccount(address,bytes32)", (c, ADMIN_ROLE)),
        "RoleRevoked",
    ),
    "datasets.register(primary)": (
        lambda w, c: w.ledger.datasets.register(b32("new"), b32("m"), [], ZERO32, 0, 1, 0, ZERO32, {"from": c}),
        only("holder"),
        lambda w, n, c: ("MissingRole(bytes32,address)", (HOLDER_ROLE, c)),
        "DatasetRegistered",
    ),
    "datasets.register(derived)": (
        lambda w, c: w.ledger.datasets.register(b32("new"), b32("m"), [w.mine], ZERO32, 0, 1, 0, ZERO32, {"from": c}),
        only("holder", "user"),
        lambda w, n, c: ("MissingRole(bytes32,address)", (USER_ROLE, c)),
        "DerivedFrom",
    ),
    "datasets.setSharing": (
        lambda w, c: w.ledger.datasets.setSharing(w.mine, Tier.CLOSED, 0, {"from": c}),
        only("holder"),
        lambda w, n, c: ("NotDatasetHolder(bytes32,address,address)", (w.mine, c, w.p.holder)),
        "SharingChanged",
    ),
    "datasets.deprecate": (
        lambda w, c: w.ledger.datasets.deprecate(w.mine, w.successor, {"from": c}),
        only("holder"),
        lambda w, n, c: ("NotDatasetHolder(bytes32,address,address)", (w.mine, c, w.p.holder)),
        "DatasetDeprecated",
    ),
    "datasets.retract": (
        lambda w, c: w.ledger.datasets.retract(w.mine, b32("r"), {"from": c}),
        only("holder"),
        lambda w, n, c: ("NotDatasetHolder(bytes32,address,address)", (w.mine, c, w.p.holder)),
        "DatasetRetracted",
    ),
    "datasets.suspend": (
        lambda w, c: w.ledger.datasets.suspend(w.mine, b32("r"), {"from": c}),
        only("auditor"),
        lambda w, n, c: ("MissingRole(bytes32,address)", (AUDITOR_ROLE, c)),
        "DatasetSuspended",
    ),
    "datasets.reinstate": (
        lambda w, c: w.ledger.datasets.reinstate(w.suspended, {"from": c}),
        only("auditor"),
        lambda w, n, c: ("MissingRole(bytes32,address)", (AUDITOR_ROLE, c)),
        "DatasetReinstated",
    ),
    "consent.grant": (
        lambda w, c: w.ledger.consent.grant(
            w.p.subject, Scope.DATASET, w.mine, ZERO_ADDRESS, DUO.HMB, 0, FAR, {"from": c}
        ),
        only("subject", "delegate"),
        lambda w, n, c: ("NotSubjectOrDelegate(address,address)", (w.p.subject, c)),
        "ConsentGiven",
    ),
    "consent.renew": (
        lambda w, c: w.ledger.consent.renew(w.p.subject, Scope.HOLDER, w.scope, ZERO_ADDRESS, FAR + 1, {"from": c}),
        only("subject", "delegate"),
        lambda w, n, c: ("NotSubjectOrDelegate(address,address)", (w.p.subject, c)),
        "ConsentRenewed",
    ),
    "consent.withdraw": (
        lambda w, c: w.ledger.consent.withdraw(w.p.subject, Scope.HOLDER, w.scope, ZERO_ADDRESS, {"from": c}),
        only("subject", "delegate"),
        lambda w, n, c: ("NotSubjectOrDelegate(address,address)", (w.p.subject, c)),
        "ConsentWithdrawn",
    ),
    "consent.appointDelegate": (
        # always acts for the caller: every account may appoint its own delegate
        lambda w, c: w.ledger.consent.appointDelegate(w.newcomer, FAR, {"from": c}),
        EVERYONE,
        None,
        "DelegateAppointed",
    ),
    "consent.revokeDelegate": (
        lambda w, c: w.ledger.consent.revokeDelegate(w.p.delegate, {"from": c}),
        only("subject"),
        lambda w, n, c: ("DelegateNotAppointed(address,address)", (c, w.p.delegate)),
        "DelegateRevoked",
    ),
    "access.requestAccess": (
        lambda w, c: w.ledger.access.requestAccess(w.controlled, DUO.HMB, 0, b32("p"), {"from": c}),
        only("user"),
        lambda w, n, c: ("MissingRole(bytes32,address)", (USER_ROLE, c)),
        "AccessRequested",
    ),
    "access.approve": (
        lambda w, c: w.ledger.access.approve(w.pending, b32("c"), FAR, {"from": c}),
        only("reviewer"),
        lambda w, n, c: ("MissingRole(bytes32,address)", (REVIEWER_ROLE, c)),
        "AccessApproved",
    ),
    "access.approve(embargoed)": (
        lambda w, c: w.ledger.access.approve(w.pending_embargoed, b32("c"), FAR, {"from": c}),
        only("holder"),
        lambda w, n, c: ("DatasetEmbargoed(bytes32,uint32,address)", (w.embargoed, w.embargo_end, w.p.holder)),
        "AccessApproved",
    ),
    "access.deny": (
        lambda w, c: w.ledger.access.deny(w.pending, b32("r"), {"from": c}),
        only("reviewer"),
        lambda w, n, c: ("MissingRole(bytes32,address)", (REVIEWER_ROLE, c)),
        "AccessDenied",
    ),
    "access.deny(embargoed)": (
        lambda w, c: w.ledger.access.deny(w.pending_embargoed, b32("r"), {"from": c}),
        only("holder"),
        lambda w, n, c: ("DatasetEmbargoed(bytes32,uint32,address)", (w.embargoed, w.embargo_end, w.p.holder)),
        "AccessDenied",
    ),
    "access.revoke": (
        lambda w, c: w.ledger.access.revoke(w.approved, b32("r"), {"from": c}),
        only("reviewer", "holder"),
        lambda w, n, c: ("MissingRole(bytes32,address)", (REVIEWER_ROLE, c)),
        "AccessRevoked",
    ),
    "access.overrideEmbargo": (
        lambda w, c: w.ledger.access.overrideEmbargo(w.embargoed, b32("r"), {"from": c}),
        only("auditor"),
        lambda w, n, c: ("MissingRole(bytes32,address)", (AUDITOR_ROLE, c)),
        "EmbargoOverridden",
    ),
    "access.suspendUser": (
        lambda w, c: w.ledger.access.suspendUser(w.newcomer, b32("r"), {"from": c}),
        only("auditor"),
        lambda w, n, c: ("MissingRole(bytes32,address)", (AUDITOR_ROLE, c)),
        "UserSuspendedBy",
    ),
    "access.reinstateUser": (
        lambda w, c: w.ledger.access.reinstateUser(w.suspended_user, {"from": c}),
        only("auditor"),
        lambda w, n, c: ("MissingRole(bytes32,address)", (AUDITOR_ROLE, c)),
        "UserReinstated",
    ),
    "usage.recordUse(controlled)": (
        lambda w, c: w.ledger.usage.recordUse(w.controlled, w.approved, DUO.HMB, 0, ZERO32, {"from": c}),
        only("user"),
        lambda w, n, c: (
            ("UnexpectedRequestId(uint256)", (w.approved,))
            if n == "holder"
            else ("NoApproval(bytes32,address,uint256)", (w.controlled, c, w.approved))
        ),
        "UseRecorded",
    ),
    "usage.recordUse(registered)": (
        lambda w, c: w.ledger.usage.recordUse(w.registered, 0, DUO.HMB, 0, ZERO32, {"from": c}),
        only("user", "holder"),
        lambda w, n, c: ("MissingRole(bytes32,address)", (USER_ROLE, c)),
        "UseRecorded",
    ),
    "usage.recordUse(closed)": (
        lambda w, c: w.ledger.usage.recordUse(w.closed, 0, DUO.HMB, 0, ZERO32, {"from": c}),
        only("holder"),
        lambda w, n, c: ("DatasetNotShared(bytes32)", (w.closed,)),
        "UseRecorded",
    ),
}


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("operation", list(OPERATIONS))
def test_access_matrix(world, parties, operation, caller):
    call, intended, error, event = OPERATIONS[operation]
    account = parties[caller]
    if caller in intended:
        tx = call(world, account)
        assert event in tx.events, f"{operation} by {caller}: no {event}"
    else:
        signature, args = error(world, caller, account)
        with expect_revert(signature, *args):
            call(world, account)


def test_matrix_covers_every_state_changing_function(ledger):
    """Every non-view, non-signed external function of the registries appears in the matrix."""
    covered = {name.split("(")[0] for name in OPERATIONS}
    signed_or_admin_extras = {
        "consent.grantBySig",
        "consent.renewBySig",
        "consent.withdrawBySig",
        "consent.appointDelegateBySig",
        "consent.revokeDelegateBySig",
        "consent.relayBatch",  # permissionless: the signature authorises
        "roles.renounceRole",  # acts on the caller's own roles only (test_roles.py)
    }
    for label in ("roles", "datasets", "consent", "access", "usage"):
        contract = getattr(ledger, label)
        for item in contract.abi:
            if item["type"] == "function" and item["stateMutability"] not in ("view", "pure"):
                name = f"{label}.{item['name']}"
                assert name in covered or name in signed_or_admin_extras, f"{name} missing from the matrix"
