"""What the export formats share: DUO terms of a consent mask, times, and the lineage report's
nodes and edges as the exports walk them.

Every export (:mod:`ledger.exports.prov`, :mod:`ledger.exports.openlineage`,
:mod:`ledger.exports.fhir`) follows the same rules.

What goes out, and what never does:

- **Only public ledger data.** Every value comes from a chain record or a metadata document that is
  already public. People appear only as pseudonymous Ethereum addresses (holders, activity agents,
  subjects, grantees), never with a name; the only free text is the dataset titles of the metadata
  (screened for personal data when the metadata was written) and, in FHIR, a dataset title as a
  reference's display. Labels of codes (DUO, LOINC, HL7) are fixed strings from :data:`ledger.exports.fhir.CODE_LABELS`.
- **Built with the reference libraries.** PROV-JSON is produced by the ``prov`` package's serialiser
  from a :class:`prov.model.ProvDocument`, so it reads back into an equal document; OpenLineage events
  are the client's ``RunEvent`` classes serialised by its ``Serde``; a FHIR ``Consent`` is validated by
  ``fhir.resources`` (R5) before it is returned, so an invalid resource never leaves this module.
- **Deterministic.** The same report gives the same documents: ids derive from content roots, run ids are
  UUIDv5 of the content root, times come from the activity descriptions, never from the clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Final

from ledger.content.cid import cid_from_digest
from ledger.content.metadata import ActivityDescription
from ledger.rules import datause
from ledger.rules.verification import DatasetVerification, LineageReport

#: labels of the DUO terms the ledger uses (the ontology's own labels)
DUO_LABELS: Final[Mapping[str, str]] = {
    "DUO:0000004": "no restriction",
    "DUO:0000042": "general research use",
    "DUO:0000006": "health or medical or biomedical research",
    "DUO:0000007": "disease specific research",
    "DUO:0000011": "population origins or ancestry research only",
    "DUO:0000046": "non-commercial use only",
    "DUO:0000045": "not for profit organisation use only",
    "DUO:0000021": "ethics approval required",
    "DUO:0000019": "publication required",
    "DUO:0000016": "genetic studies only",
    "DUO:0000020": "collaboration required",
    "DUO:0000029": "return to database or resource",
    "DUO:0000015": "no general methods research",
}


def duo_codes(mask: int) -> list[str]:
    """DUO term ids of the permission and modifier bits set in ``mask``, in DUO_TERMS order."""
    return [term for term, bit in datause.DUO_TERMS.values() if mask & bit]


def use_attributes(mask: int) -> list[str]:
    return [name for name, bit in datause.USE_ATTRIBUTE_NAMES.items() if mask & bit]


def iso(moment: datetime) -> str:
    """UTC ISO 8601 with a ``Z`` (as OpenLineage examples and FHIR instants write it)."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def activity_of(node: DatasetVerification) -> ActivityDescription | None:
    return node.metadata.activity if node.metadata is not None else None


def metadata_cid(node: DatasetVerification) -> str | None:
    if node.metadata_cid is not None:
        return node.metadata_cid
    if node.record is None:
        return None
    return cid_from_digest(node.record.metadata_digest)


def edges(report: LineageReport) -> list[tuple[bytes, bytes]]:
    """The report's (child, parent) edges without duplicates, in report order."""
    seen: set[tuple[bytes, bytes]] = set()
    out: list[tuple[bytes, bytes]] = []
    for edge in report.edges:
        if edge not in seen:
            seen.add(edge)
            out.append(edge)
    return out


def parents_of(report: LineageReport) -> dict[bytes, list[bytes]]:
    parents: dict[bytes, list[bytes]] = {}
    for child, parent in edges(report):
        parents.setdefault(child, []).append(parent)
    return parents
