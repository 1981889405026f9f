// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IAccessRegistry} from "./interfaces/IAccessRegistry.sol";
import {IDatasetRegistry} from "./interfaces/IDatasetRegistry.sol";
import {ILedgerRoles} from "./interfaces/ILedgerRoles.sol";
import {DataUse} from "./libraries/DataUse.sol";
import {RoleGated} from "./libraries/RoleGated.sol";
import {Roles} from "./libraries/Roles.sol";

/// @title AccessRegistry
/// @notice Access requests for controlled datasets and their review. A user requests access for a
/// purpose, citing the digest of a research protocol kept on IPFS; a reviewer approves (with a
/// conditions digest and an expiry), denies, or later revokes. While a dataset is under embargo
/// only its holder decides, unless an auditor has overridden the embargo for a declared
/// public-interest reason. Auditors suspend and reinstate users; a suspended user, like a
/// suspended or retracted dataset, gets no approvals.
/// @dev A request takes two slots: (requester, status, expiry, requestedAt) and dataset, plus one
/// for (purpose, disease, decidedAt). Protocol, condition and reason digests live in events only.
contract AccessRegistry is IAccessRegistry, RoleGated {
    /// @notice The dataset registry.
    IDatasetRegistry public immutable datasets;

    /// @notice Number of requests filed; request ids are 1..requestCount.
    uint256 public requestCount;

    mapping(uint256 requestId => Request) private _requests;
    mapping(address user => bool) private _suspended;
    /// @dev The embargo end an auditor overrode: an embargo the holder sets later is not overridden.
    mapping(bytes32 dataset => uint32 embargoEnd) private _overriddenEmbargo;

    /// @notice No request has this id.
    error RequestNotFound(uint256 requestId);
    /// @notice The request is not in a status that allows this decision.
    error InvalidRequestStatus(uint256 requestId, RequestStatus status);
    /// @notice The dataset is not registered.
    error DatasetNotFound(bytes32 dataset);
    /// @notice The dataset is suspended or retracted.
    error DatasetNotUsable(bytes32 dataset, IDatasetRegistry.Status status);
    /// @notice Open and registered tiers need no request; closed datasets are not shared.
    error AccessNotRequestable(bytes32 dataset, IDatasetRegistry.Tier tier);
    /// @notice The purpose is malformed (see DataUse.isValidUse).
    error InvalidPurpose(uint64 purpose, uint32 diseaseCode);
    /// @notice A protocol, conditions or reason digest is required.
    error MissingDigest();
    /// @notice The user is suspended.
    error UserSuspended(address user);
    /// @notice The user is not suspended.
    error UserNotSuspended(address user);
    /// @notice The approval's expiry is not in the future.
    error ExpiryNotInFuture(uint40 expiry, uint256 nowTimestamp);
    /// @notice The dataset is under embargo: only its holder may decide.
    error DatasetEmbargoed(bytes32 dataset, uint32 embargoEnd, address holder);
    /// @notice The dataset is not under embargo (nothing to override).
    error NotEmbargoed(bytes32 dataset);

    /// @notice A user filed an access request.
    event AccessRequested(
        uint256 indexed requestId,
        bytes32 indexed dataset,
        address indexed requester,
        uint64 purpose,
        uint32 diseaseCode,
        bytes32 protocolDigest
    );
    /// @notice A request was approved until `expiry` under the conditions `conditionsDigest`.
    event AccessApproved(uint256 indexed requestId, address indexed reviewer, bytes32 conditionsDigest, uint40 expiry);
    /// @notice A request was denied.
    event AccessDenied(uint256 indexed requestId, address indexed reviewer, bytes32 reasonDigest);
    /// @notice An approval was revoked before its expiry.
    event AccessRevoked(uint256 indexed requestId, address indexed reviewer, bytes32 reasonDigest);
    /// @notice An auditor overrode a dataset's embargo for a declared public-interest reason.
    event EmbargoOverridden(bytes32 indexed dataset, address indexed auditor, bytes32 reasonDigest);
    /// @notice An auditor suspended a user.
    event UserSuspendedBy(address indexed user, address indexed auditor, bytes32 reasonDigest);
    /// @notice An auditor reinstated a user.
    event UserReinstated(address indexed user, address indexed auditor);

    /// @param trustedForwarder the LedgerForwarder
    /// @param roles_ the LedgerRoles directory
    /// @param datasets_ the DatasetRegistry
    constructor(address trustedForwarder, ILedgerRoles roles_, IDatasetRegistry datasets_)
        RoleGated(trustedForwarder, roles_)
    {
        datasets = datasets_;
    }

    /// @notice Request access to a controlled dataset. User role; not suspended.
    /// @param dataset content root of the dataset
    /// @param purpose a DataUse use mask: one research category plus declared attributes
    /// @param diseaseCode MONDO code where the category is DS, else 0
    /// @param protocolDigest digest of the research protocol stored on IPFS
    /// @return requestId the new request's id
    function requestAccess(bytes32 dataset, uint64 purpose, uint32 diseaseCode, bytes32 protocolDigest)
        external
        returns (uint256 requestId)
    {
        address sender = _msgSender();
        _requireRole(Roles.USER, sender);
        if (_suspended[sender]) revert UserSuspended(sender);
        (, IDatasetRegistry.Tier tier,,) = _usableDataset(dataset);
        if (tier != IDatasetRegistry.Tier.Controlled) revert AccessNotRequestable(dataset, tier);
        if (!DataUse.isValidUse(purpose, diseaseCode)) revert InvalidPurpose(purpose, diseaseCode);
        if (protocolDigest == bytes32(0)) revert MissingDigest();
        requestId = ++requestCount;
        _requests[requestId] = Request({
            requester: sender,
            status: RequestStatus.Pending,
            expiry: 0,
            requestedAt: uint40(block.number),
            dataset: dataset,
            purpose: purpose,
            disease: diseaseCode,
            decidedAt: 0
        });
        emit AccessRequested(requestId, dataset, sender, purpose, diseaseCode, protocolDigest);
    }

    /// @notice Approve a pending request until `expiry`. A reviewer decides; under embargo (not
    /// overridden) only the dataset's holder does.
    function approve(uint256 requestId, bytes32 conditionsDigest, uint40 expiry) external {
        Request storage r = _pending(requestId);
        address sender = _msgSender();
        _requireDecider(r.dataset, sender);
        if (_suspended[r.requester]) revert UserSuspended(r.requester);
        if (conditionsDigest == bytes32(0)) revert MissingDigest();
        if (expiry <= block.timestamp) revert ExpiryNotInFuture(expiry, block.timestamp);
        r.status = RequestStatus.Approved;
        r.expiry = expiry;
        r.decidedAt = uint40(block.number);
        emit AccessApproved(requestId, sender, conditionsDigest, expiry);
    }

    /// @notice Deny a pending request. Same deciders as approve; allowed on suspended and retracted
    /// datasets too, so pending requests on them can be closed.
    function deny(uint256 requestId, bytes32 reasonDigest) external {
        Request storage r = _pending(requestId);
        address sender = _msgSender();
        (address holder,,, uint32 embargoEnd) = datasets.accessInfo(r.dataset);
        _requireDeciderFor(r.dataset, sender, holder, embargoEnd);
        r.status = RequestStatus.Denied;
        r.decidedAt = uint40(block.number);
        emit AccessDenied(requestId, sender, reasonDigest);
    }

    /// @notice Revoke an approval. A reviewer or the dataset's holder; allowed under embargo and
    /// on suspended datasets, since revoking only takes access away.
    function revoke(uint256 requestId, bytes32 reasonDigest) external {
        Request storage r = _existing(requestId);
        if (r.status != RequestStatus.Approved) revert InvalidRequestStatus(requestId, r.status);
        address sender = _msgSender();
        (address holder,,,) = datasets.accessInfo(r.dataset);
        if (sender != holder) _requireRole(Roles.REVIEWER, sender);
        r.status = RequestStatus.Revoked;
        r.decidedAt = uint40(block.number);
        emit AccessRevoked(requestId, sender, reasonDigest);
    }

    /// @notice Let reviewers decide on an embargoed dataset, for a declared public-interest reason.
    /// Auditor only. The override holds for the embargo in force; if the holder later sets another
    /// embargo end, that one is not overridden.
    function overrideEmbargo(bytes32 dataset, bytes32 reasonDigest) external {
        address sender = _msgSender();
        _requireRole(Roles.AUDITOR, sender);
        (,,, uint32 embargoEnd) = _usableDataset(dataset);
        if (embargoEnd <= block.timestamp || _overriddenEmbargo[dataset] == embargoEnd) revert NotEmbargoed(dataset);
        if (reasonDigest == bytes32(0)) revert MissingDigest();
        _overriddenEmbargo[dataset] = embargoEnd;
        emit EmbargoOverridden(dataset, sender, reasonDigest);
    }

    /// @notice Suspend a user: no new approvals, no uses. Auditor only.
    function suspendUser(address user, bytes32 reasonDigest) external {
        address sender = _msgSender();
        _requireRole(Roles.AUDITOR, sender);
        if (_suspended[user]) revert UserSuspended(user);
        _suspended[user] = true;
        emit UserSuspendedBy(user, sender, reasonDigest);
    }

    /// @notice Lift a user's suspension. Auditor only.
    function reinstateUser(address user) external {
        address sender = _msgSender();
        _requireRole(Roles.AUDITOR, sender);
        if (!_suspended[user]) revert UserNotSuspended(user);
        _suspended[user] = false;
        emit UserReinstated(user, sender);
    }

    /// @inheritdoc IAccessRegistry
    function getRequest(uint256 requestId) external view returns (Request memory) {
        return _requests[requestId];
    }

    /// @notice Many requests in one call (status None for unknown ids).
    function getRequests(uint256[] calldata requestIds) external view returns (Request[] memory out) {
        out = new Request[](requestIds.length);
        for (uint256 i; i < requestIds.length; ++i) {
            out[i] = _requests[requestIds[i]];
        }
    }

    /// @inheritdoc IAccessRegistry
    function isSuspended(address user) external view returns (bool) {
        return _suspended[user];
    }

    /// @notice Whether an auditor has overridden the dataset's current embargo.
    function embargoOverridden(bytes32 dataset) external view returns (bool) {
        (,,, uint32 embargoEnd) = datasets.accessInfo(dataset);
        return embargoEnd != 0 && _overriddenEmbargo[dataset] == embargoEnd;
    }

    /// @notice Whether a request is approved and unexpired now.
    function isApprovalInForce(uint256 requestId) external view returns (bool) {
        Request storage r = _requests[requestId];
        return r.status == RequestStatus.Approved && r.expiry > block.timestamp;
    }

    function _existing(uint256 requestId) private view returns (Request storage r) {
        r = _requests[requestId];
        if (r.status == RequestStatus.None) revert RequestNotFound(requestId);
    }

    function _pending(uint256 requestId) private view returns (Request storage r) {
        r = _existing(requestId);
        if (r.status != RequestStatus.Pending) revert InvalidRequestStatus(requestId, r.status);
    }

    function _usableDataset(bytes32 dataset)
        private
        view
        returns (address holder, IDatasetRegistry.Tier tier, IDatasetRegistry.Status status, uint32 embargoEnd)
    {
        (holder, tier, status, embargoEnd) = datasets.accessInfo(dataset);
        if (status == IDatasetRegistry.Status.None) revert DatasetNotFound(dataset);
        if (status == IDatasetRegistry.Status.Suspended || status == IDatasetRegistry.Status.Retracted) {
            revert DatasetNotUsable(dataset, status);
        }
    }

    function _requireDecider(bytes32 dataset, address sender) private view {
        (address holder,,, uint32 embargoEnd) = _usableDataset(dataset);
        _requireDeciderFor(dataset, sender, holder, embargoEnd);
    }

    function _requireDeciderFor(bytes32 dataset, address sender, address holder, uint32 embargoEnd) private view {
        if (embargoEnd > block.timestamp && _overriddenEmbargo[dataset] != embargoEnd) {
            if (sender != holder) revert DatasetEmbargoed(dataset, embargoEnd, holder);
        } else {
            _requireRole(Roles.REVIEWER, sender);
        }
    }
}
