"""LedgerRoles: the admin grants and revokes every role; anyone may renounce their own."""

import pytest
from chain_helpers import (
    ADMIN_ROLE,
    AUDITOR_ROLE,
    HOLDER_ROLE,
    REVIEWER_ROLE,
    USER_ROLE,
    addr,
    assert_event,
    assert_no_event,
    expect_revert,
)

ROLES = {"holder": HOLDER_ROLE, "reviewer": REVIEWER_ROLE, "user": USER_ROLE, "auditor": AUDITOR_ROLE}


def test_constructor_state(roles, forwarder, admin, holder, reviewer, user, auditor, stranger):
    assert roles.hasRole(ADMIN_ROLE, admin)
    assert not roles.hasRole(ADMIN_ROLE, stranger)
    assert roles.HOLDER_ROLE() == HOLDER_ROLE
    assert roles.REVIEWER_ROLE() == REVIEWER_ROLE
    assert roles.USER_ROLE() == USER_ROLE
    assert roles.AUDITOR_ROLE() == AUDITOR_ROLE
    assert roles.DEFAULT_ADMIN_ROLE() == ADMIN_ROLE
    for role in ROLES.values():
        assert roles.getRoleAdmin(role) == ADMIN_ROLE
    assert roles.trustedForwarder() == forwarder.address
    assert roles.isTrustedForwarder(forwarder)
    assert not roles.isTrustedForwarder(stranger)
    # the ledger fixture granted one role per party
    assert roles.hasRole(HOLDER_ROLE, holder) and roles.hasRole(REVIEWER_ROLE, reviewer)
    assert roles.hasRole(USER_ROLE, user) and roles.hasRole(AUDITOR_ROLE, auditor)
    assert not roles.hasRole(HOLDER_ROLE, reviewer)


def test_supports_interface(roles):
    assert roles.supportsInterface("0x7965db0b")  # IAccessControl
    assert roles.supportsInterface("0x01ffc9a7")  # IERC165
    assert not roles.supportsInterface("0xffffffff")


@pytest.mark.parametrize("role_name", sorted(ROLES))
def test_admin_grants_and_revokes(roles, admin, stranger, role_name):
    role = ROLES[role_name]
    tx = roles.grantRole(role, stranger, {"from": admin})
    assert_event(tx, "RoleGranted", role=role, account=stranger, sender=admin, emitter=roles)
    assert roles.hasRole(role, stranger)
    tx = roles.revokeRole(role, stranger, {"from": admin})
    assert_event(tx, "RoleRevoked", role=role, account=stranger, sender=admin, emitter=roles)
    assert not roles.hasRole(role, stranger)


def test_grant_existing_and_revoke_missing_are_silent(roles, admin, holder, stranger):
    """Granting a role already held or revoking one not held changes nothing and emits nothing."""
    tx = roles.grantRole(HOLDER_ROLE, holder, {"from": admin})
    assert_no_event(tx, "RoleGranted")
    tx = roles.revokeRole(HOLDER_ROLE, stranger, {"from": admin})
    assert_no_event(tx, "RoleRevoked")
    assert roles.hasRole(HOLDER_ROLE, holder)


def test_admin_role_can_be_handed_over(roles, admin, stranger, holder):
    roles.grantRole(ADMIN_ROLE, stranger, {"from": admin})
    tx = roles.renounceRole(ADMIN_ROLE, admin, {"from": admin})
    assert_event(tx, "RoleRevoked", role=ADMIN_ROLE, account=admin, sender=admin)
    with expect_revert("AccessControlUnauthorizedAccount(address,bytes32)", admin, ADMIN_ROLE):
        roles.grantRole(USER_ROLE, holder, {"from": admin})
    roles.grantRole(USER_ROLE, holder, {"from": stranger})
    assert roles.hasRole(USER_ROLE, holder)


@pytest.mark.parametrize("caller", ["holder", "reviewer", "user", "auditor", "subject", "stranger"])
def test_non_admin_cannot_grant_or_revoke(roles, parties, caller):
    account = parties[caller]
    with expect_revert("AccessControlUnauthorizedAccount(address,bytes32)", account, ADMIN_ROLE):
        roles.grantRole(USER_ROLE, parties["stranger"], {"from": account})
    with expect_revert("AccessControlUnauthorizedAccount(address,bytes32)", account, ADMIN_ROLE):
        roles.revokeRole(HOLDER_ROLE, parties["holder"], {"from": account})


def test_renounce_own_role(roles, user):
    tx = roles.renounceRole(USER_ROLE, user, {"from": user})
    assert_event(tx, "RoleRevoked", role=USER_ROLE, account=user, sender=user)
    assert not roles.hasRole(USER_ROLE, user)


def test_renounce_for_someone_else_is_refused(roles, user, stranger):
    with expect_revert("AccessControlBadConfirmation()"):
        roles.renounceRole(USER_ROLE, user, {"from": stranger})
    assert roles.hasRole(USER_ROLE, user)
    assert addr(user) != addr(stranger)
