"""Audit reads that combine the indexer (history) with the chain (current state)."""

from __future__ import annotations

from typing import Any

from .errors import NotFound
from .records import ConsentRecord, ConsentScope, ConsentState, ScopeKind


def consent_record(indexer: Any, consent_id: str) -> ConsentRecord:
    """A consent as a ConsentRecord: its key (subject, scope, grantee) from the indexer, its terms
    and state as indexed, with its history."""
    row = indexer.consent(consent_id)
    if row is None:
        raise NotFound(f"no consent {consent_id} in the index", hint="check the id, or wait for the indexer")
    scope_json = row["scope"]
    if scope_json["kind"] == "holder":
        scope = ConsentScope.holder(scope_json["holder"])
    else:
        scope = ConsentScope(ScopeKind.DATASET, bytes.fromhex(scope_json["dataset"][2:]))
    states = {s.name.lower(): s for s in ConsentState}
    return ConsentRecord(
        consent_id=bytes.fromhex(row["consent_id"][2:]),
        subject=row["subject"],
        scope=scope,
        grantee=row["grantee"] or "0x0000000000000000000000000000000000000000",
        purposes=int(row["purposes"]),
        disease=int(row["disease"]),
        expiry=int(row["expiry"]),
        state=states[row["state"]],
        updated_block=int(row["updated_block"] or 0),
        history=list(indexer.consent_history(consent_id)),
    )


def predecessors_of(indexer: Any, root: str) -> list[str]:
    """Datasets deprecated in favour of ``root`` (its earlier versions), oldest first."""
    out: list[str] = []
    after: int | None = None
    while True:
        page = indexer.events(event="DatasetDeprecated", after=after, limit=1000)
        for ev in page["items"]:
            if str(ev["args"]["successor"]).lower() == root.lower():
                out.append(str(ev["args"]["contentRoot"]))
        after = page.get("next_cursor")
        if after is None:
            return out


def all_dataset_roots(indexer: Any, limit: int = 100_000) -> list[str]:
    """Every registered dataset's content root, in registration order."""
    out: list[str] = []
    after: int | None = None
    while len(out) < limit:
        page = indexer.events(event="DatasetRegistered", after=after, limit=1000)
        out += [str(ev["args"]["contentRoot"]) for ev in page["items"]]
        after = page.get("next_cursor")
        if after is None:
            break
    return out[:limit]
