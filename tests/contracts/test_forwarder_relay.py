"""Relayed writes through the LedgerForwarder (OpenZeppelin ERC2771Forwarder).

Requests are EIP-712 `ForwardRequest`s (domain "MedLedgerForwarder", "1") signed with fresh keys
that hold no ETH; a relayer account submits them. Behaviour shown here:
- every registry sees the signer, not the relayer, as the sender (events name the signer);
- nonces are sequential per signer: a replayed request no longer matches the signer's nonce and is
  refused as ERC2771ForwarderInvalidSigner (the recovered address is some unrelated one);
- a request past its deadline is refused (ERC2771ForwarderExpiredRequest); the deadline is inclusive;
- changing any signed field breaks the signature (ERC2771ForwarderInvalidSigner), and a target that
  does not trust the forwarder is refused (ERC2771UntrustfulTarget);
- executeBatch with refundReceiver = address(0) is atomic: one invalid request reverts the batch;
  with a non-zero refundReceiver an invalid request is skipped (no event, nonce unused);
- a valid request whose call reverts does not revert a batch: it emits
  ExecutedForwardRequest(signer, nonce, false) and its nonce is used; through execute() the same
  request reverts with FailedCall() and uses no nonce.
"""

import pytest
from chain_helpers import (
    ADMIN_ROLE,
    AUDITOR_ROLE,
    DUO,
    HOLDER_ROLE,
    REVIEWER_ROLE,
    USER_ROLE,
    ZERO32,
    ZERO_ADDRESS,
    Scope,
    Tier,
    addr,
    assert_event,
    assert_no_event,
    b32,
    calldata,
    expect_revert,
    holder_scope,
    latest_timestamp,
    new_key,
    plain,
    set_next_timestamp,
    sign_call,
    sign_forward,
)

DAY = 86400


@pytest.fixture
def keys(roles, admin):
    """Fresh keys with roles (granted directly by the admin); none holds any ETH."""
    out = {name: new_key() for name in ("admin", "holder", "reviewer", "user", "auditor", "subject", "other")}
    for name, role in (
        ("admin", ADMIN_ROLE),
        ("holder", HOLDER_ROLE),
        ("reviewer", REVIEWER_ROLE),
        ("user", USER_ROLE),
        ("auditor", AUDITOR_ROLE),
    ):
        roles.grantRole(role, out[name].address, {"from": admin})
    return out


def execute(forwarder, relayer, request):
    return forwarder.execute(request.as_tuple(), {"from": relayer})


def register_call(datasets, key_name="r", parents=(), tier=Tier.OPEN, embargo=0):
    return (
        datasets,
        "register",
        b32(key_name),
        b32(f"{key_name}-meta"),
        list(parents),
        ZERO32,
        tier,
        1,
        embargo,
        ZERO32,
    )


def test_relayed_register_names_signer_as_holder(forwarder, datasets, relayer, keys, web3):
    holder = keys["holder"]
    assert web3.eth.get_balance(holder.address) == 0
    request = sign_call(forwarder, holder, *register_call(datasets, "relayed"))
    assert request.nonce == 0
    assert forwarder.verify(request.as_tuple())
    tx = execute(forwarder, relayer, request)
    assert tx.sender == relayer
    assert_event(tx, "ExecutedForwardRequest", signer=holder.address, nonce=0, success=True, emitter=forwarder)
    assert_event(tx, "DatasetRegistered", contentRoot=b32("relayed"), holder=holder.address, emitter=datasets)
    assert plain(datasets.accessInfo(b32("relayed"))[0]) == plain(holder.address)
    assert forwarder.nonces(holder.address) == 1
    assert not forwarder.verify(request.as_tuple())


def test_relayed_writes_in_every_registry_record_the_signer(
    forwarder, roles, datasets, consent, access, usage, relayer, keys, reviewer
):
    admin, holder, user, auditor, subject = (keys[k] for k in ("admin", "holder", "user", "auditor", "subject"))
    newcomer = new_key()

    tx = execute(forwarder, relayer, sign_call(forwarder, admin, roles, "grantRole", USER_ROLE, newcomer.address))
    assert_event(tx, "RoleGranted", role=USER_ROLE, account=newcomer.address, sender=admin.address)

    root = b32("controlled")
    tx = execute(
        forwarder, relayer, sign_call(forwarder, holder, *register_call(datasets, "controlled", tier=Tier.CONTROLLED))
    )
    assert_event(tx, "DatasetRegistered", holder=holder.address)

    expiry = latest_timestamp() + DAY
    tx = execute(
        forwarder,
        relayer,
        sign_call(
            forwarder, subject, consent, "grant", subject.address, Scope.DATASET, root, ZERO_ADDRESS, DUO.HMB, 0, expiry
        ),
    )
    assert_event(tx, "ConsentGiven", subject=subject.address, actor=subject.address, scope=root)

    tx = execute(
        forwarder, relayer, sign_call(forwarder, subject, consent, "appointDelegate", newcomer.address, expiry)
    )
    assert_event(tx, "DelegateAppointed", subject=subject.address, delegate=newcomer.address)

    tx = execute(
        forwarder, relayer, sign_call(forwarder, user, access, "requestAccess", root, DUO.HMB, 0, b32("protocol"))
    )
    assert_event(tx, "AccessRequested", requestId=1, dataset=root, requester=user.address)

    tx = access.approve(1, b32("conditions"), expiry, {"from": reviewer})
    tx = execute(forwarder, relayer, sign_call(forwarder, user, usage, "recordUse", root, 1, DUO.HMB, 0, b32("paper")))
    assert_event(tx, "UseRecorded", dataset=root, user=user.address, requestId=1, useNumber=1)
    assert usage.hasUsed(root, user.address)

    tx = execute(forwarder, relayer, sign_call(forwarder, auditor, datasets, "suspend", root, b32("why")))
    assert_event(tx, "DatasetSuspended", contentRoot=root, auditor=auditor.address)
    for key in (admin, holder, subject, user, auditor):
        assert forwarder.nonces(key.address) >= 1


def test_relayed_reviewer_decision(forwarder, datasets, access, relayer, keys, holder, user):
    root = b32("ds")
    datasets.register(root, b32("m"), [], ZERO32, Tier.CONTROLLED, 1, 0, ZERO32, {"from": holder})
    access.requestAccess(root, DUO.GRU, 0, b32("p"), {"from": user})
    reviewer = keys["reviewer"]
    tx = execute(forwarder, relayer, sign_call(forwarder, reviewer, access, "deny", 1, b32("reason")))
    assert_event(tx, "AccessDenied", requestId=1, reviewer=reviewer.address, reasonDigest=b32("reason"))


def test_replay_refused(forwarder, datasets, relayer, keys):
    holder = keys["holder"]
    request = sign_call(forwarder, holder, *register_call(datasets))
    execute(forwarder, relayer, request)
    recovered = request.recovered_with_nonce(1)
    assert addr(recovered) != addr(holder.address)
    with expect_revert("ERC2771ForwarderInvalidSigner(address,address)", recovered, holder.address):
        execute(forwarder, relayer, request)
    assert forwarder.nonces(holder.address) == 1


def test_future_nonce_refused(forwarder, datasets, relayer, keys):
    holder = keys["holder"]
    request = sign_call(forwarder, holder, *register_call(datasets), nonce=1)
    with expect_revert(
        "ERC2771ForwarderInvalidSigner(address,address)", request.recovered_with_nonce(0), holder.address
    ):
        execute(forwarder, relayer, request)


def test_deadline(forwarder, datasets, relayer, keys):
    holder = keys["holder"]
    t = latest_timestamp() + 30
    late = sign_call(forwarder, holder, *register_call(datasets, "a"), deadline=t)
    set_next_timestamp(t + 1)
    with expect_revert("ERC2771ForwarderExpiredRequest(uint48)", t):
        execute(forwarder, relayer, late)
    assert forwarder.nonces(holder.address) == 0
    on_time = sign_call(forwarder, holder, *register_call(datasets, "b"), deadline=t + 10)
    set_next_timestamp(t + 10)
    execute(forwarder, relayer, on_time)


@pytest.mark.parametrize("field", ["data", "gas", "to", "deadline", "nonce"])
def test_tampered_field_refused(forwarder, datasets, consent, relayer, keys, field):
    holder = keys["holder"]
    request = sign_call(forwarder, holder, *register_call(datasets))
    changes = {
        "data": {"data": calldata(*register_call(datasets, "other"))},
        "gas": {"gas": request.gas + 1},
        "to": {"to": addr(consent)},  # another target that trusts the forwarder
        "deadline": {"deadline": request.deadline + 1},
        "nonce": {},  # the nonce is not sent: signed with 5, checked against the current 0
    }[field]
    if field == "nonce":
        request = sign_call(forwarder, holder, *register_call(datasets), nonce=5)
    tampered = request.tampered(**changes)
    # the forwarder hashes the (tampered) fields with the signer's current nonce, 0
    recovered = tampered.recovered_with_nonce(0)
    assert addr(recovered) != addr(holder.address)
    with expect_revert("ERC2771ForwarderInvalidSigner(address,address)", recovered, holder.address):
        execute(forwarder, relayer, tampered)


def test_tampered_from_refused(forwarder, datasets, relayer, keys):
    holder, other = keys["holder"], keys["other"]
    request = sign_call(forwarder, holder, *register_call(datasets)).tampered(from_=addr(other.address))
    recovered = request.recovered_with_nonce(0)
    assert addr(recovered) not in (addr(holder.address), addr(other.address))
    with expect_revert("ERC2771ForwarderInvalidSigner(address,address)", recovered, other.address):
        execute(forwarder, relayer, request)


def test_untrusting_target_refused(forwarder, relayer, keys, stranger):
    holder = keys["holder"]
    for target in (forwarder, stranger):
        request = sign_forward(forwarder, holder, target, b"\x12\x34\x56\x78")
        with expect_revert("ERC2771UntrustfulTarget(address,address)", target, forwarder):
            execute(forwarder, relayer, request)


def test_value_mismatch_refused(forwarder, datasets, relayer, keys):
    request = sign_call(forwarder, keys["holder"], *register_call(datasets))
    with expect_revert("ERC2771ForwarderMismatchedValue(uint256,uint256)", 0, 1):
        forwarder.execute(request.as_tuple(), {"from": relayer, "value": 1})


def test_execute_of_reverting_call_reverts_and_keeps_nonce(forwarder, datasets, relayer, keys):
    """execute() turns a failed inner call into FailedCall(); the nonce stays unused."""
    other = keys["other"]  # no holder role
    request = sign_call(forwarder, other, *register_call(datasets))
    with expect_revert("FailedCall()"):
        execute(forwarder, relayer, request)
    assert forwarder.nonces(other.address) == 0


def test_batch_with_reverting_call_uses_its_nonce(forwarder, datasets, relayer, keys):
    """In a batch, a valid request whose call reverts emits ExecutedForwardRequest(signer, nonce,
    false), uses its nonce and changes nothing else; the other requests execute."""
    holder, other = keys["holder"], keys["other"]
    failing = sign_call(forwarder, other, *register_call(datasets, "x"))
    ok = sign_call(forwarder, holder, *register_call(datasets, "y"))
    for refund in (ZERO_ADDRESS, relayer):
        if refund != ZERO_ADDRESS:
            failing = sign_call(forwarder, other, *register_call(datasets, "x"))
            ok = sign_call(forwarder, holder, *register_call(datasets, "z"))
        before = forwarder.nonces(other.address)
        tx = forwarder.executeBatch([failing.as_tuple(), ok.as_tuple()], refund, {"from": relayer})
        assert_event(tx, "ExecutedForwardRequest", index=0, count=2, signer=other.address, nonce=before, success=False)
        assert_event(tx, "ExecutedForwardRequest", index=1, count=2, signer=holder.address, success=True)
        assert forwarder.nonces(other.address) == before + 1
        assert_event(tx, "DatasetRegistered", holder=holder.address)
    assert not datasets.exists(b32("x"))


def test_atomic_batch_reverts_on_one_invalid_request(forwarder, datasets, relayer, keys):
    holder, user = keys["holder"], keys["user"]
    first = sign_call(forwarder, holder, *register_call(datasets, "a"))
    second = sign_call(forwarder, holder, *register_call(datasets, "b"), nonce=1)
    expired = sign_call(
        forwarder, user, *register_call(datasets, "c", parents=[b32("a")]), deadline=latest_timestamp() - 1
    )
    with expect_revert("ERC2771ForwarderExpiredRequest(uint48)", expired.deadline):
        forwarder.executeBatch(
            [first.as_tuple(), second.as_tuple(), expired.as_tuple()], ZERO_ADDRESS, {"from": relayer}
        )
    assert forwarder.nonces(holder.address) == 0
    assert not datasets.exists(b32("a"))
    bad_sig = first.tampered(gas=first.gas + 1)
    with expect_revert(
        "ERC2771ForwarderInvalidSigner(address,address)", bad_sig.recovered_with_nonce(0), holder.address
    ):
        forwarder.executeBatch([bad_sig.as_tuple(), second.as_tuple()], ZERO_ADDRESS, {"from": relayer})


def test_non_atomic_batch_skips_invalid_request(forwarder, datasets, consent, relayer, keys, stranger):
    holder, subject = keys["holder"], keys["subject"]
    first = sign_call(forwarder, holder, *register_call(datasets, "a"))
    replay_of_first = first
    second = sign_call(forwarder, holder, *register_call(datasets, "b"), nonce=1)
    expired = sign_call(
        forwarder, subject, consent, "appointDelegate", stranger.address, 2**39, deadline=latest_timestamp() - 1
    )
    grant = sign_call(
        forwarder,
        subject,
        consent,
        "grant",
        subject.address,
        Scope.HOLDER,
        holder_scope(holder.address),
        ZERO_ADDRESS,
        DUO.GRU,
        0,
        latest_timestamp() + DAY,
    )
    batch = [first, replay_of_first, second, expired, grant]
    tx = forwarder.executeBatch([r.as_tuple() for r in batch], stranger, {"from": relayer})
    events = tx.events["ExecutedForwardRequest"]
    assert [(addr(e["signer"]), e["nonce"], e["success"]) for e in events] == [
        (addr(holder.address), 0, True),
        (addr(holder.address), 1, True),
        (addr(subject.address), 0, True),
    ]
    assert datasets.exists(b32("a")) and datasets.exists(b32("b"))
    assert_event(tx, "ConsentGiven", subject=subject.address, actor=subject.address)
    assert_no_event(tx, "DelegateAppointed")
    assert forwarder.nonces(holder.address) == 2
    assert forwarder.nonces(subject.address) == 1


def test_sequential_nonces_in_one_batch(forwarder, datasets, relayer, keys):
    holder = keys["holder"]
    batch = [sign_call(forwarder, holder, *register_call(datasets, f"s{i}"), nonce=i) for i in range(5)]
    tx = forwarder.executeBatch([r.as_tuple() for r in batch], ZERO_ADDRESS, {"from": relayer})
    assert [e["nonce"] for e in tx.events["ExecutedForwardRequest"]] == list(range(5))
    assert forwarder.nonces(holder.address) == 5


def test_sender_suffix_only_trusted_from_forwarder(datasets, holder, stranger):
    """Appending an address to calldata does not impersonate it unless the forwarder sent the call."""
    data = calldata(*register_call(datasets, "spoof")) + bytes.fromhex(addr(holder)[2:])
    with expect_revert("MissingRole(bytes32,address)", HOLDER_ROLE, stranger):
        stranger.transfer(datasets, 0, data=data)


def test_eip712_domain(forwarder, chain):
    fields = forwarder.eip712Domain()
    assert fields[1] == "MedLedgerForwarder" and fields[2] == "1"
    assert fields[3] == chain.id and fields[4] == forwarder.address
