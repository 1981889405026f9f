// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ERC2771Forwarder} from "@openzeppelin/contracts/metatx/ERC2771Forwarder.sol";

/// @title LedgerForwarder
/// @notice The ERC-2771 forwarder every ledger registry trusts. A relayer submits requests that
/// holders, reviewers, users, auditors and admins signed (EIP-712, domain "MedLedgerForwarder"
/// version "1"); the registries then see the signer, not the relayer, as the sender.
/// @dev OpenZeppelin's forwarder unchanged. Behaviour the relayer relies on (OpenZeppelin 5.x):
/// - nonces are sequential per signer and part of the signed message;
/// - `executeBatch(requests, refundReceiver)` with a non-zero `refundReceiver` skips a request whose
///   signature, nonce or deadline is invalid (its nonce is not used) and executes the rest; with
///   `address(0)` one invalid request reverts the whole batch;
/// - a valid request whose call reverts does not revert the batch: its nonce is used and
///   `ExecutedForwardRequest(signer, nonce, false)` is emitted (the revert data is not kept, so the
///   relayer simulates requests to report the reason).
contract LedgerForwarder is ERC2771Forwarder {
    constructor() ERC2771Forwarder("MedLedgerForwarder") {}
}
