"""Lineage as W3C PROV: a :class:`prov.model.ProvDocument` and its PROV-JSON, produced by the ``prov``
package's serialiser so it reads back into an equal document (rules of every export: ledger.exports.common).
"""

from __future__ import annotations

import json
from typing import Any, Final

from prov.constants import PROV_LABEL, PROV_TYPE
from prov.model import Literal, Namespace, ProvDocument

from ledger.content.metadata import ActivityDescription
from ledger.core.records import ZERO32, hex32
from ledger.exports.common import activity_of, duo_codes, edges, metadata_cid, parents_of, use_attributes
from ledger.rules.verification import DatasetVerification, LineageReport

__all__ = ["DEFAULT_PROV_NAMESPACE", "PROV_PREFIX", "lineage_to_prov", "prov_document"]

DEFAULT_PROV_NAMESPACE: Final = "https://medledger.example/ns#"
PROV_PREFIX: Final = "ml"


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
    cid = metadata_cid(node)
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
        attrs += [(_ml("purpose"), code) for code in duo_codes(cf.purpose_mask)]
        attrs += [(_ml("useAttribute"), name) for name in use_attributes(cf.purpose_mask)]
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
    for _, parent in edges(report):
        if parent not in known:  # not in the report's nodes: record the reference alone
            doc.entity(_entity_id(parent), [(PROV_TYPE, ns["Dataset"]), (_ml("contentRoot"), hex32(parent))])
            known.add(parent)

    parents = parents_of(report)
    for root, node in report.nodes.items():
        if node.record is not None:
            doc.wasAttributedTo(_entity_id(root), agent(node.record.holder, "DataHolder"))
        activity = activity_of(node)
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
