// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ERC2771Context} from "@openzeppelin/contracts/metatx/ERC2771Context.sol";
import {Context} from "@openzeppelin/contracts/utils/Context.sol";
import {Roles} from "./libraries/Roles.sol";

/// @title LedgerRoles
/// @notice The parties of the ledger: holder, reviewer, user, auditor and admin (the
/// `DEFAULT_ADMIN_ROLE`). A data subject needs no role. Admins grant and revoke every role,
/// directly or through the trusted forwarder.
/// @dev OpenZeppelin AccessControl; `RoleGranted` / `RoleRevoked` are the role history.
contract LedgerRoles is AccessControl, ERC2771Context {
    /// @notice Role of data providers (hospitals, labs, cohorts).
    bytes32 public constant HOLDER_ROLE = Roles.HOLDER;
    /// @notice Role of data-use review committees.
    bytes32 public constant REVIEWER_ROLE = Roles.REVIEWER;
    /// @notice Role of researchers and institutions that use data.
    bytes32 public constant USER_ROLE = Roles.USER;
    /// @notice Role of regulators and supervisors.
    bytes32 public constant AUDITOR_ROLE = Roles.AUDITOR;

    /// @param trustedForwarder the LedgerForwarder
    /// @param admin the first platform operator
    constructor(address trustedForwarder, address admin) ERC2771Context(trustedForwarder) {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
    }

    function _msgSender() internal view override(Context, ERC2771Context) returns (address) {
        return ERC2771Context._msgSender();
    }

    function _msgData() internal view override(Context, ERC2771Context) returns (bytes calldata) {
        return ERC2771Context._msgData();
    }

    function _contextSuffixLength() internal view override(Context, ERC2771Context) returns (uint256) {
        return ERC2771Context._contextSuffixLength();
    }
}
