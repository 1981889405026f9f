// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @notice Role identifiers shared by LedgerRoles and the registries.
library Roles {
    bytes32 internal constant ADMIN = 0x00; // AccessControl.DEFAULT_ADMIN_ROLE
    bytes32 internal constant HOLDER = keccak256("HOLDER_ROLE");
    bytes32 internal constant REVIEWER = keccak256("REVIEWER_ROLE");
    bytes32 internal constant USER = keccak256("USER_ROLE");
    bytes32 internal constant AUDITOR = keccak256("AUDITOR_ROLE");
}
