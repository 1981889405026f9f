// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @notice The role directory every registry consults.
interface ILedgerRoles {
    /// @notice Whether `account` holds `role`.
    function hasRole(bytes32 role, address account) external view returns (bool);
}
