"""Audit reads that combine the indexer (history) with the chain (current state)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ledger.content.cid import cid_from_digest
from ledger.content.metadata import DatasetMetadata
from ledger.core.errors import LedgerError, NotFound
from ledger.core.records import ZERO32, ZERO_ADDRESS, ConsentRecord, ConsentScope, ConsentState, ScopeKind, hex32
from ledger.exports.fhir import consent_to_fhir
from ledger.history.index import Indexer
from ledger.services.ledger import Ledger


def consent_record(indexer: Indexer, consent_id: str) -> ConsentRecord:
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
        grantee=row["grantee"] or ZERO_ADDRESS,
        purposes=int(row["purposes"]),
        disease=int(row["disease"]),
        expiry=int(row["expiry"]),
        state=states[row["state"]],
        updated_block=int(row["updated_block"] or 0),
        history=list(indexer.consent_history(consent_id)),
    )


def given_at(ledger: Ledger, record: ConsentRecord) -> int | None:
    """When the consent was (last) given: the block time of its latest ``given`` entry, as the
    index recorded it or, for an entry without one, as the chain has it."""
    given = [h for h in record.history if h.get("action") == "given"]
    if not given:
        return None
    last = given[-1]
    stamp = last.get("block_timestamp") or last.get("timestamp")
    if stamp:
        return int(stamp)
    block = last.get("block_number") or last.get("block")
    if block is None:
        return None
    return int(ledger.client.w3.eth.get_block(int(block))["timestamp"])


def consent_fhir(
    ledger: Ledger,
    indexer: Indexer,
    consent_id: str,
    *,
    dataset_titles: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A consent as a complete HL7 FHIR R5 ``Consent``: terms and history from the index, status
    at the chain's latest block time, ``date`` and ``period.start`` from the block in which it was
    given. Every front end exports consents through this."""
    record = consent_record(indexer, consent_id)
    return consent_to_fhir(record, now=ledger.now(), dataset_titles=dataset_titles, given_at=given_at(ledger, record))


def all_dataset_roots(indexer: Indexer, limit: int = 100_000) -> list[str]:
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


def dataset_with_metadata(ledger: Ledger, root: str | bytes) -> dict[str, Any]:
    """A dataset's chain record and its metadata document from IPFS (or why it could not be read)."""
    rec = ledger.get_dataset(root)
    cid = cid_from_digest(rec.metadata_digest)
    out: dict[str, Any] = {"record": rec.to_json(), "metadata_cid": cid, "metadata": None, "metadata_error": None}
    try:
        md = DatasetMetadata.from_bytes(ledger.ipfs.get(cid))
        out["metadata"] = md.model_dump(mode="json", exclude_none=True)
    except LedgerError as exc:
        out["metadata_error"] = {"type": exc.code, "detail": exc.message}
    return out


def dataset_versions(
    ledger: Ledger, indexer: Indexer | None, root: str | bytes, *, limit: int = 1000
) -> dict[str, Any]:
    """The version chain of a dataset: its successors (followed on chain), the versions it
    superseded (from the index, when one is given) and the latest version."""
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


def access_request_view(ledger: Ledger, request_id: int) -> dict[str, Any]:
    """An access request and its decision, with whether its approval is in force now."""
    body: dict[str, Any] = ledger.get_request(request_id).to_json()
    body["approval_in_force"] = body["status"] == "approved" and body["expiry"] > ledger.now()
    return body


def account_view(ledger: Ledger, address: str) -> dict[str, Any]:
    """An account's roles and whether it is suspended."""
    return {"address": address, "roles": ledger.roles_of(address), "suspended": ledger.is_user_suspended(address)}
