"""Every party's operations through the library on a real anvil (and js-ipfs for registration):
consent with delegates and expiry, access with embargo and override, uses refused and allowed,
suspensions of datasets and users."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ledger_fixtures import metadata_for, unique_files, write_files

from ledger.chain.client import ChainClient
from ledger.chain.deployment import ensure_deployed
from ledger.core.classification import Tier
from ledger.core.config import load_settings
from ledger.core.errors import AccessDenied, ConsentNotActive, ContractRevert, UseRefused
from ledger.core.records import ZERO_ADDRESS, ConsentScope, ConsentState, RequestStatus
from ledger.devstack.nodes import AnvilNode, free_port
from ledger.rules import datause
from ledger.rules.datause import Purpose
from ledger.services.ledger import Ledger

HMB = Purpose(datause.HMB)
DS_T2D = Purpose(datause.DS, 5005148)
POA = Purpose(datause.POA)


@pytest.fixture
def world(ledger: Ledger, make_actor: Any, tmp_path: Path) -> dict[str, Any]:
    holder = make_actor("holder")
    w = {
        "holder": holder,
        "reviewer": make_actor("reviewer"),
        "user": make_actor("user"),
        "auditor": make_actor("auditor"),
        "subject": make_actor(),
        "guardian": make_actor(),
    }
    md = metadata_for(holder.address, write_files(tmp_path / "cohort", unique_files("ops")))
    w["root"] = ledger.register_dataset(holder, md, subjects=[w["subject"].address]).content_root
    return w


@pytest.fixture
def private_ledger(ledger: Ledger, tmp_path: Path) -> Any:
    """A Ledger on its own anvil, for tests that move chain time (the session chain must not jump)."""
    node = AnvilNode(tmp_path / "anvil", free_port())
    node.start()
    try:
        settings = load_settings(env={}, rpc_url=node.url, data_dir=str(tmp_path), manage_nodes=False)
        ensure_deployed(settings)
        yield Ledger(settings, ChainClient(settings), ipfs=ledger.ipfs)
    finally:
        node.stop()


def test_consent_lifecycle_with_delegate(private_ledger: Ledger) -> None:
    from eth_account import Account

    ledger = private_ledger
    admin = Account.from_key(ledger.settings.relayer_private_key())
    subject, guardian, holder = Account.create(), Account.create(), Account.create()
    ledger.grant_role(admin, "holder", holder.address)
    root = b"\x07" * 32
    ledger.write(holder, "DatasetRegistry", "register", root, b"\x08" * 32, [], b"\0" * 32, 2, 0x0101, 0, b"\0" * 32)
    now = ledger.now()
    scope = ConsentScope.holder(holder.address)
    assert not ledger.consent_in_force(subject.address, root, HMB)

    # a guardian cannot act before being appointed
    with pytest.raises(AccessDenied):
        ledger.grant_consent(guardian, scope, datause.HMB, now + 86400, subject=subject.address)
    ledger.appoint_delegate(subject, guardian.address, now + 10 * 86400)
    ledger.grant_consent(guardian, scope, datause.HMB | datause.NCU, now + 86400, subject=subject.address)
    assert ledger.consent_in_force(subject.address, root, HMB)
    assert ledger.consent_in_force(subject.address, root, DS_T2D)  # HMB covers disease-specific research
    assert not ledger.consent_in_force(subject.address, root, POA)
    assert not ledger.consent_in_force(subject.address, root, Purpose.of("HMB", ["commercial"]))

    rec = ledger.get_consent(subject.address, scope)
    assert rec.state == ConsentState.GIVEN and rec.purposes & datause.NCU

    # expiry by time, then renewal
    ledger.wait_until(now + 2 * 86400)
    assert not ledger.consent_in_force(subject.address, root, HMB)
    assert ledger.get_consent(subject.address, scope).status_at(ledger.now()) == "expired"
    ledger.renew_consent(subject, scope, ledger.now() + 86400)
    assert ledger.consent_in_force(subject.address, root, HMB)
    assert ledger.get_consent(subject.address, scope).state == ConsentState.RENEWED

    # withdrawal by the subject, effective at once; a second withdrawal is refused by name
    ledger.withdraw_consent(subject, scope)
    assert not ledger.consent_in_force(subject.address, root, HMB)
    with pytest.raises(ConsentNotActive):
        ledger.withdraw_consent(subject, scope)

    ledger.revoke_delegate(subject, guardian.address)
    assert ledger.delegate_expiry(subject.address, guardian.address) == 0


def test_dataset_scoped_consent_for_one_grantee(ledger: Ledger, world: dict[str, Any]) -> None:
    subject, user, root = world["subject"], world["user"], world["root"]
    scope = ConsentScope.dataset(root)
    ledger.grant_consent(subject, scope, datause.DS, ledger.now() + 86400, disease=5005148, grantee=user.address)
    assert ledger.consent_in_force(subject.address, root, DS_T2D, grantee=user.address)
    assert not ledger.consent_in_force(subject.address, root, DS_T2D)  # anyone else
    assert not ledger.consent_in_force(subject.address, root, Purpose(datause.DS, 5005149), grantee=user.address)
    many = ledger.consent_in_force_many([subject.address, world["guardian"].address], root, DS_T2D, user.address)
    assert many == [True, False]


def test_access_use_embargo_and_suspensions(ledger: Ledger, world: dict[str, Any]) -> None:
    holder, reviewer, user, auditor, root = (world[k] for k in ("holder", "reviewer", "user", "auditor", "root"))
    now = ledger.now()
    req = ledger.request_access(user, root, HMB, b"\x11" * 32)
    request_id = int(req.result)
    assert ledger.get_request(request_id).status == RequestStatus.PENDING

    # no approval yet: the use is refused by the contract
    with pytest.raises(UseRefused) as info:
        ledger.record_use(user, root, HMB, request_id=request_id)
    assert info.value.name == "NoApproval"

    # embargo: the reviewer may not decide, the holder may; an auditor's override lets the reviewer
    ledger.set_sharing(holder, root, Tier.CONTROLLED, now + 30 * 86400)
    with pytest.raises(AccessDenied) as emb:
        ledger.approve_access(reviewer, request_id, b"\x22" * 32, now + 3600)
    assert emb.value.name == "DatasetEmbargoed"
    ledger.override_embargo(auditor, root, b"\x33" * 32)
    ledger.approve_access(reviewer, request_id, b"\x22" * 32, now + 3600)
    assert ledger.get_request(request_id).status == RequestStatus.APPROVED

    ledger.record_use(user, root, HMB, request_id=request_id, result_digest=b"\x44" * 32)
    with pytest.raises(UseRefused) as wrong:
        ledger.record_use(user, root, POA, request_id=request_id)
    assert wrong.value.name == "PurposeNotApproved"
    assert ledger.usage_stats(root)["uses"] == 1

    # a suspended user records nothing; reinstated, they can again
    ledger.suspend_user(auditor, user.address, b"\x55" * 32)
    assert ledger.is_user_suspended(user.address)
    with pytest.raises(UseRefused) as sus:
        ledger.record_use(user, root, HMB, request_id=request_id)
    assert sus.value.name == "UserSuspended"
    ledger.reinstate_user(auditor, user.address)

    # a suspended dataset records no use
    ledger.suspend_dataset(auditor, root, b"\x66" * 32)
    with pytest.raises(UseRefused) as ds:
        ledger.record_use(user, root, HMB, request_id=request_id)
    assert ds.value.name == "DatasetNotUsable"
    ledger.reinstate_dataset(auditor, root)
    ledger.record_use(user, root, HMB, request_id=request_id)
    assert ledger.usage_stats(root) == {"uses": 2, "distinct_users": 1, "derived_datasets": 0}


def test_deny_and_revoke(ledger: Ledger, world: dict[str, Any]) -> None:
    reviewer, user, root = world["reviewer"], world["user"], world["root"]
    denied = int(ledger.request_access(user, root, HMB, b"\x01" * 32).result)
    ledger.deny_access(reviewer, denied, b"\x02" * 32)
    assert ledger.get_request(denied).status == RequestStatus.DENIED
    with pytest.raises(ContractRevert) as again:
        ledger.approve_access(reviewer, denied, b"\x03" * 32, ledger.now() + 60)
    assert again.value.name == "InvalidRequestStatus"
    granted = int(ledger.request_access(user, root, HMB, b"\x04" * 32).result)
    ledger.approve_access(reviewer, granted, b"\x05" * 32, ledger.now() + 3600)
    ledger.revoke_access(reviewer, granted, b"\x06" * 32)
    with pytest.raises(UseRefused):
        ledger.record_use(user, root, HMB, request_id=granted)


def test_direct_mode_sends_from_the_actor(ledger: Ledger, make_actor: Any) -> None:
    admin_direct = Ledger(ledger.settings, ledger.client, ipfs=ledger.ipfs, mode="direct")
    actor = make_actor()
    ledger.client.fund([actor.address], 10**18)
    admin_direct.grant_role(admin_direct.client.account, "user", actor.address)
    assert ledger.has_role("user", actor.address)
    assert ledger.roles_of(actor.address) == ["user"]


def test_raw_consent_check_equals_the_contract_view(ledger: Ledger, world: dict[str, Any]) -> None:
    """The hand-encoded isInForce path answers exactly what web3's contract call answers."""
    subject, root, user = world["subject"], world["root"], world["user"]
    ledger.grant_consent(subject, ConsentScope.dataset(root), datause.HMB, ledger.now() + 3600, grantee=user.address)
    for purpose in (HMB, DS_T2D, POA, Purpose.of("HMB", ["commercial"])):
        for grantee in (user.address, None):
            view = ledger.client.call(
                ledger.consents.functions.isInForce(
                    subject.address, root, purpose.mask, purpose.disease, grantee or ZERO_ADDRESS
                )
            )
            assert ledger.consent_in_force(subject.address, root, purpose, grantee) is bool(view)
