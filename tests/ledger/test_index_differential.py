"""The index against the chain: after a scenario that touches every projected field, each row the
index holds (every dataset, consent, delegate, access request, role and suspended user of the
session's deployment, not only the scenario's) equals the registries' own view at the indexed block.

Fields with no view on chain (the blocks, transactions and sequence numbers an event was seen at,
the reviewer and digests of a decision) are the events' own and are checked by test_indexer.
The scenario moves no chain time: every embargo and expiry lies in the future.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount

from ledger.core.classification import Tier
from ledger.core.records import ZERO32_HEX, ConsentScope
from ledger.history.index import ROLE_NAMES, Indexer
from ledger.rules import datause
from ledger.services.ledger import Ledger

DAY = 86_400
HMB = datause.Purpose.of("HMB")


def rand32() -> bytes:
    return os.urandom(32)


def hx(value: bytes) -> str:
    return "0x" + bytes(value).hex()


def rows(path: Path, table: str) -> list[dict[str, Any]]:
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(f"SELECT * FROM {table}")]
    finally:
        conn.close()


def view(ledger: Ledger, contract: str, fn: str, *args: Any, block: int) -> dict[str, Any]:
    """A struct-returning view as a dict keyed by the ABI's component names."""
    function = getattr(ledger.client.contract(contract).functions, fn)
    result = function(*args).call(block_identifier=block)
    (output,) = next(i for i in ledger.client.artifacts[contract].abi if i.get("name") == fn)["outputs"]
    return dict(zip((c["name"] for c in output["components"]), result, strict=True))


def call(ledger: Ledger, contract: str, fn: str, *args: Any, block: int) -> Any:
    return getattr(ledger.client.contract(contract).functions, fn)(*args).call(block_identifier=block)


def run_scenario(ledger: Ledger, make_actor: Callable[..., LocalAccount]) -> dict[str, bytes]:
    """Datasets with versions, lineage, a sharing change, embargoes with overrides (one lapsed by a
    new embargo), suspensions and retractions; consents given, renewed, withdrawn and given by a
    delegate; requests approved, denied, revoked, pending; uses under approvals and by tier."""
    holder, holder2 = make_actor("holder"), make_actor("holder")
    reviewer, auditor = make_actor("reviewer"), make_actor("auditor")
    user, user2 = make_actor("user"), make_actor("user")
    subject, subject2, guardian = Account.create(), Account.create(), Account.create()
    now = ledger.now()
    exp, exp2 = now + 30 * DAY, now + 60 * DAY
    first, second = now + 10 * DAY, now + 20 * DAY
    roots: dict[str, bytes] = {}

    def register(
        name: str, who: LocalAccount, parents: tuple[str, ...] = (), tier: Tier = Tier.CONTROLLED, **kw: int
    ) -> bytes:
        roots[name] = root = rand32()
        ps = sorted(roots[p] for p in parents)
        args = (rand32(), ps, rand32(), int(tier), kw.get("classification", 0x0101), kw.get("embargo", 0), rand32())
        ledger.write(who, "DatasetRegistry", "register", root, *args)
        return root

    v1 = register("v1", holder)
    v2 = register("v2", holder, ("v1",))
    ledger.deprecate(holder, v1, v2)
    shared = register("shared", holder2, tier=Tier.OPEN, classification=0x0201)
    ledger.set_sharing(holder2, shared, Tier.REGISTERED, 0)
    derived = register("derived", user, ("v2", "shared"), tier=Tier.OPEN)
    lapsed = register("lapsed", holder, embargo=first)
    ledger.override_embargo(auditor, lapsed, rand32())
    ledger.set_sharing(holder, lapsed, Tier.CONTROLLED, second)  # the override lapses
    overridden = register("overridden", holder, embargo=first)
    ledger.override_embargo(auditor, overridden, rand32())
    suspended = register("suspended", holder)
    retracted = register("retracted", holder)
    suspended_then_retracted = register("suspended_then_retracted", holder2)

    # consents
    holder_scope = ConsentScope.holder(holder.address)
    ledger.grant_consent(subject, holder_scope, datause.HMB, exp)
    ledger.renew_consent(subject, holder_scope, exp2)
    ledger.withdraw_consent(subject, holder_scope)
    ledger.grant_consent(subject, ConsentScope.dataset(v2), datause.GRU, exp, grantee=user.address)
    ledger.appoint_delegate(subject2, guardian.address, exp)
    ledger.grant_consent(guardian, holder_scope, datause.DS, exp, disease=5148, subject=subject2.address)
    ledger.revoke_delegate(subject2, guardian.address)
    ledger.grant_consent(subject2, ConsentScope.dataset(overridden), datause.HMB, exp2)

    # access and use
    r1 = ledger.request_access(user, v2, HMB, rand32()).result
    ledger.approve_access(reviewer, r1, rand32(), exp)
    for _ in range(2):
        ledger.record_use(user, v2, HMB, request_id=r1, result_digest=rand32())
    r2 = ledger.request_access(user2, v2, HMB, rand32()).result
    ledger.deny_access(reviewer, r2, rand32())
    r3 = ledger.request_access(user2, v2, HMB, rand32()).result
    ledger.approve_access(reviewer, r3, rand32(), exp)
    ledger.record_use(user2, v2, HMB, request_id=r3, result_digest=rand32())
    ledger.revoke_access(reviewer, r3, rand32())
    r4 = ledger.request_access(user, lapsed, HMB, rand32()).result
    ledger.approve_access(holder, r4, rand32(), exp)  # under a new embargo only the holder decides
    r5 = ledger.request_access(user2, overridden, HMB, rand32()).result
    ledger.approve_access(reviewer, r5, rand32(), exp2)
    ledger.request_access(user, suspended, HMB, rand32())  # stays pending
    ledger.record_use(user2, shared, HMB)
    ledger.record_use(user, derived, HMB, result_digest=rand32())
    ledger.record_use(user2, derived, HMB)

    # circuit breakers and lifecycle
    ledger.suspend_dataset(auditor, suspended, rand32())
    ledger.suspend_dataset(auditor, v2, rand32())
    ledger.reinstate_dataset(auditor, v2)
    ledger.retract(holder, retracted, rand32())
    ledger.suspend_dataset(auditor, suspended_then_retracted, rand32())
    ledger.retract(holder2, suspended_then_retracted, rand32())
    ledger.suspend_user(auditor, user2.address, rand32())
    ledger.suspend_user(auditor, user.address, rand32())
    ledger.reinstate_user(auditor, user.address)
    return roots


def test_every_projected_field_equals_the_contracts_view(
    ledger: Ledger, make_actor: Callable[..., LocalAccount], tmp_path: Path
) -> None:
    roots = run_scenario(ledger, make_actor)
    with Indexer(ledger.settings, ledger.client, path=tmp_path / "index.sqlite3", confirmations=0) as idx:
        idx.sync()
        compare(ledger, idx, roots)


def compare(ledger: Ledger, idx: Indexer, roots: dict[str, bytes]) -> None:
    block, path = idx.last_block, idx.path
    # the scenario's own expectations, so a vacuous comparison cannot pass
    lapsed, overridden = idx.dataset(roots["lapsed"]), idx.dataset(roots["overridden"])
    assert lapsed is not None and overridden is not None
    assert lapsed["embargo_overridden"] is False and overridden["embargo_overridden"] is True
    assert idx.dataset(roots["suspended_then_retracted"])["status"] == "retracted"  # type: ignore[index]

    datasets = rows(path, "datasets")
    assert {hx(r) for r in roots.values()} <= {d["root"] for d in datasets}
    children: dict[str, int] = defaultdict(int)
    for edge in rows(path, "lineage"):
        children[edge["parent"]] += 1
    uses: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for use in rows(path, "uses"):
        uses[use["dataset"]].append(use)
    for d in datasets:
        root = bytes.fromhex(d["root"][2:])
        chain = view(ledger, "DatasetRegistry", "getDataset", root, block=block)
        indexed = {
            "holder": d["holder"],
            "tier": d["tier"],
            "status": d["status"],
            "classification": d["classification"],
            "embargoEnd": d["embargo_end"],
            "registeredBlock": d["registered_block"],
            "metadataDigest": d["metadata_digest"],
            "activityDigest": d["activity_digest"],
            "subjectRoot": d["subject_root"],
            "successor": d["successor"] or ZERO32_HEX,
            "derivedCount": children[d["root"]],
            "parents": json.loads(d["parents"]),
            "embargoOverridden": bool(d["embargo_overridden"]),
            "uses": len(uses[d["root"]]),
            "users": len({u["user"] for u in uses[d["root"]]}),
        }
        stats = call(ledger, "UsageRegistry", "statsOf", root, block=block)
        expected = {
            **{k: hx(v) if isinstance(v, bytes) else v for k, v in chain.items() if k in indexed},
            "parents": [hx(p) for p in chain["parents"]],
            "embargoOverridden": call(ledger, "AccessRegistry", "embargoOverridden", root, block=block),
            "uses": stats[0],
            "users": stats[1],
        }
        assert indexed == expected, d["root"]
        assert sorted(u["use_number"] for u in uses[d["root"]]) == list(range(1, stats[0] + 1))

    consents = rows(path, "consents")
    assert len(consents) >= 4
    for c in consents:
        cid = bytes.fromhex(c["consent_id"][2:])
        chain = view(ledger, "ConsentRegistry", "getConsent", cid, block=block)
        indexed = {
            "purposes": int(c["purposes"]),
            "diseaseCode": c["disease"],
            "expiry": c["expiry"],
            "state": c["state"],
            "updatedBlock": c["updated_block"],
        }
        assert indexed == chain, c["consent_id"]
        key = (c["subject"], c["scope_kind"], bytes.fromhex(c["scope"][2:]), c["grantee"])
        assert call(ledger, "ConsentRegistry", "consentId", *key, block=block) == cid

    delegates = rows(path, "delegates")
    assert delegates
    for g in delegates:
        expiry = call(ledger, "ConsentRegistry", "delegateExpiry", g["subject"], g["delegate"], block=block)
        assert (g["expiry"] if g["active"] else 0) == expiry, (g["subject"], g["delegate"])

    requests = rows(path, "access_requests")
    assert len(requests) >= 6
    for r in requests:
        chain = view(ledger, "AccessRegistry", "getRequest", int(r["request_id"]), block=block)
        indexed = {
            "requester": r["requester"],
            "status": r["status"],
            "expiry": r["expiry"] or 0,  # no expiry before an approval: the contract's 0
            "requestedAt": r["requested_block"],
            "dataset": r["dataset"],
            "purpose": int(r["purpose"]),
            "disease": r["disease"],
            "decidedAt": r["decided_block"] or 0,
        }
        assert indexed == {k: hx(v) if isinstance(v, bytes) else v for k, v in chain.items()}, r["request_id"]

    role_ids = {name: bytes.fromhex(key[2:]) for key, name in ROLE_NAMES.items()}
    for g in rows(path, "roles"):
        role = role_ids.get(g["role"]) or bytes.fromhex(g["role"][2:])
        assert call(ledger, "LedgerRoles", "hasRole", role, g["account"], block=block) is bool(g["active"])

    suspended_users = {s["target"] for s in rows(path, "suspensions") if s["target_kind"] == "user"}
    assert len(suspended_users) >= 2
    for address in suspended_users:
        indexed_suspended = idx.user_trail(address, limit=0)["suspended"]
        assert indexed_suspended is call(ledger, "AccessRegistry", "isSuspended", address, block=block), address
