// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {IDatasetRegistry} from "./interfaces/IDatasetRegistry.sol";
import {ILedgerRoles} from "./interfaces/ILedgerRoles.sol";
import {RoleGated} from "./libraries/RoleGated.sol";
import {Roles} from "./libraries/Roles.sol";

/// @title DatasetRegistry
/// @notice Datasets and their lineage. A dataset is identified by its content root: the
/// StandardMerkleTree root over its files' (path, size, sha256) entries. A record anchors the
/// digest of its metadata document on IPFS, its parents and the digest of the activity that
/// produced it, its sharing tier, classification and embargo, and the Merkle root of the subjects
/// it covers. Parents must already be registered, so the lineage is a DAG by construction.
/// @dev Storage: the access-relevant fields share one slot (holder, tier, status, classification,
/// embargo end, registration block), so other registries read them with one SLOAD. Timestamps and
/// block numbers are uint32 (good until 2106 and for 4.29e9 blocks).
contract DatasetRegistry is IDatasetRegistry, RoleGated {
    /// @notice Largest number of parents one dataset may name.
    uint256 public constant MAX_PARENTS = 256;

    struct Record {
        address holder;
        Tier tier;
        Status status;
        uint16 classification;
        uint32 embargoEnd;
        uint32 registeredBlock;
        bytes32 metadataDigest;
        bytes32 activityDigest;
        bytes32 subjectRoot;
    }

    /// @notice A record as returned by the views, parents included.
    struct DatasetView {
        bytes32 contentRoot;
        address holder;
        Tier tier;
        Status status;
        uint16 classification;
        uint32 embargoEnd;
        uint32 registeredBlock;
        bytes32 metadataDigest;
        bytes32 activityDigest;
        bytes32 subjectRoot;
        bytes32 successor;
        uint256 derivedCount;
        bytes32[] parents;
    }

    mapping(bytes32 contentRoot => Record) private _records;
    mapping(bytes32 contentRoot => bytes32[]) private _parents;
    mapping(bytes32 contentRoot => bytes32) private _successor;
    mapping(bytes32 contentRoot => Status) private _statusBeforeSuspension;
    mapping(bytes32 contentRoot => uint256) private _derivedCount;

    /// @notice The content root is already registered (duplicate content).
    error DatasetAlreadyRegistered(bytes32 contentRoot, address holder, uint256 registeredBlock);
    /// @notice No dataset has this content root.
    error DatasetNotFound(bytes32 contentRoot);
    /// @notice A named parent is not registered.
    error UnknownParent(bytes32 parent);
    /// @notice Parents must be listed in strictly ascending order (canonical, no duplicates).
    error ParentsNotSorted(uint256 index);
    /// @notice More parents than MAX_PARENTS.
    error TooManyParents(uint256 count, uint256 max);
    /// @notice A required digest or root is zero.
    error ZeroValue(string field);
    /// @notice Only the dataset's holder may do this.
    error NotDatasetHolder(bytes32 contentRoot, address caller, address holder);
    /// @notice The dataset's current status does not allow this change.
    error InvalidStatus(bytes32 contentRoot, Status current);
    /// @notice A successor must be another registered, active dataset.
    error InvalidSuccessor(bytes32 contentRoot, bytes32 successor);

    /// @notice A dataset was registered.
    event DatasetRegistered(
        bytes32 indexed contentRoot,
        address indexed holder,
        bytes32 metadataDigest,
        bytes32 activityDigest,
        bytes32 subjectRoot,
        bytes32[] parents,
        Tier tier,
        uint16 classification,
        uint32 embargoEnd
    );
    /// @notice One lineage edge: `child` was derived from `parent` (one event per parent).
    event DerivedFrom(bytes32 indexed child, bytes32 indexed parent);
    /// @notice The holder changed tier or embargo.
    event SharingChanged(bytes32 indexed contentRoot, Tier tier, uint32 embargoEnd);
    /// @notice The holder deprecated a dataset in favour of a newer version.
    event DatasetDeprecated(bytes32 indexed contentRoot, bytes32 indexed successor);
    /// @notice The holder retracted a dataset; `reasonDigest` hashes a reason kept off chain.
    event DatasetRetracted(bytes32 indexed contentRoot, bytes32 reasonDigest);
    /// @notice An auditor suspended a dataset (circuit breaker).
    event DatasetSuspended(bytes32 indexed contentRoot, address indexed auditor, bytes32 reasonDigest);
    /// @notice An auditor lifted a suspension.
    event DatasetReinstated(bytes32 indexed contentRoot, address indexed auditor, Status restored);

    /// @param trustedForwarder the LedgerForwarder
    /// @param roles_ the LedgerRoles directory
    constructor(address trustedForwarder, ILedgerRoles roles_) RoleGated(trustedForwarder, roles_) {}

    // ------------------------------------------------------------------ writes

    /// @notice Register a dataset. A dataset without parents (primary data) needs the holder role;
    /// a derived dataset may also be registered by a user. The caller becomes the record's holder.
    /// @param contentRoot Merkle root over the dataset's file entries; the dataset's identifier
    /// @param metadataDigest sha2-256 digest of the metadata document's CIDv1 (raw block)
    /// @param parents registered parent datasets, strictly ascending; empty for primary data
    /// @param activityDigest digest of the IPFS description of the producing activity (may be zero)
    /// @param tier sharing tier
    /// @param classification classification code (see ledger.classification)
    /// @param embargoEnd unix time until which only the holder approves access (0 for none)
    /// @param subjectRoot Merkle root over the covered subjects' addresses (zero if none)
    function register(
        bytes32 contentRoot,
        bytes32 metadataDigest,
        bytes32[] calldata parents,
        bytes32 activityDigest,
        Tier tier,
        uint16 classification,
        uint32 embargoEnd,
        bytes32 subjectRoot
    ) external {
        address sender = _msgSender();
        if (parents.length == 0) {
            _requireRole(Roles.HOLDER, sender);
        } else if (!roles.hasRole(Roles.HOLDER, sender)) {
            _requireRole(Roles.USER, sender);
        }
        if (contentRoot == bytes32(0)) revert ZeroValue("contentRoot");
        if (metadataDigest == bytes32(0)) revert ZeroValue("metadataDigest");
        Record storage existing = _records[contentRoot];
        if (existing.status != Status.None) {
            revert DatasetAlreadyRegistered(contentRoot, existing.holder, existing.registeredBlock);
        }
        if (parents.length > MAX_PARENTS) revert TooManyParents(parents.length, MAX_PARENTS);
        for (uint256 i; i < parents.length; ++i) {
            bytes32 parent = parents[i];
            if (i > 0 && parent <= parents[i - 1]) revert ParentsNotSorted(i);
            if (_records[parent].status == Status.None) revert UnknownParent(parent);
        }

        _records[contentRoot] = Record({
            holder: sender,
            tier: tier,
            status: Status.Active,
            classification: classification,
            embargoEnd: embargoEnd,
            registeredBlock: uint32(block.number),
            metadataDigest: metadataDigest,
            activityDigest: activityDigest,
            subjectRoot: subjectRoot
        });
        if (parents.length > 0) {
            _parents[contentRoot] = parents;
            for (uint256 i; i < parents.length; ++i) {
                unchecked {
                    ++_derivedCount[parents[i]];
                }
                emit DerivedFrom(contentRoot, parents[i]);
            }
        }
        emit DatasetRegistered(
            contentRoot, sender, metadataDigest, activityDigest, subjectRoot, parents, tier, classification, embargoEnd
        );
    }

    /// @notice Change a dataset's sharing tier and embargo end. Holder only; not once retracted.
    function setSharing(bytes32 contentRoot, Tier tier, uint32 embargoEnd) external {
        Record storage r = _holderRecord(contentRoot);
        if (r.status == Status.Retracted) revert InvalidStatus(contentRoot, r.status);
        r.tier = tier;
        r.embargoEnd = embargoEnd;
        emit SharingChanged(contentRoot, tier, embargoEnd);
    }

    /// @notice Mark an active dataset as superseded by `successor` (a newer, active version).
    /// Holder only.
    function deprecate(bytes32 contentRoot, bytes32 successor) external {
        Record storage r = _holderRecord(contentRoot);
        if (r.status != Status.Active) revert InvalidStatus(contentRoot, r.status);
        // The successor must be active: a deprecated one would let versions form a cycle.
        if (successor == contentRoot || _records[successor].status != Status.Active) {
            revert InvalidSuccessor(contentRoot, successor);
        }
        r.status = Status.Deprecated;
        _successor[contentRoot] = successor;
        emit DatasetDeprecated(contentRoot, successor);
    }

    /// @notice Retract a dataset (final). Holder only; allowed from any status but Retracted,
    /// suspension included, so an auditor cannot keep a holder from retracting its data.
    function retract(bytes32 contentRoot, bytes32 reasonDigest) external {
        Record storage r = _holderRecord(contentRoot);
        if (r.status == Status.Retracted) revert InvalidStatus(contentRoot, r.status);
        r.status = Status.Retracted;
        emit DatasetRetracted(contentRoot, reasonDigest);
    }

    /// @notice Suspend an active or deprecated dataset: no approvals, no uses. Auditor only.
    function suspend(bytes32 contentRoot, bytes32 reasonDigest) external {
        address sender = _msgSender();
        _requireRole(Roles.AUDITOR, sender);
        Record storage r = _existing(contentRoot);
        Status current = r.status;
        if (current != Status.Active && current != Status.Deprecated) revert InvalidStatus(contentRoot, current);
        _statusBeforeSuspension[contentRoot] = current;
        r.status = Status.Suspended;
        emit DatasetSuspended(contentRoot, sender, reasonDigest);
    }

    /// @notice Lift a suspension, restoring the status the dataset had before. Auditor only.
    function reinstate(bytes32 contentRoot) external {
        address sender = _msgSender();
        _requireRole(Roles.AUDITOR, sender);
        Record storage r = _existing(contentRoot);
        if (r.status != Status.Suspended) revert InvalidStatus(contentRoot, r.status);
        Status restored = _statusBeforeSuspension[contentRoot];
        r.status = restored;
        delete _statusBeforeSuspension[contentRoot];
        emit DatasetReinstated(contentRoot, sender, restored);
    }

    // ------------------------------------------------------------------ views

    /// @inheritdoc IDatasetRegistry
    function accessInfo(bytes32 contentRoot)
        external
        view
        returns (address holder, Tier tier, Status status, uint32 embargoEnd)
    {
        Record storage r = _records[contentRoot];
        return (r.holder, r.tier, r.status, r.embargoEnd);
    }

    /// @notice Whether a dataset with this content root is registered.
    function exists(bytes32 contentRoot) external view returns (bool) {
        return _records[contentRoot].status != Status.None;
    }

    /// @notice One record with its parents, successor and derived-dataset count. Reverts
    /// DatasetNotFound for an unknown root.
    function getDataset(bytes32 contentRoot) external view returns (DatasetView memory) {
        _existing(contentRoot);
        return _view(contentRoot);
    }

    /// @notice Many records in one call (for lineage walks). Unknown roots come back with status
    /// None instead of reverting.
    function getDatasets(bytes32[] calldata contentRoots) external view returns (DatasetView[] memory out) {
        out = new DatasetView[](contentRoots.length);
        for (uint256 i; i < contentRoots.length; ++i) {
            out[i] = _view(contentRoots[i]);
        }
    }

    /// @notice A dataset's parents.
    function parentsOf(bytes32 contentRoot) external view returns (bytes32[] memory) {
        return _parents[contentRoot];
    }

    /// @notice Whether a file entry (path, size, sha256) is part of a dataset, by a StandardMerkleTree
    /// proof against its content root (leaf = keccak256(keccak256(abi.encode(path, size, sha256)))).
    function verifyFile(
        bytes32 contentRoot,
        string calldata path,
        uint256 size,
        bytes32 sha256Digest,
        bytes32[] calldata proof
    ) external view returns (bool) {
        if (_records[contentRoot].status == Status.None) return false;
        bytes32 leaf = keccak256(bytes.concat(keccak256(abi.encode(path, size, sha256Digest))));
        return MerkleProof.verifyCalldata(proof, contentRoot, leaf);
    }

    /// @notice Whether `subject` is among a dataset's subjects, by a StandardMerkleTree proof
    /// against its subject root (leaf = keccak256(keccak256(abi.encode(subject)))).
    function verifySubject(bytes32 contentRoot, address subject, bytes32[] calldata proof)
        external
        view
        returns (bool)
    {
        bytes32 root = _records[contentRoot].subjectRoot;
        if (root == bytes32(0)) return false;
        bytes32 leaf = keccak256(bytes.concat(keccak256(abi.encode(subject))));
        return MerkleProof.verifyCalldata(proof, root, leaf);
    }

    // ------------------------------------------------------------------ internals

    function _existing(bytes32 contentRoot) private view returns (Record storage r) {
        r = _records[contentRoot];
        if (r.status == Status.None) revert DatasetNotFound(contentRoot);
    }

    function _holderRecord(bytes32 contentRoot) private view returns (Record storage r) {
        r = _existing(contentRoot);
        address sender = _msgSender();
        if (r.holder != sender) revert NotDatasetHolder(contentRoot, sender, r.holder);
    }

    function _view(bytes32 contentRoot) private view returns (DatasetView memory v) {
        Record storage r = _records[contentRoot];
        v.contentRoot = contentRoot;
        v.holder = r.holder;
        v.tier = r.tier;
        v.status = r.status;
        v.classification = r.classification;
        v.embargoEnd = r.embargoEnd;
        v.registeredBlock = r.registeredBlock;
        v.metadataDigest = r.metadataDigest;
        v.activityDigest = r.activityDigest;
        v.subjectRoot = r.subjectRoot;
        v.successor = _successor[contentRoot];
        v.derivedCount = _derivedCount[contentRoot];
        v.parents = _parents[contentRoot];
    }
}
