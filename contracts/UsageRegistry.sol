// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IAccessRegistry} from "./interfaces/IAccessRegistry.sol";
import {IDatasetRegistry} from "./interfaces/IDatasetRegistry.sol";
import {ILedgerRoles} from "./interfaces/ILedgerRoles.sol";
import {DataUse} from "./libraries/DataUse.sol";
import {RoleGated} from "./libraries/RoleGated.sol";
import {Roles} from "./libraries/Roles.sol";

/// @title UsageRegistry
/// @notice Every use of a dataset, recorded by its user and refused unless allowed: open data by
/// anyone, registered data by any account with the user role, controlled data under an approval
/// in force for this user, dataset and purpose; closed data only by its holder. A holder may
/// always record uses of its own datasets. Suspended or retracted datasets and suspended users
/// record no use. A controlled-tier use rests on the approval, not on the user role: revoking a
/// user's role does not end approvals already given (reviewers revoke approvals, auditors suspend
/// users), which keeps a repeat use at one cross-contract read fewer. Per-dataset counters of uses and distinct users give holders credit (derived
/// datasets are counted by the DatasetRegistry).
/// @dev Uses are events, not storage; the only writes are the packed counters and the first-use
/// flag per (dataset, user).
contract UsageRegistry is RoleGated {
    /// @notice Per-dataset counters (one slot).
    struct Stats {
        uint64 uses;
        uint64 users;
    }

    /// @notice The dataset registry.
    IDatasetRegistry public immutable datasets;
    /// @notice The access registry.
    IAccessRegistry public immutable access;

    mapping(bytes32 dataset => Stats) private _stats;
    mapping(bytes32 dataset => mapping(address user => bool)) private _hasUsed;

    /// @notice The dataset is not registered.
    error DatasetNotFound(bytes32 dataset);
    /// @notice The dataset is suspended or retracted.
    error DatasetNotUsable(bytes32 dataset, IDatasetRegistry.Status status);
    /// @notice Closed datasets are used only by their holder.
    error DatasetNotShared(bytes32 dataset);
    /// @notice The user is suspended.
    error UserSuspended(address user);
    /// @notice The purpose is malformed (see DataUse.isValidUse).
    error InvalidPurpose(uint64 purpose, uint32 diseaseCode);
    /// @notice No approval in force covers this use (unknown, someone else's, another dataset's,
    /// not approved, revoked or expired).
    error NoApproval(bytes32 dataset, address user, uint256 requestId);
    /// @notice The approval does not cover this purpose.
    error PurposeNotApproved(uint256 requestId, uint64 purpose, uint32 diseaseCode);
    /// @notice Open and registered datasets and holders' own uses take no request id.
    error UnexpectedRequestId(uint256 requestId);

    /// @notice A use was recorded; `resultDigest` identifies its output (a derived dataset's
    /// content root or a publication's digest). `useNumber` counts this dataset's uses from 1.
    event UseRecorded(
        bytes32 indexed dataset,
        address indexed user,
        uint256 indexed requestId,
        uint64 purpose,
        uint32 diseaseCode,
        bytes32 resultDigest,
        uint64 useNumber
    );

    /// @param trustedForwarder the LedgerForwarder
    /// @param roles_ the LedgerRoles directory
    /// @param datasets_ the DatasetRegistry
    /// @param access_ the AccessRegistry
    constructor(address trustedForwarder, ILedgerRoles roles_, IDatasetRegistry datasets_, IAccessRegistry access_)
        RoleGated(trustedForwarder, roles_)
    {
        datasets = datasets_;
        access = access_;
    }

    /// @notice Record a use of `dataset` by the caller.
    /// @param dataset content root of the dataset used
    /// @param requestId the approved access request (controlled tier), else 0
    /// @param purpose a DataUse use mask: one research category plus attributes
    /// @param diseaseCode MONDO code where the category is DS, else 0
    /// @param resultDigest digest of the result (derived dataset root, publication), may be zero
    function recordUse(bytes32 dataset, uint256 requestId, uint64 purpose, uint32 diseaseCode, bytes32 resultDigest)
        external
    {
        address user = _msgSender();
        if (!DataUse.isValidUse(purpose, diseaseCode)) revert InvalidPurpose(purpose, diseaseCode);
        (address holder, IDatasetRegistry.Tier tier, IDatasetRegistry.Status status,) = datasets.accessInfo(dataset);
        if (status == IDatasetRegistry.Status.None) revert DatasetNotFound(dataset);
        if (status == IDatasetRegistry.Status.Suspended || status == IDatasetRegistry.Status.Retracted) {
            revert DatasetNotUsable(dataset, status);
        }
        if (access.isSuspended(user)) revert UserSuspended(user);

        if (user == holder || tier == IDatasetRegistry.Tier.Open) {
            if (requestId != 0) revert UnexpectedRequestId(requestId);
        } else if (tier == IDatasetRegistry.Tier.Registered) {
            if (requestId != 0) revert UnexpectedRequestId(requestId);
            _requireRole(Roles.USER, user);
        } else if (tier == IDatasetRegistry.Tier.Controlled) {
            IAccessRegistry.Request memory r = access.getRequest(requestId);
            if (
                r.requester != user || r.dataset != dataset || r.status != IAccessRegistry.RequestStatus.Approved
                    || r.expiry <= block.timestamp
            ) revert NoApproval(dataset, user, requestId);
            if (!DataUse.withinApproved(r.purpose, r.disease, purpose, diseaseCode)) {
                revert PurposeNotApproved(requestId, purpose, diseaseCode);
            }
        } else {
            revert DatasetNotShared(dataset);
        }

        Stats storage s = _stats[dataset];
        uint64 useNumber;
        unchecked {
            useNumber = s.uses + 1;
            s.uses = useNumber;
            if (!_hasUsed[dataset][user]) {
                _hasUsed[dataset][user] = true;
                s.users += 1;
            }
        }
        emit UseRecorded(dataset, user, requestId, purpose, diseaseCode, resultDigest, useNumber);
    }

    /// @notice A dataset's use counters: total uses and distinct users.
    function statsOf(bytes32 dataset) external view returns (uint64 uses, uint64 users) {
        Stats storage s = _stats[dataset];
        return (s.uses, s.users);
    }

    /// @notice Whether `user` has recorded a use of `dataset`.
    function hasUsed(bytes32 dataset, address user) external view returns (bool) {
        return _hasUsed[dataset][user];
    }
}
