// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @notice What the other registries read from the DatasetRegistry.
interface IDatasetRegistry {
    /// @notice Sharing tiers (graded sharing).
    enum Tier {
        Open,
        Registered,
        Controlled,
        Closed
    }

    /// @notice Lifecycle of a dataset record. `None` means not registered.
    enum Status {
        None,
        Active,
        Deprecated,
        Suspended,
        Retracted
    }

    /// @notice The access-relevant part of a record, read with one storage load.
    function accessInfo(bytes32 contentRoot)
        external
        view
        returns (address holder, Tier tier, Status status, uint32 embargoEnd);
}
