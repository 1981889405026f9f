"""Exports of lineage and consent in standard formats: W3C PROV-JSON, OpenLineage run events, HL7 FHIR R5
``Consent`` resources.

What goes out, and what never does:

- **Only public ledger data.** Every value comes from a chain record or a metadata document that is
  already public. People appear only as pseudonymous Ethereum addresses (holders, activity agents,
  subjects, grantees), never with a name; the only free text is the dataset titles of the metadata
  (screened for personal data when the metadata was written) and, in FHIR, a dataset title as a
  reference's display. Labels of codes (DUO, LOINC, HL7) are fixed strings from :data:`CODE_LABELS`.
- **Built with the reference libraries.** PROV-JSON is produced by the ``prov`` package's serialiser
  from a :class:`prov.model.ProvDocument`, so it reads back into an equal document; OpenLineage events
  are the client's ``RunEvent`` classes serialised by its ``Serde``; a FHIR ``Consent`` is validated by
  ``fhir.resources`` (R5) before it is returned, so an invalid resource never leaves this module.
- **Deterministic.** The same report gives the same documents: ids derive from content roots, run ids are
  UUIDv5 of the content root, times come from the activity descriptions, never from the clock.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

import attr
from fhir.resources.consent import Consent
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.generated.base import DatasetFacet, RunFacet
from openlineage.client.generated.job_type_job import JobTypeJobFacet
from openlineage.client.generated.nominal_time_run import NominalTimeRunFacet
from openlineage.client.generated.processing_engine_run import ProcessingEngineRunFacet
from openlineage.client.serde import Serde
from prov.constants import PROV_LABEL, PROV_TYPE
from prov.model import Literal, Namespace, ProvDocument

from ledger.content.metadata import ActivityDescription, DatasetMetadata
from ledger.core.errors import InvalidInput
from ledger.core.records import ZERO32, ZERO_ADDRESS, ConsentRecord, ConsentState, ScopeKind, hex32, to_bytes32
from ledger.rules import datause

if TYPE_CHECKING:
    from ledger.rules.verification import DatasetVerification, LineageReport

__all__ = [
    "CODE_LABELS",
    "DEFAULT_PROV_NAMESPACE",
    "DUO_SYSTEM",
    "ETHEREUM_ADDRESS_SYSTEM",
    "MONDO_SYSTEM",
    "MedLedgerActivityRunFacet",
    "MedLedgerDatasetFacet",
    "consent_to_fhir",
    "consents_to_fhir",
    "lineage_to_openlineage",
    "lineage_to_prov",
    "openlineage_run_events",
    "prov_document",
    "run_id",
]

DEFAULT_PROV_NAMESPACE: Final = "https://medledger.example/ns#"
PROV_PREFIX: Final = "ml"

#: FHIR / terminology systems
ETHEREUM_ADDRESS_SYSTEM: Final = "urn:ethereum:address"
CONSENT_ID_SYSTEM: Final = "urn:medledger:consent"
DATASET_SYSTEM: Final = "urn:medledger:dataset"
DUO_SYSTEM: Final = "http://purl.obolibrary.org/obo/duo.owl"
MONDO_SYSTEM: Final = "http://purl.obolibrary.org/obo/mondo.owl"
LOINC_SYSTEM: Final = "http://loinc.org"
CONSENT_SCOPE_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/consentscope"
CONSENT_ACTION_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/consentaction"
PARTICIPATION_TYPE_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"

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
_PRIVACY_POLICY_LOINC: Final = ("57016-8", "Privacy policy acknowledgment Document")
_RESEARCH_SCOPE: Final = ("research", "Research")
_USE_ACTION: Final = ("use", "Use")
_RECIPIENT_ROLE: Final = ("IRCP", "information recipient")

#: every fixed (non-data) label an export may contain
CODE_LABELS: Final[frozenset[str]] = frozenset(
    [*DUO_LABELS.values(), _PRIVACY_POLICY_LOINC[1], _RESEARCH_SCOPE[1], _USE_ACTION[1], _RECIPIENT_ROLE[1]]
)

#: where the JSON schemas of the custom OpenLineage facets are published
FACET_SCHEMA_BASE: Final = "https://medledger.example/spec/facets/1-0-0/"
_RUN_NAMESPACE: Final = uuid.uuid5(uuid.NAMESPACE_URL, "urn:medledger:openlineage:run")


# ---------------------------------------------------------------------------------------------
# shared helpers
# ---------------------------------------------------------------------------------------------


def _duo_codes(mask: int) -> list[str]:
    """DUO term ids of the permission and modifier bits set in ``mask``, in DUO_TERMS order."""
    return [term for term, bit in datause.DUO_TERMS.values() if mask & bit]


def _use_attributes(mask: int) -> list[str]:
    return [name for name, bit in datause.USE_ATTRIBUTE_NAMES.items() if mask & bit]


def _iso(moment: datetime) -> str:
    """UTC ISO 8601 with a ``Z`` (as OpenLineage examples and FHIR instants write it)."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _activity_of(node: DatasetVerification) -> ActivityDescription | None:
    return node.metadata.activity if node.metadata is not None else None


def _metadata_cid(node: DatasetVerification) -> str | None:
    if node.metadata_cid is not None:
        return node.metadata_cid
    if node.record is None:
        return None
    from ledger.content.cid import cid_from_digest

    return cid_from_digest(node.record.metadata_digest)


def _edges(report: LineageReport) -> list[tuple[bytes, bytes]]:
    """The report's (child, parent) edges without duplicates, in report order."""
    seen: set[tuple[bytes, bytes]] = set()
    out: list[tuple[bytes, bytes]] = []
    for edge in report.edges:
        if edge not in seen:
            seen.add(edge)
            out.append(edge)
    return out


def _parents_of(report: LineageReport) -> dict[bytes, list[bytes]]:
    parents: dict[bytes, list[bytes]] = {}
    for child, parent in _edges(report):
        parents.setdefault(child, []).append(parent)
    return parents


# ---------------------------------------------------------------------------------------------
# W3C PROV
# ---------------------------------------------------------------------------------------------


def _entity_id(root: bytes) -> str:
    return f"{PROV_PREFIX}:dataset/{hex32(root)}"


def _activity_id(root: bytes) -> str:
    return f"{PROV_PREFIX}:activity/{hex32(root)}"


def _agent_id(address: str) -> str:
    return f"{PROV_PREFIX}:agent/{address}"


def _ml(name: str) -> str:
    return f"{PROV_PREFIX}:{name}"


def _entity_attributes(node: DatasetVerification, ns: Namespace) -> list[tuple[Any, Any]]:
    attrs: list[tuple[Any, Any]] = [
        (PROV_TYPE, ns["Dataset"]),
        (_ml("contentRoot"), hex32(node.content_root)),
        (_ml("verified"), node.ok),
    ]
    rec = node.record
    if rec is None:
        attrs.append((_ml("status"), "not-registered"))
        return attrs
    attrs += [
        (_ml("status"), rec.status.name.lower()),
        (_ml("tier"), rec.tier.name.lower()),
        (_ml("classification"), f"0x{rec.classification:04x}"),
        (_ml("holder"), rec.holder),
        (_ml("metadataDigest"), hex32(rec.metadata_digest)),
        (_ml("registeredBlock"), rec.registered_block),
    ]
    cid = _metadata_cid(node)
    if cid is not None:
        attrs.append((_ml("metadataCid"), cid))
    if rec.successor != ZERO32:
        attrs.append((_ml("successor"), ns[f"dataset/{hex32(rec.successor)}"]))
    md = node.metadata
    if md is not None:
        attrs += [(PROV_LABEL, Literal(text, langtag=tag)) for tag, text in md.title.items()]
        attrs += [(_ml("dataUse"), code) for code in md.data_use]
        attrs += [(_ml("disease"), code) for code in md.disease_codes or ()]
    return attrs


def _activity_attributes(
    node: DatasetVerification, activity: ActivityDescription, ns: Namespace
) -> list[tuple[Any, Any]]:
    attrs: list[tuple[Any, Any]] = [
        (PROV_TYPE, ns[activity.type.value]),
        (_ml("agent"), activity.agent),
    ]
    if node.record is not None and node.record.activity_digest != ZERO32:
        attrs.append((_ml("activityDigest"), hex32(node.record.activity_digest)))
    if activity.software is not None:
        attrs += [
            (_ml("softwareName"), activity.software.name),
            (_ml("softwareVersion"), activity.software.version),
        ]
    if activity.parameters_digest is not None:
        attrs.append((_ml("parametersDigest"), activity.parameters_digest))
    cf = activity.consent_filter
    if cf is not None:
        attrs += [
            (_ml("purposeMask"), f"0x{cf.purpose_mask:x}"),
            (_ml("consentBlock"), cf.block_number),
        ]
        attrs += [(_ml("purpose"), code) for code in _duo_codes(cf.purpose_mask)]
        attrs += [(_ml("useAttribute"), name) for name in _use_attributes(cf.purpose_mask)]
        if cf.disease_code is not None:
            attrs.append((_ml("purposeDisease"), cf.disease_code))
    return attrs


def prov_document(report: LineageReport, *, namespace: str = DEFAULT_PROV_NAMESPACE) -> ProvDocument:
    """The lineage as a W3C PROV document.

    - one **entity** per dataset (``ml:dataset/<content root>``): content root, metadata digest and CID,
      status, tier, classification code, holder, registration block, whether it verified, DUO data-use
      and MONDO disease codes, and its titles as ``prov:label`` in every language of the metadata;
    - one **activity** per dataset whose activity description is known (``ml:activity/<content root>``):
      type as ``prov:type``, ``prov:startTime``/``prov:endTime``, software, parameters digest and, for a
      consent filter, the purpose mask, its DUO codes, disease and block;
    - **agents** by address only (``ml:agent/<address>``): holders and activity agents;
    - relations ``wasDerivedFrom`` (child -> parent, naming the activity), ``wasGeneratedBy`` (child ->
      activity, at its end), ``used`` (activity -> parent), ``wasAttributedTo`` (dataset -> holder) and
      ``wasAssociatedWith`` (activity -> agent).

    Parents come from the chain's edges in the report, not from the metadata, so an unreadable metadata
    document still leaves the lineage complete (the node then has no activity and no titles).
    """
    doc = ProvDocument()
    ns = doc.add_namespace(PROV_PREFIX, namespace)
    roles: dict[str, list[str]] = {}

    def agent(address: str, role: str) -> str:
        kinds = roles.setdefault(address, [])
        if role not in kinds:
            kinds.append(role)
        return _agent_id(address)

    known: set[bytes] = set()
    for root, node in report.nodes.items():
        doc.entity(_entity_id(root), _entity_attributes(node, ns))
        known.add(root)
    for _, parent in _edges(report):
        if parent not in known:  # not in the report's nodes: record the reference alone
            doc.entity(_entity_id(parent), [(PROV_TYPE, ns["Dataset"]), (_ml("contentRoot"), hex32(parent))])
            known.add(parent)

    parents = _parents_of(report)
    for root, node in report.nodes.items():
        if node.record is not None:
            doc.wasAttributedTo(_entity_id(root), agent(node.record.holder, "DataHolder"))
        activity = _activity_of(node)
        act_id: str | None = None
        if activity is not None:
            act_id = _activity_id(root)
            doc.activity(act_id, activity.started, activity.ended, _activity_attributes(node, activity, ns))
            doc.wasGeneratedBy(_entity_id(root), act_id, activity.ended)
            doc.wasAssociatedWith(act_id, agent(activity.agent, "ActivityAgent"))
        for parent in parents.get(root, []):
            doc.wasDerivedFrom(_entity_id(root), _entity_id(parent), act_id)
            if act_id is not None and activity is not None:
                doc.used(act_id, _entity_id(parent), activity.started)

    for address, kinds in roles.items():
        attrs: list[tuple[Any, Any]] = [(PROV_TYPE, ns[kind]) for kind in kinds]
        attrs.append((_ml("address"), address))
        doc.agent(_agent_id(address), attrs)
    return doc


def lineage_to_prov(report: LineageReport, *, namespace: str = DEFAULT_PROV_NAMESPACE) -> dict[str, Any]:
    """The lineage as a PROV-JSON document (see :func:`prov_document` for what it holds).

    The JSON is the ``prov`` package's own serialisation, so
    ``ProvDocument.deserialize(content=json.dumps(doc), format="json")`` reads back an equal document.
    """
    text = prov_document(report, namespace=namespace).serialize(format="json")
    assert text is not None
    out: dict[str, Any] = json.loads(text)
    return out


# ---------------------------------------------------------------------------------------------
# OpenLineage
# ---------------------------------------------------------------------------------------------


@attr.define
class MedLedgerDatasetFacet(DatasetFacet):
    """Custom dataset facet ``medledger_dataset``: the ledger's identity of a dataset version."""

    contentRoot: str
    metadataCid: str | None = attr.field(default=None)
    metadataDigest: str | None = attr.field(default=None)
    status: str | None = attr.field(default=None)
    tier: str | None = attr.field(default=None)
    classification: str | None = attr.field(default=None)
    holder: str | None = attr.field(default=None)
    title: dict[str, str] | None = attr.field(default=None)

    @staticmethod
    def _get_schema() -> str:
        return FACET_SCHEMA_BASE + "MedLedgerDatasetFacet.json#/$defs/MedLedgerDatasetFacet"


@attr.define
class ConsentFilterInfo:
    purposeMask: str
    purposes: list[str]
    useAttributes: list[str]
    blockNumber: int
    disease: str | None = attr.field(default=None)


@attr.define
class MedLedgerActivityRunFacet(RunFacet):
    """Custom run facet ``medledger_activity``: the activity description the chain anchors."""

    activityType: str
    agent: str
    activityDigest: str | None = attr.field(default=None)
    parametersDigest: str | None = attr.field(default=None)
    consentFilter: ConsentFilterInfo | None = attr.field(default=None)

    @staticmethod
    def _get_schema() -> str:
        return FACET_SCHEMA_BASE + "MedLedgerActivityRunFacet.json#/$defs/MedLedgerActivityRunFacet"


def run_id(content_root: bytes | str) -> str:
    """The OpenLineage run id of the activity that produced a dataset: UUIDv5 of its content root."""
    return str(uuid.uuid5(_RUN_NAMESPACE, hex32(to_bytes32(content_root, "content root"))))


def _dataset_facet(root: bytes, node: DatasetVerification | None, producer: str) -> MedLedgerDatasetFacet:
    if node is None or node.record is None:
        return MedLedgerDatasetFacet(contentRoot=hex32(root), status="not-registered", producer=producer)
    rec = node.record
    md: DatasetMetadata | None = node.metadata
    return MedLedgerDatasetFacet(
        contentRoot=hex32(root),
        metadataCid=_metadata_cid(node),
        metadataDigest=hex32(rec.metadata_digest),
        status=rec.status.name.lower(),
        tier=rec.tier.name.lower(),
        classification=f"0x{rec.classification:04x}",
        holder=rec.holder,
        title=dict(md.title) if md is not None else None,
        producer=producer,
    )


def _topological(report: LineageReport) -> list[bytes]:
    """Nodes with every parent before its children; ties keep report order."""
    parents = _parents_of(report)
    order: list[bytes] = []
    done: set[bytes] = set()

    def visit(root: bytes, path: set[bytes]) -> None:
        if root in done or root in path:
            return
        path.add(root)
        for parent in parents.get(root, []):
            if parent in report.nodes:
                visit(parent, path)
        path.discard(root)
        done.add(root)
        order.append(root)

    for root in report.nodes:
        visit(root, set())
    return order


def openlineage_run_events(
    report: LineageReport,
    *,
    namespace: str = "medledger",
    producer: str = "https://medledger.example/producer",
    unknown_time: datetime | None = None,
) -> list[RunEvent]:
    """The OpenLineage ``RunEvent`` objects of :func:`lineage_to_openlineage`."""
    parents = _parents_of(report)
    events: list[RunEvent] = []
    for root in _topological(report):
        node = report.nodes[root]
        activity = _activity_of(node)
        inputs = parents.get(root, [])
        if node.record is None or (activity is None and not inputs):
            continue  # not registered, or an original dataset with no described activity
        if activity is None and unknown_time is None:
            continue  # derived, but the activity (and so the time) is unknown
        kind = activity.type.value if activity is not None else "unknown"
        job_facets: dict[str, Any] = {
            "jobType": JobTypeJobFacet(
                processingType="BATCH", integration="MEDLEDGER", jobType=kind.upper(), producer=producer
            )
        }
        run_facets: dict[str, Any] = {}
        if activity is not None:
            event_time = activity.ended
            run_facets["nominalTime"] = NominalTimeRunFacet(
                nominalStartTime=_iso(activity.started), nominalEndTime=_iso(activity.ended), producer=producer
            )
            if activity.software is not None:
                run_facets["processing_engine"] = ProcessingEngineRunFacet(
                    version=activity.software.version, name=activity.software.name, producer=producer
                )
            cf = activity.consent_filter
            run_facets["medledger_activity"] = MedLedgerActivityRunFacet(
                activityType=activity.type.value,
                agent=activity.agent,
                activityDigest=hex32(node.record.activity_digest) if node.record.activity_digest != ZERO32 else None,
                parametersDigest=activity.parameters_digest,
                consentFilter=ConsentFilterInfo(
                    purposeMask=f"0x{cf.purpose_mask:x}",
                    purposes=_duo_codes(cf.purpose_mask),
                    useAttributes=_use_attributes(cf.purpose_mask),
                    blockNumber=cf.block_number,
                    disease=cf.disease_code,
                )
                if cf is not None
                else None,
                producer=producer,
            )
        else:
            assert unknown_time is not None
            event_time = unknown_time
        events.append(
            RunEvent(
                eventType=RunState.COMPLETE,
                eventTime=_iso(event_time),
                run=Run(runId=run_id(root), facets=run_facets),
                job=Job(namespace=namespace, name=f"{kind}.{hex32(root)}", facets=job_facets),
                inputs=[
                    InputDataset(
                        namespace=namespace,
                        name=hex32(parent),
                        facets={"medledger_dataset": _dataset_facet(parent, report.nodes.get(parent), producer)},
                    )
                    for parent in inputs
                ],
                outputs=[
                    OutputDataset(
                        namespace=namespace,
                        name=hex32(root),
                        facets={"medledger_dataset": _dataset_facet(root, node, producer)},
                    )
                ],
                producer=producer,
            )
        )
    return events


def lineage_to_openlineage(
    report: LineageReport,
    *,
    namespace: str = "medledger",
    producer: str = "https://medledger.example/producer",
    unknown_time: datetime | None = None,
) -> list[dict[str, Any]]:
    """The lineage as OpenLineage run events (JSON-ready dicts), parents before children.

    One ``COMPLETE`` event per dataset produced by an activity: every derived dataset, and an original
    dataset whose metadata describes its activity (a collection: outputs only). Job
    ``<activity type>.<content root>`` in ``namespace``; run id :func:`run_id` (UUIDv5 of the content root,
    so re-exporting gives the same ids); event time = the activity's end; inputs = the parents, output =
    the dataset, both named by content root in ``namespace``. Facets: ``jobType`` (BATCH, integration
    MEDLEDGER), ``nominalTime`` (activity start and end), ``processing_engine`` (software), and the custom
    ``medledger_dataset`` (content root, metadata CID and digest, status, tier, classification, holder,
    titles) and ``medledger_activity`` (type, agent, digests, consent-filter parameters) facets, each with
    ``_producer`` and ``_schemaURL``.

    A derived dataset whose activity description cannot be read (metadata missing or invalid) has no
    known time: it is left out unless ``unknown_time`` is given, which is then its event time (job type
    ``unknown``).
    """
    events = openlineage_run_events(report, namespace=namespace, producer=producer, unknown_time=unknown_time)
    return [Serde.to_dict(event) for event in events]


# ---------------------------------------------------------------------------------------------
# HL7 FHIR R5 Consent
# ---------------------------------------------------------------------------------------------


def _address_reference(address: str, resource_type: str | None = None) -> dict[str, Any]:
    ref: dict[str, Any] = {"identifier": {"system": ETHEREUM_ADDRESS_SYSTEM, "value": address}}
    if resource_type is not None:
        ref["type"] = resource_type
    return ref


def _coding(system: str, code: str, display: str | None = None) -> dict[str, str]:
    out = {"system": system, "code": code}
    if display is not None:
        out["display"] = display
    return out


def _fhir_datetime(timestamp: int) -> str:
    return _iso(datetime.fromtimestamp(timestamp, UTC))


def _fhir_status(consent: ConsentRecord, now: int) -> str:
    """ISO/IEC TS 27560 state -> FHIR ``Consent.status``."""
    if consent.state == ConsentState.NONE:
        return "draft"
    status = consent.status_at(now)
    if status in ("given", "renewed"):
        return "active"
    return "inactive"  # withdrawn or expired


def _titles_by_root(dataset_titles: Mapping[str, str] | None) -> dict[bytes, str]:
    out: dict[bytes, str] = {}
    for key, title in (dataset_titles or {}).items():
        out[to_bytes32(key, "dataset content root")] = title
    return out


def consent_to_fhir(
    consent: ConsentRecord,
    *,
    now: int,
    dataset_titles: Mapping[str, str] | None = None,
    given_at: int | None = None,
) -> dict[str, Any]:
    """A consent as an HL7 FHIR R5 ``Consent`` resource (a JSON-ready dict, validated by ``fhir.resources``).

    - ``id`` and ``identifier`` (system ``urn:medledger:consent``): the on-chain consent id;
    - ``status`` from the ISO/IEC TS 27560 state at ``now`` (unix seconds): given or renewed -> ``active``,
      withdrawn -> ``inactive``, expired -> ``inactive`` (its ``period.end`` is then in the past), no
      consent recorded -> ``draft``;
    - ``category``: LOINC 57016-8 (privacy policy acknowledgment) and the HL7 consent scope ``research``;
    - ``subject`` and ``grantor``: the subject as a Patient reference by identifier (system
      ``urn:ethereum:address``), never a name;
    - ``controller`` and ``manager``: the holder, for a holder-wide consent;
    - ``date`` and ``period.start``: ``given_at`` when known (the chain record holds no time);
      ``period.end``: the expiry;
    - ``decision`` ``permit``, with one ``provision``: action ``use``; ``purpose`` = the DUO codes of the
      consent mask (permissions and modifiers) plus the MONDO disease code of a disease-specific consent;
      ``actor`` = the grantee as information recipient (IRCP), when the consent names one; ``data`` = the
      dataset (system ``urn:medledger:dataset``) for a dataset-scoped consent, its title from
      ``dataset_titles`` (content root hex -> title) as the reference's display.

    Raises :class:`~ledger.errors.InvalidInput` if the resource does not validate.
    """
    consent_hex = consent.consent_id.hex()
    resource: dict[str, Any] = {
        "resourceType": "Consent",
        "id": consent_hex,
        "identifier": [{"system": CONSENT_ID_SYSTEM, "value": "0x" + consent_hex}],
        "status": _fhir_status(consent, now),
        "category": [
            {"coding": [_coding(LOINC_SYSTEM, *_PRIVACY_POLICY_LOINC)]},
            {"coding": [_coding(CONSENT_SCOPE_SYSTEM, *_RESEARCH_SCOPE)]},
        ],
        "subject": _address_reference(consent.subject, "Patient"),
        "grantor": [_address_reference(consent.subject, "Patient")],
        "decision": "permit",
    }
    if given_at is not None:
        resource["date"] = datetime.fromtimestamp(given_at, UTC).date().isoformat()
    period: dict[str, str] = {}
    if given_at is not None:
        period["start"] = _fhir_datetime(given_at)
    if consent.expiry > 0:
        period["end"] = _fhir_datetime(consent.expiry)
    if period:
        resource["period"] = period
    holder = consent.scope.holder_address
    if consent.scope.kind == ScopeKind.HOLDER and holder is not None:
        resource["controller"] = [_address_reference(holder, "Organization")]
        resource["manager"] = [_address_reference(holder, "Organization")]

    provision: dict[str, Any] = {"action": [{"coding": [_coding(CONSENT_ACTION_SYSTEM, *_USE_ACTION)]}]}
    purposes = [_coding(DUO_SYSTEM, code, DUO_LABELS.get(code)) for code in _duo_codes(consent.purposes)]
    disease = datause.disease_label(consent.disease)
    if disease is not None:
        purposes.append(_coding(MONDO_SYSTEM, disease))
    if purposes:
        provision["purpose"] = purposes
    if consent.grantee and consent.grantee.lower() != ZERO_ADDRESS:
        provision["actor"] = [
            {
                "role": {"coding": [_coding(PARTICIPATION_TYPE_SYSTEM, *_RECIPIENT_ROLE)]},
                "reference": _address_reference(consent.grantee),
            }
        ]
    if consent.scope.kind == ScopeKind.DATASET:
        reference: dict[str, Any] = {"identifier": {"system": DATASET_SYSTEM, "value": hex32(consent.scope.value)}}
        title = _titles_by_root(dataset_titles).get(consent.scope.value)
        if title is not None:
            reference["display"] = title
        provision["data"] = [{"meaning": "instance", "reference": reference}]
    resource["provision"] = [provision]

    try:
        validated = Consent.model_validate(resource)
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise InvalidInput(f"consent {consent_hex} does not make a valid FHIR R5 Consent: {exc}") from exc
    out: dict[str, Any] = validated.model_dump(mode="json", by_alias=True, exclude_none=True)
    return out


def consents_to_fhir(
    consents: Iterable[ConsentRecord], *, now: int, dataset_titles: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    """:func:`consent_to_fhir` for several consents."""
    return [consent_to_fhir(c, now=now, dataset_titles=dataset_titles) for c in consents]
