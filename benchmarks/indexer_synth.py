"""Synthetic ledger events for the index benchmarks: a realistic mix (uses, consents, access
requests and decisions, relayed forward executions, dataset registrations with lineage, roles,
suspensions) drawn consistently from what has happened so far, block by block."""

from __future__ import annotations

import random
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ledger.core.records import ZERO_ADDRESS
from ledger.history.events import LedgerEvent, checksum
from ledger.history.index import ROLE_NAMES

CONTRACTS = {
    "LedgerForwarder": "0x5FbDB2315678afecb367f032d93F642f64180aa3",
    "LedgerRoles": "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512",
    "DatasetRegistry": "0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0",
    "ConsentRegistry": "0xCf7Ed3AccA5a467e9e704C703E8D87F634fB0Fc9",
    "AccessRegistry": "0xDc64a140Aa3E981100a9becA4E685f962f0cF6C9",
    "UsageRegistry": "0x5FC8d32690cc91D4c39d9d3abcBD16989F875707",
}
ROLE_IDS = {name: role_id for role_id, name in ROLE_NAMES.items()}
HMB, GRU, DS = 1 << 2, 1 << 1, 1 << 3


@dataclass
class World:
    """What has happened so far, to draw consistent references from."""

    rng: random.Random
    holders: list[str]
    users: list[str]
    reviewers: list[str]
    auditors: list[str]
    subjects: list[str]
    datasets: list[str] = field(default_factory=list)
    pending: list[tuple[int, str, str]] = field(default_factory=list)  # request id, dataset, user
    approved: list[tuple[int, str, str]] = field(default_factory=list)
    consents: list[tuple[str, str]] = field(default_factory=list)  # consent id, subject (given/renewed)
    next_request: int = 1
    nonces: dict[str, int] = field(default_factory=dict)

    def h32(self) -> str:
        return f"0x{self.rng.getrandbits(256):064x}"

    def popular(self, items: list[Any]) -> Any:
        """Zipf-like choice: recent and early items are hot, the tail is long."""
        n = len(items)
        i = min(n - 1, int(n * self.rng.random() ** 3))
        return items[i]


def addresses(rng: random.Random, n: int) -> list[str]:
    return [checksum(f"0x{rng.getrandbits(160):040x}") for _ in range(n)]


def synthesise(n_events: int, seed: int = 7, per_block: int = 10) -> Iterator[list[LedgerEvent]]:
    """Blocks of events (lists), ``per_block`` events on average each, ``n_events`` in total."""
    rng = random.Random(seed)
    w = World(
        rng=rng,
        holders=addresses(rng, 200),
        users=addresses(rng, 5000),
        reviewers=addresses(rng, 50),
        auditors=addresses(rng, 10),
        subjects=addresses(rng, max(1000, n_events // 10)),
    )
    block = 100
    made = 0
    t0 = 1_700_000_000

    def ev(contract: str, name: str, args: dict[str, Any], log_index: int, tx: str) -> LedgerEvent:
        return LedgerEvent(contract, name, block, t0 + 2 * block, tx, log_index, args, 0, CONTRACTS[contract])

    # roles and first datasets
    first: list[LedgerEvent] = []
    li = 0
    for role, people in (("holder", w.holders), ("user", w.users), ("reviewer", w.reviewers), ("auditor", w.auditors)):
        for p in people:
            first.append(
                ev(
                    "LedgerRoles",
                    "RoleGranted",
                    {"role": ROLE_IDS[role], "account": p, "sender": ZERO_ADDRESS},
                    li,
                    w.h32(),
                )
            )
            li += 1
    for _ in range(100):
        root = w.h32()
        w.datasets.append(root)
        first.append(
            ev("DatasetRegistry", "DatasetRegistered", _registered(w, root, rng.choice(w.holders), []), li, w.h32())
        )
        li += 1
    made += len(first)
    yield first
    block += 1

    while made < n_events:
        events: list[LedgerEvent] = []
        li = 0
        for _ in range(rng.randint(per_block // 2, per_block * 3 // 2)):
            tx = w.h32()
            r = rng.random()
            signer = None
            if r < 0.45:  # a use
                if w.approved and rng.random() < 0.7:
                    rid, ds, user = w.popular(w.approved)
                else:
                    rid, ds, user = 0, w.popular(w.datasets), rng.choice(w.users)
                args = {
                    "dataset": ds,
                    "user": user,
                    "requestId": rid,
                    "purpose": HMB,
                    "diseaseCode": 0,
                    "resultDigest": w.h32(),
                    "useNumber": rng.randint(1, 10_000),
                }
                events.append(ev("UsageRegistry", "UseRecorded", args, li, tx))
                signer = user
            elif r < 0.62:  # consent given
                subject = rng.choice(w.subjects)
                cid = w.h32()
                holder_scope = rng.random() < 0.7
                scope = (
                    ("0x" + "00" * 12 + rng.choice(w.holders)[2:].lower()) if holder_scope else w.popular(w.datasets)
                )
                args = {
                    "consentId": cid,
                    "subject": subject,
                    "scope": scope,
                    "scopeKind": 0 if holder_scope else 1,
                    "grantee": ZERO_ADDRESS if rng.random() < 0.8 else rng.choice(w.users),
                    "purposes": rng.choice((HMB, GRU, DS)),
                    "diseaseCode": 0,
                    "expiry": t0 + 10**8,
                    "actor": subject,
                }
                if args["purposes"] == DS:
                    args["diseaseCode"] = 5148
                w.consents.append((cid, subject))
                events.append(ev("ConsentRegistry", "ConsentGiven", args, li, tx))
            elif r < 0.655 and w.consents:  # withdrawn
                cid, subject = w.consents.pop(rng.randrange(len(w.consents)))
                events.append(
                    ev(
                        "ConsentRegistry",
                        "ConsentWithdrawn",
                        {"consentId": cid, "subject": subject, "actor": subject},
                        li,
                        tx,
                    )
                )
            elif r < 0.67 and w.consents:  # renewed
                cid, subject = rng.choice(w.consents)
                args = {"consentId": cid, "subject": subject, "expiry": t0 + 2 * 10**8, "actor": subject}
                events.append(ev("ConsentRegistry", "ConsentRenewed", args, li, tx))
            elif r < 0.75:  # access requested
                ds, user = w.popular(w.datasets), rng.choice(w.users)
                rid = w.next_request
                w.next_request += 1
                w.pending.append((rid, ds, user))
                args = {
                    "requestId": rid,
                    "dataset": ds,
                    "requester": user,
                    "purpose": HMB,
                    "diseaseCode": 0,
                    "protocolDigest": w.h32(),
                }
                events.append(ev("AccessRegistry", "AccessRequested", args, li, tx))
                signer = user
            elif r < 0.82 and w.pending:  # decided
                req = w.pending.pop(rng.randrange(len(w.pending)))
                reviewer = rng.choice(w.reviewers)
                if rng.random() < 0.85:
                    w.approved.append(req)
                    args = {
                        "requestId": req[0],
                        "reviewer": reviewer,
                        "conditionsDigest": w.h32(),
                        "expiry": t0 + 10**8,
                    }
                    events.append(ev("AccessRegistry", "AccessApproved", args, li, tx))
                else:
                    args = {"requestId": req[0], "reviewer": reviewer, "reasonDigest": w.h32()}
                    events.append(ev("AccessRegistry", "AccessDenied", args, li, tx))
                signer = reviewer
            elif r < 0.83 and w.approved:  # revoked
                req = w.approved.pop(rng.randrange(len(w.approved)))
                args = {"requestId": req[0], "reviewer": rng.choice(w.reviewers), "reasonDigest": w.h32()}
                events.append(ev("AccessRegistry", "AccessRevoked", args, li, tx))
            elif r < 0.86:  # dataset registered, derived from 0-3 parents
                root = w.h32()
                parents = sorted({w.popular(w.datasets) for _ in range(rng.choice((0, 1, 1, 2, 3)))})
                holder = rng.choice(w.holders)
                for p in parents:
                    events.append(ev("DatasetRegistry", "DerivedFrom", {"child": root, "parent": p}, li, tx))
                    li += 1
                events.append(ev("DatasetRegistry", "DatasetRegistered", _registered(w, root, holder, parents), li, tx))
                w.datasets.append(root)
                signer = holder
            elif r < 0.865:  # suspension circuit breaker
                ds, auditor = w.popular(w.datasets), rng.choice(w.auditors)
                events.append(
                    ev(
                        "AccessRegistry",
                        "UserSuspendedBy",
                        {"user": rng.choice(w.users), "auditor": auditor, "reasonDigest": w.h32()},
                        li,
                        tx,
                    )
                )
            elif r < 0.87:
                ds = w.popular(w.datasets)
                events.append(
                    ev("DatasetRegistry", "SharingChanged", {"contentRoot": ds, "tier": 2, "embargoEnd": 0}, li, tx)
                )
            elif r < 0.875:
                subject, delegate = rng.choice(w.subjects), rng.choice(w.subjects)
                events.append(
                    ev(
                        "ConsentRegistry",
                        "DelegateAppointed",
                        {"subject": subject, "delegate": delegate, "expiry": t0 + 10**8},
                        li,
                        tx,
                    )
                )
            else:  # nothing domain-level: a relayed call that reverted
                signer = rng.choice(w.users)
            li += 1
            if signer is not None or r >= 0.875:
                who = signer or rng.choice(w.users)
                nonce = w.nonces.get(who, 0)
                w.nonces[who] = nonce + 1
                args = {"signer": who, "nonce": nonce, "success": signer is not None}
                events.append(ev("LedgerForwarder", "ExecutedForwardRequest", args, li, tx))
                li += 1
        made += len(events)
        yield events
        block += 1


def _registered(w: World, root: str, holder: str, parents: list[str]) -> dict[str, Any]:
    return {
        "contentRoot": root,
        "holder": holder,
        "metadataDigest": w.h32(),
        "activityDigest": w.h32(),
        "subjectRoot": w.h32(),
        "parents": parents,
        "tier": 2,
        "classification": 0x0101,
        "embargoEnd": 0,
    }
