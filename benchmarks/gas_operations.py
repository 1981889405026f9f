"""Every ledger operation the gas report measures: how to prepare n requests of each (their own
datasets, consents, requests) on a deployed ledger."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "contracts"))

from chain_helpers import (  # noqa: E402
    DUO,
    USER_ROLE,
    ZERO32,
    ZERO_ADDRESS,
    Scope,
    SignedConsent,
    Tier,
    holder_scope,
    sign_consent,
)
from eth_utils.crypto import keccak  # noqa: E402
from gas_chain import Call, Ledger, relay_signed  # noqa: E402

# ---------------------------------------------------------------------------------------------- operations


@dataclass(frozen=True)
class Operation:
    name: str
    party: str
    prepare: Callable[[Ledger, int], list[Any]]  # -> list[Call] or list[SignedConsent] for n requests
    signed: bool = False  # signed consent messages (relayBatch) rather than forwarded calls
    note: str = ""


def _register_datasets(ledger: Ledger, n: int, tier: int = Tier.CONTROLLED, embargo: int = 0) -> list[str]:
    roots = [ledger.fresh("dataset") for _ in range(n)]
    ledger.relay.run(
        [
            Call(
                ledger.holder,
                ledger.datasets,
                "register",
                (root, ledger.fresh("meta"), [], ZERO32, tier, 211, embargo, ledger.fresh("subjects")),
            )
            for root in roots
        ]
    )
    return roots


def op_register(parent_count: int, activity: bool = False) -> Callable[[Ledger, int], list[Call]]:
    def prepare(ledger: Ledger, n: int) -> list[Call]:
        parents = _register_datasets(ledger, n * parent_count) if parent_count else []
        calls = []
        for i in range(n):
            own = sorted(parents[i * parent_count : (i + 1) * parent_count])
            calls.append(
                Call(
                    ledger.holder,
                    ledger.datasets,
                    "register",
                    (
                        ledger.fresh("root"),
                        ledger.fresh("meta"),
                        own,
                        ledger.fresh("activity") if (parent_count or activity) else ZERO32,
                        Tier.CONTROLLED,
                        211,
                        0,
                        ledger.fresh("subjects"),
                    ),
                )
            )
        return calls

    return prepare


def prep_set_sharing(ledger: Ledger, n: int) -> list[Call]:
    return [
        Call(ledger.holder, ledger.datasets, "setSharing", (root, Tier.REGISTERED, ledger.far(86_400)))
        for root in _register_datasets(ledger, n)
    ]


def prep_deprecate(ledger: Ledger, n: int) -> list[Call]:
    roots = _register_datasets(ledger, 2 * n)
    return [Call(ledger.holder, ledger.datasets, "deprecate", (roots[2 * i], roots[2 * i + 1])) for i in range(n)]


def prep_retract(ledger: Ledger, n: int) -> list[Call]:
    return [
        Call(ledger.holder, ledger.datasets, "retract", (root, ledger.fresh("reason")))
        for root in _register_datasets(ledger, n)
    ]


def prep_suspend(ledger: Ledger, n: int) -> list[Call]:
    return [
        Call(ledger.auditor, ledger.datasets, "suspend", (root, ledger.fresh("reason")))
        for root in _register_datasets(ledger, n)
    ]


def prep_reinstate(ledger: Ledger, n: int) -> list[Call]:
    calls = prep_suspend(ledger, n)
    ledger.relay.run(calls)
    return [Call(ledger.auditor, ledger.datasets, "reinstate", (c.args[0],)) for c in calls]


def _subjects(ledger: Ledger, n: int) -> list[Any]:
    if n > len(ledger.subjects):
        raise ValueError(f"need {n} subjects, have {len(ledger.subjects)}")
    return ledger.subjects[:n]


def _holder_wide_grants(ledger: Ledger, n: int) -> list[Call]:
    # a fresh holder address per batch, so every request writes a new consent slot
    scope = holder_scope(ledger.fresh_address())
    return [
        Call(
            s,
            ledger.consent,
            "grant",
            (s.address, Scope.HOLDER, scope, ZERO_ADDRESS, DUO.HMB | DUO.NCU, 0, ledger.far()),
        )
        for s in _subjects(ledger, n)
    ]


def prep_grant_dataset(ledger: Ledger, n: int) -> list[Call]:
    (dataset,) = _register_datasets(ledger, 1)
    return [
        Call(s, ledger.consent, "grant", (s.address, Scope.DATASET, dataset, ZERO_ADDRESS, DUO.DS, 1234, ledger.far()))
        for s in _subjects(ledger, n)
    ]


def prep_renew(ledger: Ledger, n: int) -> list[Call]:
    grants = _holder_wide_grants(ledger, n)
    ledger.relay.run(grants)
    return [Call(c.key, ledger.consent, "renew", (*c.args[:4], ledger.far(2 * 365 * 86_400))) for c in grants]


def prep_withdraw(ledger: Ledger, n: int) -> list[Call]:
    grants = _holder_wide_grants(ledger, n)
    ledger.relay.run(grants)
    return [Call(c.key, ledger.consent, "withdraw", c.args[:4]) for c in grants]


def prep_appoint(ledger: Ledger, n: int) -> list[Call]:
    return [
        Call(s, ledger.consent, "appointDelegate", (ledger.fresh_address(), ledger.far())) for s in _subjects(ledger, n)
    ]


def prep_revoke_delegate(ledger: Ledger, n: int) -> list[Call]:
    appointments = prep_appoint(ledger, n)
    ledger.relay.run(appointments)
    return [Call(c.key, ledger.consent, "revokeDelegate", (c.args[0],)) for c in appointments]


def _signed_grants(ledger: Ledger, n: int, fresh_word: bool = False) -> list[SignedConsent]:
    scope = holder_scope(ledger.fresh_address())
    out = []
    for s in _subjects(ledger, n):
        nonce = int.from_bytes(keccak(text=ledger.fresh("nonce")), "big") if fresh_word else ledger.consent_nonce(s)
        out.append(
            sign_consent(
                ledger.consent,
                s,
                "Grant",
                subject=s.address,
                scopeKind=Scope.HOLDER,
                scope=scope,
                grantee=ZERO_ADDRESS,
                purposes=DUO.HMB | DUO.NCU,
                diseaseCode=0,
                expiry=ledger.far(),
                nonce=nonce,
                deadline=ledger.far(86_400),
            )
        )
    return out


def prep_grant_by_sig(ledger: Ledger, n: int) -> list[SignedConsent]:
    return _signed_grants(ledger, n)


def prep_grant_by_sig_fresh_word(ledger: Ledger, n: int) -> list[SignedConsent]:
    return _signed_grants(ledger, n, fresh_word=True)


def _signed_after_grants(ledger: Ledger, n: int, primary: str) -> list[SignedConsent]:
    grants = _signed_grants(ledger, n)
    relay_signed(ledger, grants)
    out = []
    for g in grants:
        s = next(k for k in ledger.subjects if k.address == g.message["subject"])
        fields = {k: g.message[k] for k in ("subject", "scopeKind", "scope", "grantee")}
        if primary == "Renew":
            fields["expiry"] = ledger.far(2 * 365 * 86_400)
        out.append(
            sign_consent(
                ledger.consent, s, primary, **fields, nonce=ledger.consent_nonce(s), deadline=ledger.far(86_400)
            )
        )
    return out


def prep_withdraw_by_sig(ledger: Ledger, n: int) -> list[SignedConsent]:
    return _signed_after_grants(ledger, n, "Withdraw")


def prep_renew_by_sig(ledger: Ledger, n: int) -> list[SignedConsent]:
    return _signed_after_grants(ledger, n, "Renew")


def prep_appoint_by_sig(ledger: Ledger, n: int) -> list[SignedConsent]:
    return [
        sign_consent(
            ledger.consent,
            s,
            "AppointDelegate",
            subject=s.address,
            delegate=ledger.fresh_address(),
            expiry=ledger.far(),
            nonce=ledger.consent_nonce(s),
            deadline=ledger.far(86_400),
        )
        for s in _subjects(ledger, n)
    ]


def prep_revoke_delegate_by_sig(ledger: Ledger, n: int) -> list[SignedConsent]:
    appointments = prep_appoint_by_sig(ledger, n)
    relay_signed(ledger, appointments)
    out = []
    for a in appointments:
        s = next(k for k in ledger.subjects if k.address == a.message["subject"])
        out.append(
            sign_consent(
                ledger.consent,
                s,
                "RevokeDelegate",
                subject=s.address,
                delegate=a.message["delegate"],
                nonce=ledger.consent_nonce(s),
                deadline=ledger.far(86_400),
            )
        )
    return out


def prep_request_access(ledger: Ledger, n: int) -> list[Call]:
    return [
        Call(
            ledger.user,
            ledger.access,
            "requestAccess",
            (root, DUO.HMB | DUO.USE_PUBLISHES, 0, ledger.fresh("protocol")),
        )
        for root in _register_datasets(ledger, n)
    ]


def _requests(ledger: Ledger, n: int, tier: int = Tier.CONTROLLED) -> list[tuple[str, int]]:
    """n pending requests by the user, each on its own dataset: [(dataset, request id)]."""
    calls = prep_request_access(ledger, n)
    first = int(ledger.access.requestCount()) + 1
    ledger.relay.run(calls)
    return [(c.args[0], first + i) for i, c in enumerate(calls)]


def _approvals(ledger: Ledger, requests: list[tuple[str, int]]) -> list[Call]:
    return [
        Call(ledger.reviewer, ledger.access, "approve", (rid, ledger.fresh("conditions"), ledger.far()))
        for _, rid in requests
    ]


def prep_approve(ledger: Ledger, n: int) -> list[Call]:
    return _approvals(ledger, _requests(ledger, n))


def prep_deny(ledger: Ledger, n: int) -> list[Call]:
    return [
        Call(ledger.reviewer, ledger.access, "deny", (rid, ledger.fresh("reason"))) for _, rid in _requests(ledger, n)
    ]


def _approved(ledger: Ledger, n: int) -> list[tuple[str, int]]:
    pending = _requests(ledger, n)
    ledger.relay.run(_approvals(ledger, pending))
    return pending


def prep_revoke(ledger: Ledger, n: int) -> list[Call]:
    return [
        Call(ledger.reviewer, ledger.access, "revoke", (rid, ledger.fresh("reason"))) for _, rid in _approved(ledger, n)
    ]


def prep_override_embargo(ledger: Ledger, n: int) -> list[Call]:
    roots = _register_datasets(ledger, n, embargo=ledger.far(30 * 86_400))
    return [Call(ledger.auditor, ledger.access, "overrideEmbargo", (root, ledger.fresh("reason"))) for root in roots]


def prep_suspend_user(ledger: Ledger, n: int) -> list[Call]:
    return [
        Call(ledger.auditor, ledger.access, "suspendUser", (ledger.fresh_address(), ledger.fresh("reason")))
        for _ in range(n)
    ]


def prep_reinstate_user(ledger: Ledger, n: int) -> list[Call]:
    calls = prep_suspend_user(ledger, n)
    ledger.relay.run(calls)
    return [Call(ledger.auditor, ledger.access, "reinstateUser", (c.args[0],)) for c in calls]


USE = DUO.HMB | DUO.USE_PUBLISHES


def prep_use_first(ledger: Ledger, n: int) -> list[Call]:
    return [
        Call(ledger.user, ledger.usage, "recordUse", (ds, rid, USE, 0, ledger.fresh("result")))
        for ds, rid in _approved(ledger, n)
    ]


def _used_again(ledger: Ledger, first: list[Call]) -> list[Call]:
    """Relay the first uses, then the same uses again with fresh result digests."""
    ledger.relay.run(first)
    return [Call(c.key, c.contract, c.fn, (*c.args[:4], ledger.fresh("result"))) for c in first]


def prep_use_repeat(ledger: Ledger, n: int) -> list[Call]:
    return _used_again(ledger, prep_use_first(ledger, n))


def prep_use_open_first(ledger: Ledger, n: int) -> list[Call]:
    return [
        Call(ledger.user, ledger.usage, "recordUse", (root, 0, USE, 0, ledger.fresh("result")))
        for root in _register_datasets(ledger, n, tier=Tier.OPEN)
    ]


def prep_use_open_repeat(ledger: Ledger, n: int) -> list[Call]:
    return _used_again(ledger, prep_use_open_first(ledger, n))


def prep_role_grant(ledger: Ledger, n: int) -> list[Call]:
    return [Call(ledger.admin, ledger.roles, "grantRole", (USER_ROLE, ledger.fresh_address())) for _ in range(n)]


def prep_role_revoke(ledger: Ledger, n: int) -> list[Call]:
    grants = prep_role_grant(ledger, n)
    ledger.relay.run(grants)
    return [Call(ledger.admin, ledger.roles, "revokeRole", c.args) for c in grants]


OPERATIONS = [
    Operation(
        "register, no parents",
        "holder",
        op_register(0),
        note="metadata digest and subject root set, no activity digest",
    ),
    Operation("register, no parents, activity digest set", "holder", op_register(0, activity=True)),
    Operation("register, 1 parent", "holder", op_register(1)),
    Operation("register, 3 parents", "holder", op_register(3)),
    Operation("setSharing", "holder", prep_set_sharing),
    Operation("deprecate", "holder", prep_deprecate),
    Operation("retract", "holder", prep_retract),
    Operation("suspend (dataset)", "auditor", prep_suspend),
    Operation("reinstate (dataset)", "auditor", prep_reinstate),
    Operation("consent grant, holder-wide", "subject", _holder_wide_grants),
    Operation("consent grant, dataset-scoped", "subject", prep_grant_dataset),
    Operation("consent renew", "subject", prep_renew),
    Operation("consent withdraw", "subject", prep_withdraw),
    Operation("appointDelegate", "subject", prep_appoint),
    Operation("revokeDelegate", "subject", prep_revoke_delegate),
    Operation("grantBySig", "subject", prep_grant_by_sig, signed=True),
    Operation(
        "grantBySig, nonce in a new bitmap word",
        "subject",
        prep_grant_by_sig_fresh_word,
        signed=True,
        note="random 256-bit nonce: its bitmap word goes 0 -> non-zero",
    ),
    Operation("renewBySig", "subject", prep_renew_by_sig, signed=True),
    Operation("withdrawBySig", "subject", prep_withdraw_by_sig, signed=True),
    Operation("appointDelegateBySig", "subject", prep_appoint_by_sig, signed=True),
    Operation("revokeDelegateBySig", "subject", prep_revoke_delegate_by_sig, signed=True),
    Operation("requestAccess", "user", prep_request_access),
    Operation("approve", "reviewer", prep_approve),
    Operation("deny", "reviewer", prep_deny),
    Operation("revoke (approval)", "reviewer", prep_revoke),
    Operation("overrideEmbargo", "auditor", prep_override_embargo),
    Operation("suspendUser", "auditor", prep_suspend_user),
    Operation("reinstateUser", "auditor", prep_reinstate_user),
    Operation(
        "recordUse, controlled, first use",
        "user",
        prep_use_first,
        note="first use of the dataset at all: counters slot and first-use flag go 0 -> non-zero",
    ),
    Operation("recordUse, controlled, repeat use", "user", prep_use_repeat),
    Operation("recordUse, open tier, first use", "user", prep_use_open_first),
    Operation("recordUse, open tier, repeat use", "user", prep_use_open_repeat),
    Operation("role grant", "admin", prep_role_grant),
    Operation("role revoke", "admin", prep_role_revoke),
]
