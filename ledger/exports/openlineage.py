"""Lineage as OpenLineage run events: the client's ``RunEvent`` classes with the ledger's custom
dataset and run facets, serialised by its ``Serde`` (rules of every export: ledger.exports.common).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Final

import attr
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.generated.base import DatasetFacet, RunFacet
from openlineage.client.generated.job_type_job import JobTypeJobFacet
from openlineage.client.generated.nominal_time_run import NominalTimeRunFacet
from openlineage.client.generated.processing_engine_run import ProcessingEngineRunFacet
from openlineage.client.serde import Serde

from ledger.content.metadata import DatasetMetadata
from ledger.core.records import ZERO32, hex32, to_bytes32
from ledger.exports.common import activity_of, duo_codes, iso, metadata_cid, parents_of, use_attributes
from ledger.rules.verification import DatasetVerification, LineageReport

__all__ = [
    "FACET_SCHEMA_BASE",
    "ConsentFilterInfo",
    "MedLedgerActivityRunFacet",
    "MedLedgerDatasetFacet",
    "lineage_to_openlineage",
    "openlineage_run_events",
    "run_id",
]

#: where the JSON schemas of the custom OpenLineage facets are published
FACET_SCHEMA_BASE: Final = "https://medledger.example/spec/facets/1-0-0/"
_RUN_NAMESPACE: Final = uuid.uuid5(uuid.NAMESPACE_URL, "urn:medledger:openlineage:run")


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
        metadataCid=metadata_cid(node),
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
    parents = parents_of(report)
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
    parents = parents_of(report)
    events: list[RunEvent] = []
    for root in _topological(report):
        node = report.nodes[root]
        activity = activity_of(node)
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
                nominalStartTime=iso(activity.started), nominalEndTime=iso(activity.ended), producer=producer
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
                    purposes=duo_codes(cf.purpose_mask),
                    useAttributes=use_attributes(cf.purpose_mask),
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
                eventTime=iso(event_time),
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
