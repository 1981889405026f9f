"""Chain client and relayer against a real anvil: deployment record checks, nonces under
concurrency and after failed sends, signed requests refused when replayed, expired or tampered,
and reverts decoded into domain exceptions."""

from __future__ import annotations

import dataclasses
import threading
import time
from typing import Any

import pytest
from eth_account import Account

from ledger.chain import typed_data
from ledger.chain.client import ChainClient, DeploymentRecord
from ledger.core.errors import AccessDenied, ContractRevert, DeploymentMismatch, SignatureError, TransactionFailed
from ledger.core.records import ZERO32, ConsentScope
from ledger.relay.relayer import ForwardRequest, _hex
from ledger.rules import datause
from ledger.services.ledger import Ledger, role_id


def test_record_for_another_chain_or_without_code_is_refused(ledger: Ledger) -> None:
    record = ledger.client.record
    assert record is not None
    with pytest.raises(DeploymentMismatch, match="chain 1"):
        ledger.client.check_record(dataclasses.replace(record, chain_id=1))
    fake = dict(record.addresses, UsageRegistry="0x" + "42" * 20)
    with pytest.raises(DeploymentMismatch, match="no code"):
        ledger.client.check_record(dataclasses.replace(record, addresses=fake))
    hashes = dict(record.abi_hashes, LedgerRoles="0" * 64)
    with pytest.raises(DeploymentMismatch, match="another ABI"):
        ledger.client.check_record(dataclasses.replace(record, abi_hashes=hashes))
    codes = dict(record.code_hashes, DatasetRegistry="0" * 64)
    with pytest.raises(DeploymentMismatch, match="other bytecode"):
        ledger.client.check_record(dataclasses.replace(record, code_hashes=codes))


def test_record_round_trips_through_json(ledger: Ledger, tmp_path: Any) -> None:
    record = ledger.client.record
    assert record is not None
    record.save(tmp_path / "r.json")
    assert DeploymentRecord.load(tmp_path / "r.json") == record


def test_concurrent_sends_get_distinct_nonces_and_a_failed_send_leaves_no_gap(ledger: Ledger) -> None:
    client = ChainClient(
        ledger.settings,
        private_key=Account.create().key.hex(),
        record=ledger.client.record,
        artifacts=ledger.client.artifacts,
        check_record=False,
    )
    ledger.client.fund([client.address], 10**18)
    roles = client.contract("LedgerRoles")
    # a send the node refuses (gas far above the block limit) must not consume a nonce
    with pytest.raises(TransactionFailed):
        client.send_raw({"to": client.address, "value": 0, "gas": 10**9, "chainId": client.chain_id, **client.fees()})
    errors: list[BaseException] = []

    def send() -> None:
        try:
            tx = {
                "to": roles.address,
                "value": 0,
                "gas": 50_000,
                "chainId": client.chain_id,
                **client.fees(),
                "data": roles.encode_abi("hasRole", args=[ZERO32, client.address]),
            }
            client.send_raw(tx)
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=send) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert client.w3.eth.get_transaction_count(client.address) == 8


def test_revert_is_decoded_with_name_and_arguments(ledger: Ledger) -> None:
    stranger = Account.create()
    with pytest.raises(AccessDenied) as info:
        ledger.grant_role(stranger, "holder", stranger.address)
    assert info.value.name == "AccessControlUnauthorizedAccount"
    assert info.value.args_["account"] == stranger.address


def test_forward_request_replay_expiry_and_tampering(ledger: Ledger, admin: Any) -> None:
    relayer = ledger.relayer
    target = Account.create()
    req = relayer.sign_request(admin, "LedgerRoles", "grantRole", role_id("user"), target.address)
    relayer.check(req)
    # tampered field: the signature no longer recovers to the sender
    forged = dataclasses.replace(
        req, data=relayer.encode("LedgerRoles", "grantRole", role_id("auditor"), target.address)[1]
    )
    with pytest.raises(SignatureError, match="signed by"):
        relayer.check(forged)
    assert relayer.submit([req])[0].ok
    assert ledger.has_role("user", target.address)
    # replay: the nonce is used, the request is refused before queueing and skipped if sent anyway
    with pytest.raises(SignatureError, match="nonce"):
        relayer.check(req)
    outcome = relayer.submit([req])[0]
    assert not outcome.ok and "skipped" in str(outcome.error)
    # expired
    late = relayer.sign_request(
        admin, "LedgerRoles", "grantRole", role_id("user"), Account.create().address, deadline=int(time.time()) - 1
    )
    with pytest.raises(SignatureError, match="deadline"):
        relayer.check(late)


def test_batch_reports_each_outcome_with_decoded_reason(ledger: Ledger, admin: Any) -> None:
    relayer = ledger.relayer
    a, b = Account.create(), Account.create()
    good = relayer.sign_request(admin, "LedgerRoles", "grantRole", role_id("user"), a.address)
    # a request that reverts inside the batch (the signer is no admin), signed without simulation
    stranger = Account.create()
    to, data = relayer.encode("LedgerRoles", "grantRole", role_id("user"), b.address)

    unsigned = ForwardRequest(stranger.address, to, 0, 200_000, 0, int(time.time()) + 600, data, b"")
    sig = typed_data.sign(unsigned.typed(ledger.client.chain_id, relayer.forwarder.address), stranger.key)
    failing = dataclasses.replace(unsigned, signature=sig)
    outcomes = relayer.submit([good, failing])
    assert outcomes[0].ok
    assert not outcomes[1].ok
    assert isinstance(outcomes[1].error, ContractRevert)
    assert outcomes[1].error.name == "AccessControlUnauthorizedAccount"
    assert relayer.chain_nonce(stranger.address) == 1  # a reverted call still uses its nonce


def test_fast_eip712_matches_the_generic_encoder() -> None:
    import os

    acct = Account.create()
    registry = "0x" + "ab" * 20
    msg = {
        "subject": acct.address,
        "scopeKind": 1,
        "scope": os.urandom(32),
        "grantee": acct.address,
        "purposes": 4 | (1 << 16),
        "diseaseCode": 5148,
        "expiry": 2**39,
        "nonce": 2**200 + 7,
        "deadline": 2**40,
    }
    typed = typed_data.consent_message("Grant", chain_id=31337, registry=registry, message=msg)
    sig = typed_data.sign(typed, acct.key)
    sep = typed_data.domain_separator(typed_data.CONSENT_NAME, "1", 31337, registry)
    assert typed_data.message_digest("Grant", msg, sep) == typed_data.digest(typed)
    assert typed_data.recover_digest(typed_data.message_digest("Grant", msg, sep), sig) == acct.address
    # a malleable (high-s) twin of a valid signature is refused, as the contract's ECDSA does
    s = int.from_bytes(sig[32:64], "big")
    twin = sig[:32] + (typed_data.SECP256K1_N - s).to_bytes(32, "big") + bytes([sig[64] ^ 1])
    with pytest.raises(SignatureError):
        typed_data.recover_digest(typed_data.message_digest("Grant", msg, sep), twin)


def test_consent_call_encoding_matches_web3(ledger: Ledger) -> None:
    """relayBatch calldata is encoded with precomputed selectors; it must equal web3's encoding."""
    import os

    a = Account.create()
    messages = {
        "Grant": ledger.consent_message(
            "Grant", subject=a.address, scope=ConsentScope.holder(a.address), purposes=datause.HMB, expiry=2**39
        ),
        "Renew": ledger.consent_message(
            "Renew",
            subject=a.address,
            scope=ConsentScope.dataset(os.urandom(32)),
            grantee=Account.create().address,
            expiry=2**39,
        ),
        "Withdraw": ledger.consent_message("Withdraw", subject=a.address, scope=ConsentScope.holder(a.address)),
        "AppointDelegate": ledger.consent_message(
            "AppointDelegate", subject=a.address, delegate=Account.create().address, expiry=2**39
        ),
        "RevokeDelegate": ledger.consent_message(
            "RevokeDelegate", subject=a.address, delegate=Account.create().address
        ),
    }
    for kind, msg in messages.items():
        sc = ledger.relayer.sign_consent(a, kind, msg)
        fields = [f["name"] for f in typed_data.CONSENT_TYPES[kind]]
        values = tuple(_hex(sc.message[f]) if f == "scope" else sc.message[f] for f in fields)
        web3_data = ledger.consents.encode_abi(typed_data.CONSENT_FUNCTIONS[kind], args=[values, sc.signature])
        assert ledger.relayer.consent_call(sc) == bytes.fromhex(web3_data[2:]), kind
