// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ERC2771Context} from "@openzeppelin/contracts/metatx/ERC2771Context.sol";
import {ILedgerRoles} from "../interfaces/ILedgerRoles.sol";

/// @notice Base of every registry: trusts the ledger's forwarder (so a relayed request acts as its
/// signer) and checks roles against the shared LedgerRoles directory.
abstract contract RoleGated is ERC2771Context {
    /// @notice `account` lacks `role` for the call it made.
    error MissingRole(bytes32 role, address account);

    /// @notice The role directory.
    ILedgerRoles public immutable roles;

    constructor(address trustedForwarder, ILedgerRoles roles_) ERC2771Context(trustedForwarder) {
        roles = roles_;
    }

    function _requireRole(bytes32 role, address account) internal view {
        if (!roles.hasRole(role, account)) revert MissingRole(role, account);
    }
}
