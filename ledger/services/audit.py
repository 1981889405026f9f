"""Audit reads that combine the indexer (history) with the chain (current state)."""

from __future__ import annotations

from typing import Any

from ledger.core.errors import NotFound
from ledger.core.records import ConsentRecord, ConsentScope, ConsentState, ScopeKind


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


def dataset_with_metadata(ledger: Any, root: str | bytes) -> dict[str, Any]:
    """A dataset's chain record and its metadata document from IPFS (or why it could not be read)."""
    from ledger.content.cid import cid_from_digest
    from ledger.content.metadata import DatasetMetadata
    from ledger.core.errors import LedgerError

    rec = ledger.get_dataset(root)
    cid = cid_from_digest(rec.metadata_digest)
    out: dict[str, Any] = {"record": rec.to_json(), "metadata_cid": cid, "metadata": None, "metadata_error": None}
    try:
        md = DatasetMetadata.from_bytes(ledger.ipfs.get(cid))
        out["metadata"] = md.model_dump(mode="json", exclude_none=True)
    except LedgerError as exc:
        out["metadata_error"] = {"type": exc.code, "detail": exc.message}
    return out


def dataset_versions(ledger: Any, indexer: Any, root: str | bytes, *, limit: int = 1000) -> dict[str, Any]:
    """The version chain of a dataset: its successors (followed on chain), the versions it
    superseded (from the index, when one is given) and the latest version."""
    from ledger.core.records import ZERO32, hex32

    rec = ledger.get_dataset(root)
    forward: list[str] = []
    seen = {rec.content_root}
    cur = rec
    while cur.successor != ZERO32 and cur.successor not in seen and len(forward) < limit:
        seen.add(cur.successor)
        forward.append(hex32(cur.successor))
        cur = ledger.get_dataset(cur.successor)
    previous: list[str] = indexer.predecessors_of(hex32(rec.content_root)) if indexer is not None else []
    return {
        "dataset": hex32(rec.content_root),
        "status": rec.status.name.lower(),
        "successors": forward,
        "predecessors": previous,
        "latest": forward[-1] if forward else hex32(rec.content_root),
    }
