// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @notice What the UsageRegistry reads from the AccessRegistry.
interface IAccessRegistry {
    /// @notice Lifecycle of an access request. `None` means no such request.
    enum RequestStatus {
        None,
        Pending,
        Approved,
        Denied,
        Revoked
    }

    /// @notice An access request and its decision.
    struct Request {
        address requester;
        RequestStatus status;
        uint40 expiry;
        uint40 requestedAt;
        bytes32 dataset;
        uint64 purpose;
        uint32 disease;
        uint40 decidedAt;
    }

    /// @notice One request.
    function getRequest(uint256 requestId) external view returns (Request memory);

    /// @notice Whether an auditor has suspended `user`.
    function isSuspended(address user) external view returns (bool);
}
