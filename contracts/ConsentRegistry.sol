// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ERC2771Context} from "@openzeppelin/contracts/metatx/ERC2771Context.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {IDatasetRegistry} from "./interfaces/IDatasetRegistry.sol";
import {DataUse} from "./libraries/DataUse.sol";

/// @title ConsentRegistry
/// @notice Data subjects' consent (ISO/IEC TS 27560 states: given, renewed, withdrawn; expired by
/// time). A consent is keyed by (subject, scope, grantee): scope is one holder (all its current and
/// future datasets: "authorise once, use many times") or one dataset; grantee is one user or anyone
/// (address zero). Purposes are a DUO-based mask (see DataUse). Granting again for the same key
/// replaces the earlier terms. A subject may appoint delegates (guardians) until an expiry.
///
/// Every write exists twice: sent directly (or relayed through the ERC-2771 forwarder), and as an
/// EIP-712 typed message signed by the subject or a delegate (domain "MedLedgerConsent", "1") whose
/// fields a wallet shows. Signed messages use unordered nonces (any unused uint256 per signer), so
/// a signed withdrawal can be executed before earlier signed grants: nothing can hold it back.
/// Withdrawal needs no role, cannot be paused and no other party can block it.
/// @dev One storage slot per consent (purposes, disease, expiry, state, block), keyed by
/// `consentId(subject, scopeKind, scope, grantee)`. The events carry every field, so the history
/// is rebuilt from logs alone.
contract ConsentRegistry is ERC2771Context, EIP712 {
    /// @notice What a consent applies to.
    enum ScopeKind {
        Holder,
        Dataset
    }

    /// @notice Stored state. Expiry is derived from time and not stored.
    enum State {
        None,
        Given,
        Renewed,
        Withdrawn
    }

    /// @notice One consent (one storage slot).
    struct Consent {
        uint64 purposes;
        uint32 diseaseCode;
        uint40 expiry;
        State state;
        uint40 updatedBlock;
    }

    struct Grant {
        address subject;
        ScopeKind scopeKind;
        bytes32 scope;
        address grantee;
        uint64 purposes;
        uint32 diseaseCode;
        uint40 expiry;
        uint256 nonce;
        uint256 deadline;
    }

    struct Renew {
        address subject;
        ScopeKind scopeKind;
        bytes32 scope;
        address grantee;
        uint40 expiry;
        uint256 nonce;
        uint256 deadline;
    }

    struct Withdraw {
        address subject;
        ScopeKind scopeKind;
        bytes32 scope;
        address grantee;
        uint256 nonce;
        uint256 deadline;
    }

    struct AppointDelegate {
        address subject;
        address delegate;
        uint40 expiry;
        uint256 nonce;
        uint256 deadline;
    }

    struct RevokeDelegate {
        address subject;
        address delegate;
        uint256 nonce;
        uint256 deadline;
    }

    bytes32 public constant GRANT_TYPEHASH = keccak256(
        "Grant(address subject,uint8 scopeKind,bytes32 scope,address grantee,uint64 purposes,uint32 diseaseCode,uint40 expiry,uint256 nonce,uint256 deadline)"
    );
    bytes32 public constant RENEW_TYPEHASH = keccak256(
        "Renew(address subject,uint8 scopeKind,bytes32 scope,address grantee,uint40 expiry,uint256 nonce,uint256 deadline)"
    );
    bytes32 public constant WITHDRAW_TYPEHASH = keccak256(
        "Withdraw(address subject,uint8 scopeKind,bytes32 scope,address grantee,uint256 nonce,uint256 deadline)"
    );
    bytes32 public constant APPOINT_DELEGATE_TYPEHASH =
        keccak256("AppointDelegate(address subject,address delegate,uint40 expiry,uint256 nonce,uint256 deadline)");
    bytes32 public constant REVOKE_DELEGATE_TYPEHASH =
        keccak256("RevokeDelegate(address subject,address delegate,uint256 nonce,uint256 deadline)");

    /// @notice The dataset registry (to resolve a dataset's holder and check dataset scopes).
    IDatasetRegistry public immutable datasets;

    mapping(bytes32 consentId => Consent) private _consents;
    mapping(address subject => mapping(address delegate => uint40 expiry)) private _delegates;
    mapping(address signer => mapping(uint256 word => uint256 bits)) private _usedNonces;

    /// @notice The caller is neither the subject nor one of its delegates in force.
    error NotSubjectOrDelegate(address subject, address caller);
    /// @notice Purposes mask or disease code is malformed (see DataUse.isValidGrant).
    error InvalidPurposes(uint64 purposes, uint32 diseaseCode);
    /// @notice The expiry is not in the future.
    error ExpiryNotInFuture(uint40 expiry, uint256 nowTimestamp);
    /// @notice A holder scope must be an address; a dataset scope must be a registered dataset.
    error InvalidScope(ScopeKind scopeKind, bytes32 scope);
    /// @notice No consent to renew: none was given, or it was withdrawn (grant anew instead).
    error ConsentNotRenewable(bytes32 consentId, State state);
    /// @notice No consent to withdraw: none was given, or it is already withdrawn.
    error ConsentNotActive(bytes32 consentId, State state);
    /// @notice A delegate cannot be the subject itself or the zero address.
    error InvalidDelegate(address subject, address delegate);
    /// @notice The delegate to revoke is not appointed.
    error DelegateNotAppointed(address subject, address delegate);
    /// @notice The signed message's deadline has passed.
    error SignatureExpired(uint256 deadline, uint256 nowTimestamp);
    /// @notice The signature does not recover to a party allowed to act for the subject.
    error InvalidSigner(address recovered, address subject);
    /// @notice The signer already used this nonce.
    error NonceAlreadyUsed(address signer, uint256 nonce);
    /// @notice relayBatch accepts only the *BySig functions.
    error NotASignedCall(uint256 index, bytes4 selector);

    /// @notice A consent was given (or its terms replaced by a new grant).
    event ConsentGiven(
        bytes32 indexed consentId,
        address indexed subject,
        bytes32 indexed scope,
        ScopeKind scopeKind,
        address grantee,
        uint64 purposes,
        uint32 diseaseCode,
        uint40 expiry,
        address actor
    );
    /// @notice A consent's expiry was extended (or an expired consent renewed).
    event ConsentRenewed(bytes32 indexed consentId, address indexed subject, uint40 expiry, address actor);
    /// @notice A consent was withdrawn; it no longer covers anything from this block on.
    event ConsentWithdrawn(bytes32 indexed consentId, address indexed subject, address actor);
    /// @notice A subject appointed (or re-appointed) a delegate until `expiry`.
    event DelegateAppointed(address indexed subject, address indexed delegate, uint40 expiry);
    /// @notice A subject revoked a delegate.
    event DelegateRevoked(address indexed subject, address indexed delegate);
    /// @notice One call of a relayBatch failed; the others went through.
    event SignedCallFailed(uint256 indexed index, bytes reason);

    /// @param trustedForwarder the LedgerForwarder
    /// @param datasets_ the DatasetRegistry
    constructor(address trustedForwarder, IDatasetRegistry datasets_)
        ERC2771Context(trustedForwarder)
        EIP712("MedLedgerConsent", "1")
    {
        datasets = datasets_;
    }

    // ------------------------------------------------------------------ direct writes

    /// @notice Give consent (or replace the terms of an existing one for the same key).
    /// @param subject the data subject; the caller must be it or its delegate
    /// @param scopeKind Holder (scope = the holder's address, left-padded) or Dataset (a content root)
    /// @param scope the holder address or dataset content root
    /// @param grantee the only user covered, or address(0) for any user
    /// @param purposes DUO permission and modifier bits (DataUse)
    /// @param diseaseCode MONDO code for disease-specific research, else 0
    /// @param expiry unix time the consent ends
    function grant(
        address subject,
        ScopeKind scopeKind,
        bytes32 scope,
        address grantee,
        uint64 purposes,
        uint32 diseaseCode,
        uint40 expiry
    ) external returns (bytes32 consentId) {
        address actor = _msgSender();
        _requireActor(subject, actor);
        return _grant(subject, scopeKind, scope, grantee, purposes, diseaseCode, expiry, actor);
    }

    /// @notice Renew a consent that was given or renewed (expired ones included): set its expiry to
    /// `expiry`, which must be in the future (usually later; a subject may also shorten it).
    function renew(address subject, ScopeKind scopeKind, bytes32 scope, address grantee, uint40 expiry) external {
        address actor = _msgSender();
        _requireActor(subject, actor);
        _renew(subject, scopeKind, scope, grantee, expiry, actor);
    }

    /// @notice Withdraw a consent. Effective from this block on; never blocked by anyone.
    function withdraw(address subject, ScopeKind scopeKind, bytes32 scope, address grantee) external {
        address actor = _msgSender();
        _requireActor(subject, actor);
        _withdraw(subject, scopeKind, scope, grantee, actor);
    }

    /// @notice Appoint `delegate` (a guardian) to act for the caller until `expiry`. Only the
    /// subject appoints; delegates cannot appoint further delegates.
    function appointDelegate(address delegate, uint40 expiry) external {
        _appoint(_msgSender(), delegate, expiry);
    }

    /// @notice Revoke a delegate of the caller.
    function revokeDelegate(address delegate) external {
        _revokeDelegate(_msgSender(), delegate);
    }

    // ------------------------------------------------------------------ signed writes

    /// @notice Give consent by a message the subject or its delegate signed (EIP-712 `Grant`).
    function grantBySig(Grant calldata g, bytes calldata signature) external returns (bytes32) {
        bytes32 structHash = keccak256(
            abi.encode(
                GRANT_TYPEHASH,
                g.subject,
                g.scopeKind,
                g.scope,
                g.grantee,
                g.purposes,
                g.diseaseCode,
                g.expiry,
                g.nonce,
                g.deadline
            )
        );
        address signer = _verify(structHash, signature, g.subject, g.nonce, g.deadline, true);
        return _grant(g.subject, g.scopeKind, g.scope, g.grantee, g.purposes, g.diseaseCode, g.expiry, signer);
    }

    /// @notice Renew by a signed EIP-712 `Renew` message.
    function renewBySig(Renew calldata r, bytes calldata signature) external {
        bytes32 structHash = keccak256(
            abi.encode(RENEW_TYPEHASH, r.subject, r.scopeKind, r.scope, r.grantee, r.expiry, r.nonce, r.deadline)
        );
        address signer = _verify(structHash, signature, r.subject, r.nonce, r.deadline, true);
        _renew(r.subject, r.scopeKind, r.scope, r.grantee, r.expiry, signer);
    }

    /// @notice Withdraw by a signed EIP-712 `Withdraw` message.
    function withdrawBySig(Withdraw calldata w, bytes calldata signature) external {
        bytes32 structHash =
            keccak256(abi.encode(WITHDRAW_TYPEHASH, w.subject, w.scopeKind, w.scope, w.grantee, w.nonce, w.deadline));
        address signer = _verify(structHash, signature, w.subject, w.nonce, w.deadline, true);
        _withdraw(w.subject, w.scopeKind, w.scope, w.grantee, signer);
    }

    /// @notice Appoint a delegate by a message the subject signed (EIP-712 `AppointDelegate`).
    function appointDelegateBySig(AppointDelegate calldata a, bytes calldata signature) external {
        bytes32 structHash =
            keccak256(abi.encode(APPOINT_DELEGATE_TYPEHASH, a.subject, a.delegate, a.expiry, a.nonce, a.deadline));
        _verify(structHash, signature, a.subject, a.nonce, a.deadline, false);
        _appoint(a.subject, a.delegate, a.expiry);
    }

    /// @notice Revoke a delegate by a message the subject signed (EIP-712 `RevokeDelegate`).
    function revokeDelegateBySig(RevokeDelegate calldata r, bytes calldata signature) external {
        bytes32 structHash = keccak256(abi.encode(REVOKE_DELEGATE_TYPEHASH, r.subject, r.delegate, r.nonce, r.deadline));
        _verify(structHash, signature, r.subject, r.nonce, r.deadline, false);
        _revokeDelegate(r.subject, r.delegate);
    }

    /// @notice Execute many signed consent calls (encoded *BySig calls) in one transaction. A call
    /// that fails emits SignedCallFailed with its revert data and does not stop the others.
    /// @return ok whether each call succeeded
    function relayBatch(bytes[] calldata calls) external returns (bool[] memory ok) {
        ok = new bool[](calls.length);
        for (uint256 i; i < calls.length; ++i) {
            if (calls[i].length < 4) revert NotASignedCall(i, bytes4(0));
            bytes4 selector = bytes4(calls[i][:4]);
            if (
                selector != this.grantBySig.selector && selector != this.renewBySig.selector
                    && selector != this.withdrawBySig.selector && selector != this.appointDelegateBySig.selector
                    && selector != this.revokeDelegateBySig.selector
            ) revert NotASignedCall(i, selector);
            (bool success, bytes memory reason) = address(this).delegatecall(calls[i]);
            ok[i] = success;
            if (!success) emit SignedCallFailed(i, reason);
        }
    }

    // ------------------------------------------------------------------ views

    /// @notice The key of a consent.
    function consentId(address subject, ScopeKind scopeKind, bytes32 scope, address grantee)
        public
        pure
        returns (bytes32)
    {
        return keccak256(abi.encode(subject, scopeKind, scope, grantee));
    }

    /// @notice A stored consent (state None if never given).
    function getConsent(bytes32 id) external view returns (Consent memory) {
        return _consents[id];
    }

    /// @notice Whether `subject`'s consent is in force now for using `dataset` for `purpose`
    /// (a valid DataUse use mask, with `diseaseCode` where DS; false for a malformed one) by
    /// `grantee`: a dataset-scoped or
    /// holder-wide consent, to that grantee or to anyone, given or renewed, not expired, covering
    /// the purpose.
    function isInForce(address subject, bytes32 dataset, uint64 purpose, uint32 diseaseCode, address grantee)
        public
        view
        returns (bool)
    {
        (address holder,, IDatasetRegistry.Status status,) = datasets.accessInfo(dataset);
        if (status == IDatasetRegistry.Status.None) return false;
        return _inForce(subject, dataset, holder, purpose, diseaseCode, grantee);
    }

    /// @notice isInForce for many subjects and one dataset, purpose and grantee (cohort filtering).
    function inForceBatch(
        address[] calldata subjects,
        bytes32 dataset,
        uint64 purpose,
        uint32 diseaseCode,
        address grantee
    ) external view returns (bool[] memory out) {
        out = new bool[](subjects.length);
        (address holder,, IDatasetRegistry.Status status,) = datasets.accessInfo(dataset);
        if (status == IDatasetRegistry.Status.None) return out;
        for (uint256 i; i < subjects.length; ++i) {
            out[i] = _inForce(subjects[i], dataset, holder, purpose, diseaseCode, grantee);
        }
    }

    /// @notice Until when `delegate` may act for `subject` (0 if never appointed or revoked).
    function delegateExpiry(address subject, address delegate) external view returns (uint40) {
        return _delegates[subject][delegate];
    }

    /// @notice Whether `signer` has used `nonce` for a signed message.
    function nonceUsed(address signer, uint256 nonce) external view returns (bool) {
        return _usedNonces[signer][nonce >> 8] & (1 << (nonce & 0xff)) != 0;
    }

    /// @notice The EIP-712 domain separator of the signed consent messages.
    function domainSeparator() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    // ------------------------------------------------------------------ internals

    function _inForce(
        address subject,
        bytes32 dataset,
        address holder,
        uint64 purpose,
        uint32 diseaseCode,
        address grantee
    ) private view returns (bool) {
        if (!DataUse.isValidUse(purpose, diseaseCode)) return false;
        bytes32 holderScope = bytes32(uint256(uint160(holder)));
        if (_covers(consentId(subject, ScopeKind.Dataset, dataset, address(0)), purpose, diseaseCode)) return true;
        if (_covers(consentId(subject, ScopeKind.Holder, holderScope, address(0)), purpose, diseaseCode)) return true;
        if (grantee == address(0)) return false;
        if (_covers(consentId(subject, ScopeKind.Dataset, dataset, grantee), purpose, diseaseCode)) return true;
        return _covers(consentId(subject, ScopeKind.Holder, holderScope, grantee), purpose, diseaseCode);
    }

    function _covers(bytes32 id, uint64 purpose, uint32 diseaseCode) private view returns (bool) {
        Consent storage c = _consents[id];
        State state = c.state;
        if (state != State.Given && state != State.Renewed) return false;
        if (c.expiry <= block.timestamp) return false;
        return DataUse.covers(c.purposes, c.diseaseCode, purpose, diseaseCode);
    }

    function _grant(
        address subject,
        ScopeKind scopeKind,
        bytes32 scope,
        address grantee,
        uint64 purposes,
        uint32 diseaseCode,
        uint40 expiry,
        address actor
    ) private returns (bytes32 id) {
        if (!DataUse.isValidGrant(purposes, diseaseCode)) revert InvalidPurposes(purposes, diseaseCode);
        if (expiry <= block.timestamp) revert ExpiryNotInFuture(expiry, block.timestamp);
        if (scopeKind == ScopeKind.Holder) {
            if (uint256(scope) >> 160 != 0 || scope == bytes32(0)) revert InvalidScope(scopeKind, scope);
        } else {
            (,, IDatasetRegistry.Status status,) = datasets.accessInfo(scope);
            if (status == IDatasetRegistry.Status.None) revert InvalidScope(scopeKind, scope);
        }
        id = consentId(subject, scopeKind, scope, grantee);
        _consents[id] = Consent({
            purposes: purposes,
            diseaseCode: diseaseCode,
            expiry: expiry,
            state: State.Given,
            updatedBlock: uint40(block.number)
        });
        emit ConsentGiven(id, subject, scope, scopeKind, grantee, purposes, diseaseCode, expiry, actor);
    }

    function _renew(
        address subject,
        ScopeKind scopeKind,
        bytes32 scope,
        address grantee,
        uint40 expiry,
        address actor
    ) private {
        bytes32 id = consentId(subject, scopeKind, scope, grantee);
        Consent storage c = _consents[id];
        State state = c.state;
        if (state != State.Given && state != State.Renewed) revert ConsentNotRenewable(id, state);
        if (expiry <= block.timestamp) revert ExpiryNotInFuture(expiry, block.timestamp);
        c.expiry = expiry;
        c.state = State.Renewed;
        c.updatedBlock = uint40(block.number);
        emit ConsentRenewed(id, subject, expiry, actor);
    }

    function _withdraw(address subject, ScopeKind scopeKind, bytes32 scope, address grantee, address actor)
        private
    {
        bytes32 id = consentId(subject, scopeKind, scope, grantee);
        Consent storage c = _consents[id];
        State state = c.state;
        if (state != State.Given && state != State.Renewed) revert ConsentNotActive(id, state);
        c.state = State.Withdrawn;
        c.updatedBlock = uint40(block.number);
        emit ConsentWithdrawn(id, subject, actor);
    }

    function _appoint(address subject, address delegate, uint40 expiry) private {
        if (delegate == address(0) || delegate == subject) revert InvalidDelegate(subject, delegate);
        if (expiry <= block.timestamp) revert ExpiryNotInFuture(expiry, block.timestamp);
        _delegates[subject][delegate] = expiry;
        emit DelegateAppointed(subject, delegate, expiry);
    }

    function _revokeDelegate(address subject, address delegate) private {
        if (_delegates[subject][delegate] == 0) revert DelegateNotAppointed(subject, delegate);
        delete _delegates[subject][delegate];
        emit DelegateRevoked(subject, delegate);
    }

    function _requireActor(address subject, address actor) private view {
        if (actor != subject && _delegates[subject][actor] <= block.timestamp) {
            revert NotSubjectOrDelegate(subject, actor);
        }
    }

    /// @dev Checks deadline, signature and nonce, then marks the nonce used. A delegate's signature
    /// counts only where `allowDelegate` (delegates cannot manage delegates).
    function _verify(
        bytes32 structHash,
        bytes calldata signature,
        address subject,
        uint256 nonce,
        uint256 deadline,
        bool allowDelegate
    ) private returns (address signer) {
        if (deadline < block.timestamp) revert SignatureExpired(deadline, block.timestamp);
        (address recovered, ECDSA.RecoverError err,) = ECDSA.tryRecover(_hashTypedDataV4(structHash), signature);
        if (err != ECDSA.RecoverError.NoError) revert InvalidSigner(address(0), subject);
        if (recovered != subject && (!allowDelegate || _delegates[subject][recovered] <= block.timestamp)) {
            revert InvalidSigner(recovered, subject);
        }
        uint256 bit = 1 << (nonce & 0xff);
        uint256 word = _usedNonces[recovered][nonce >> 8];
        if (word & bit != 0) revert NonceAlreadyUsed(recovered, nonce);
        _usedNonces[recovered][nonce >> 8] = word | bit;
        return recovered;
    }
}
