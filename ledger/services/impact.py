"""Withdrawal propagates: what a subject's withdrawal affects.

:func:`withdrawal_impact` finds the datasets whose subject root includes the subject (checked
against subject lists the holders supply), their derived descendants, and the access approvals and
uses of those made from the withdrawal on, with an inclusion proof per dataset that the subject can
check on chain (``DatasetRegistry.verifySubject``). History comes from an :class:`EventSource`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from eth_utils.address import to_checksum_address

from ledger.content.merkle import subject_tree
from ledger.core.classification import DatasetStatus
from ledger.core.errors import InvalidInput, LedgerError
from ledger.core.records import ZERO_ADDRESS, DatasetRecord, ScopeKind, hex32, to_bytes32
from ledger.history.sources import ApprovalEvent, ConsentEvent, ConsentEventKind, EventSource, UseEvent, scope_json
from ledger.services import cohort
from ledger.services.ledger import Ledger

__all__ = ["AffectedDataset", "Impact", "SubjectListCheck", "WithdrawnScope", "withdrawal_impact"]


@dataclass(frozen=True)
class WithdrawnScope:
    """The subject's withdrawals of one consent key (scope and grantee)."""

    scope_kind: ScopeKind
    scope: bytes
    grantee: str | None
    withdrawn_blocks: list[int]
    #: a later grant for the same key, if any (the subject consented again)
    regranted_block: int | None = None

    @property
    def first_block(self) -> int:
        return min(self.withdrawn_blocks)

    def to_json(self) -> dict[str, Any]:
        return {
            "scope": scope_json(self.scope_kind, self.scope),
            "grantee": cohort.grantee_json(self.grantee),
            "withdrawn_block": self.first_block,
            "withdrawn_blocks": list(self.withdrawn_blocks),
            "regranted_block": self.regranted_block,
        }


@dataclass(frozen=True)
class SubjectListCheck:
    """Whether a supplied subject list hashes to its dataset's recorded subject root."""

    dataset: bytes
    ok: bool
    reason: str | None = None
    contains_subject: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "dataset": hex32(self.dataset),
            "ok": self.ok,
            "reason": self.reason,
            "contains_subject": self.contains_subject,
        }


@dataclass
class AffectedDataset:
    """One dataset the withdrawal affects."""

    dataset: bytes
    holder: str
    status: DatasetStatus
    #: first block from which approvals and uses of it count as made after the withdrawal
    from_block: int
    #: the subject is in its subject root (checked with the supplied list); else only derived
    contains_subject: bool = False
    #: affected datasets it was derived from (empty for the ones that contain the subject)
    derived_from: list[bytes] = field(default_factory=list)
    #: inclusion proof of the subject against its subject root (``verifySubject``)
    proof: list[str] | None = None
    #: the withdrawn consent keys that reach it
    scopes: list[WithdrawnScope] = field(default_factory=list)
    #: only these users' approvals and uses count (grantee-specific withdrawals); None = everyone
    grantees: set[str] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "dataset": hex32(self.dataset),
            "holder": self.holder,
            "status": self.status.name.lower(),
            "from_block": self.from_block,
            "contains_subject": self.contains_subject,
            "derived_from": [hex32(r) for r in self.derived_from],
            "proof": self.proof,
            "scopes": [s.to_json() for s in self.scopes],
            "grantees": sorted(self.grantees) if self.grantees is not None else None,
        }


@dataclass(frozen=True)
class Impact:
    """What a subject's withdrawal affects."""

    subject: str
    withdrawals: list[WithdrawnScope]
    datasets: list[AffectedDataset]
    approvals: list[ApprovalEvent]
    uses: list[UseEvent]
    list_checks: list[SubjectListCheck]
    #: datasets whose (verified) list contains the subject but that no withdrawn consent reaches
    outside_withdrawn_scopes: list[bytes] = field(default_factory=list)
    #: descendants of affected datasets whose verified subject list does not contain the subject
    #: (a consent filter that left them out): not affected, and the lineage is not followed past them
    cleared: list[bytes] = field(default_factory=list)

    @property
    def mismatched_lists(self) -> list[bytes]:
        return [c.dataset for c in self.list_checks if not c.ok]

    def dataset(self, root: bytes | str) -> AffectedDataset | None:
        r = to_bytes32(root, "dataset")
        return next((d for d in self.datasets if d.dataset == r), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "withdrawals": [w.to_json() for w in self.withdrawals],
            "datasets": [d.to_json() for d in self.datasets],
            "approvals": [a.to_json() for a in self.approvals],
            "uses": [u.to_json() for u in self.uses],
            "subject_lists": [c.to_json() for c in self.list_checks],
            "mismatched_lists": [hex32(r) for r in self.mismatched_lists],
            "outside_withdrawn_scopes": [hex32(r) for r in self.outside_withdrawn_scopes],
            "cleared": [hex32(r) for r in self.cleared],
        }


def _withdrawn_scopes(events: EventSource, subject: str, head: int) -> list[WithdrawnScope]:
    withdrawals = list(events.withdrawals_of(subject))
    if not withdrawals:
        return []
    history = list(events.consent_events_until(head, [subject]))
    given: dict[bytes, list[ConsentEvent]] = {}
    for ev in history:
        if ev.kind is ConsentEventKind.GIVEN and ev.consent_id is not None:
            given.setdefault(ev.consent_id, []).append(ev)
    by_id: dict[bytes, list[int]] = {}
    for w in withdrawals:
        if w.consent_id is not None:
            by_id.setdefault(w.consent_id, []).append(w.block)
    out: list[WithdrawnScope] = []
    for cid, blocks in by_id.items():
        grants = given.get(cid)
        if not grants:
            raise LedgerError(f"withdrawal of consent {hex32(cid)} has no ConsentGiven event in the history")
        first = grants[0]
        assert first.scope_kind is not None and first.scope is not None
        last_withdrawal = max(blocks)
        regrant = next((g.block for g in grants if g.block > last_withdrawal), None)
        out.append(
            WithdrawnScope(
                scope_kind=first.scope_kind,
                scope=first.scope,
                grantee=None if first.grantee in (None, ZERO_ADDRESS) else first.grantee,
                withdrawn_blocks=sorted(blocks),
                regranted_block=regrant,
            )
        )
    out.sort(key=lambda s: s.first_block)
    return out


class _Lineage:
    """Chain records and ancestors, fetched on demand and cached."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.records: dict[bytes, DatasetRecord] = {}

    def fetch(self, roots: Iterable[bytes]) -> None:
        missing = [r for r in dict.fromkeys(roots) if r not in self.records]
        if missing:
            for rec in self.ledger.get_datasets(missing):
                self.records[rec.content_root] = rec

    def record(self, root: bytes) -> DatasetRecord:
        self.fetch([root])
        return self.records[root]

    def ancestors(self, root: bytes) -> set[bytes]:
        seen: set[bytes] = set()
        frontier = list(self.record(root).parents)
        while frontier:
            self.fetch(frontier)
            nxt: list[bytes] = []
            for r in frontier:
                if r not in seen:
                    seen.add(r)
                    nxt += [p for p in self.records[r].parents if p not in seen]
            frontier = nxt
        return seen


def _reaching_scopes(lineage: _Lineage, root: bytes, scopes: Sequence[WithdrawnScope]) -> list[WithdrawnScope]:
    """The withdrawn consents that covered ``root``: holder-wide ones of its holder or of an
    ancestor's holder, dataset-scoped ones on it or on an ancestor."""
    lineage_roots = {root} | lineage.ancestors(root)
    holders = {lineage.records[r].holder for r in lineage_roots}
    out = []
    for s in scopes:
        holder_wide = s.scope_kind == ScopeKind.HOLDER and to_checksum_address(s.scope[12:]) in holders
        if holder_wide or (s.scope_kind == ScopeKind.DATASET and s.scope in lineage_roots):
            out.append(s)
    return out


def _merge_grantees(a: set[str] | None, b: set[str] | None) -> set[str] | None:
    if a is None or b is None:
        return None
    return a | b


def _grantees_of(scopes: Iterable[WithdrawnScope]) -> set[str] | None:
    out: set[str] = set()
    for s in scopes:
        if s.grantee is None:
            return None
        out.add(s.grantee)
    return out


def withdrawal_impact(
    ledger: Ledger,
    events: EventSource,
    subject: str,
    subject_lists: Mapping[str, Sequence[str]],
) -> Impact:
    """What ``subject``'s withdrawals affect.

    Each withdrawn consent key (scope, grantee) takes effect from its earliest ConsentWithdrawn
    block W. A dataset is affected when the subject is in its subject root — known from
    ``subject_lists`` (content root hex -> the holder's subject list; each list is checked against
    the chain's subject root, and lists that do not hash to it are reported and not used) — and a
    withdrawn consent reached it (holder-wide for its holder or an ancestor's, or scoped to it or
    an ancestor). Every dataset derived from an affected one, transitively, is affected too, unless
    its own supplied and verified list leaves the subject out (then it is reported as cleared and
    the lineage is not followed past it). For
    each, the approvals (AccessApproved) and uses (UseRecorded) made at or after its W are listed
    (only the grantee's, when only grantee-specific consents were withdrawn), and for the datasets
    that contain the subject an inclusion proof the subject can check with ``verifySubject``."""
    who = cohort.address(subject, "subject")
    head = int(ledger.client.w3.eth.block_number)
    scopes = _withdrawn_scopes(events, who, head)
    lineage = _Lineage(ledger)

    checks: list[SubjectListCheck] = []
    containing: dict[bytes, list[str]] = {}
    without: set[bytes] = set()
    parsed: dict[bytes, Sequence[str]] = {}
    for root_hex, people in subject_lists.items():
        try:
            parsed[to_bytes32(root_hex, "dataset root")] = people
        except InvalidInput as exc:
            raise InvalidInput(f"subject_lists key {root_hex!r}: {exc.message}") from exc
    lineage.fetch(parsed)
    for root, people in parsed.items():
        rec = lineage.records[root]
        if not rec.exists:
            checks.append(SubjectListCheck(root, False, "no dataset with this content root"))
            continue
        try:
            tree = subject_tree(people)
        except InvalidInput as exc:
            checks.append(SubjectListCheck(root, False, f"invalid subject list: {exc.message}"))
            continue
        if tree.root != rec.subject_root:
            checks.append(
                SubjectListCheck(
                    root, False, f"the list hashes to {tree.root_hex}, the chain records {hex32(rec.subject_root)}"
                )
            )
            continue
        inside = (who,) in tree
        checks.append(SubjectListCheck(root, True, None, inside))
        if inside:
            containing[root] = tree.proof_hex((who,))
        else:
            without.add(root)

    affected: dict[bytes, AffectedDataset] = {}
    outside: list[bytes] = []
    for root, proof in containing.items():
        reaching = _reaching_scopes(lineage, root, scopes)
        if not reaching:
            outside.append(root)
            continue
        rec = lineage.records[root]
        affected[root] = AffectedDataset(
            dataset=root,
            holder=rec.holder,
            status=rec.status,
            from_block=min(s.first_block for s in reaching),
            contains_subject=True,
            proof=proof,
            scopes=reaching,
            grantees=_grantees_of(reaching),
        )

    # descendants, transitively; a dataset reached along several paths takes the earliest block
    cleared: list[bytes] = []
    frontier = sorted(affected, key=lambda r: affected[r].from_block)
    while frontier:
        nxt: list[bytes] = []
        for parent in frontier:
            source = affected[parent]
            for child in events.children_of(parent):
                if child in without:
                    if child not in cleared:
                        cleared.append(child)
                    continue
                entry = affected.get(child)
                if entry is None:
                    rec = lineage.record(child)
                    entry = AffectedDataset(
                        dataset=child,
                        holder=rec.holder,
                        status=rec.status,
                        from_block=source.from_block,
                        scopes=list(source.scopes),
                        grantees=None if source.grantees is None else set(source.grantees),
                    )
                    affected[child] = entry
                    entry.derived_from.append(parent)
                    nxt.append(child)
                    continue
                changed = False
                if parent not in entry.derived_from:
                    entry.derived_from.append(parent)
                if source.from_block < entry.from_block:
                    entry.from_block = source.from_block
                    changed = True
                merged = _merge_grantees(entry.grantees, source.grantees)
                if merged != entry.grantees:
                    entry.grantees = merged
                    changed = True
                for s in source.scopes:
                    if s not in entry.scopes:
                        entry.scopes.append(s)
                if changed:
                    nxt.append(child)
        frontier = nxt

    approvals: list[ApprovalEvent] = []
    uses: list[UseEvent] = []
    for entry in affected.values():
        allowed = entry.grantees
        approvals += [
            a
            for a in events.approvals_for(entry.dataset, entry.from_block)
            if allowed is None or a.requester in allowed
        ]
        uses += [u for u in events.uses_of(entry.dataset, entry.from_block) if allowed is None or u.user in allowed]
    approvals.sort(key=lambda a: (a.block, a.request_id))
    uses.sort(key=lambda u: (u.block, u.use_number))
    datasets = sorted(affected.values(), key=lambda d: (not d.contains_subject, d.from_block, d.dataset))
    return Impact(
        subject=who,
        withdrawals=scopes,
        datasets=datasets,
        approvals=approvals,
        uses=uses,
        list_checks=checks,
        outside_withdrawn_scopes=outside,
        cleared=cleared,
    )
