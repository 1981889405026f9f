"""Exports: PROV-JSON, OpenLineage run events and FHIR R5 Consent, built from records made in memory
(no chain, no IPFS)."""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import fhir.resources
import pytest
from eth_utils.address import to_checksum_address
from fhir.resources.consent import Consent
from openlineage.client.serde import Serde
from prov.model import ProvDocument

from ledger.content.files import FileEntry
from ledger.content.metadata import ActivityDescription, DatasetMetadata
from ledger.core.classification import Classification, DatasetStatus, Tier
from ledger.core.errors import InvalidInput
from ledger.core.records import (
    ZERO32,
    ZERO_ADDRESS,
    ConsentRecord,
    ConsentScope,
    ConsentState,
    DatasetRecord,
    hex32,
)
from ledger.exports.fhir import CODE_LABELS, DUO_SYSTEM, ETHEREUM_ADDRESS_SYSTEM, MONDO_SYSTEM, consent_to_fhir
from ledger.exports.openlineage import lineage_to_openlineage, openlineage_run_events, run_id
from ledger.exports.prov import lineage_to_prov, prov_document
from ledger.rules import datause
from ledger.rules.verification import DatasetVerification, LineageReport


def address(n: int) -> str:
    return to_checksum_address("0x" + hashlib.sha256(f"account {n}".encode()).hexdigest()[:40])


HOSPITAL = address(1)
LAB = address(2)
PIPELINE = address(3)  # the agent that ran the merge and the filter
SUBJECT = address(4)
GRANTEE = address(5)

T0 = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
NOW = int(datetime(2025, 1, 1, tzinfo=UTC).timestamp())
EXPIRY = int(datetime(2030, 1, 1, tzinfo=UTC).timestamp())
DESCRIPTION_MARKER = "Described-only-in-metadata"
PURPOSE = datause.use_mask("HMB", ["publishes"])


def files(tag: str) -> list[FileEntry]:
    return [
        FileEntry(path=f"{tag}/table.csv", size=100 + len(tag), sha256=hashlib.sha256(tag.encode()).hexdigest()),
        FileEntry(path=f"{tag}/README.md", size=10, sha256=hashlib.sha256(tag.encode() + b"!").hexdigest()),
    ]


def activity(kind: str, agent: str, day: int, **extra: Any) -> ActivityDescription:
    return ActivityDescription.model_validate(
        {
            "type": kind,
            "agent": agent,
            "started": T0.replace(day=day),
            "ended": T0.replace(day=day, hour=9),
            **extra,
        }
    )


def metadata(
    tag: str,
    holder: str,
    title: dict[str, str],
    *,
    parents: tuple[bytes, ...] = (),
    act: ActivityDescription | None = None,
    tier: Tier = Tier.CONTROLLED,
) -> DatasetMetadata:
    return DatasetMetadata.model_validate(
        {
            "title": title,
            "description": {"en": f"{DESCRIPTION_MARKER} {tag}"},
            "classification": Classification.CLINICAL_RESEARCH,
            "tier": tier,
            "licence": {"spdx": "CC-BY-4.0"},
            "data_use": ["DUO:0000006"],
            "disease_codes": ["MONDO:0005148"],
            "files": files(tag),
            "parents": [hex32(p) for p in parents],
            "activity": act,
            "holder": holder,
            "created": T0,
        }
    )


def node(md: DatasetMetadata, *, status: DatasetStatus = DatasetStatus.ACTIVE) -> DatasetVerification:
    root = md.content_root()
    record = DatasetRecord(
        content_root=root,
        holder=md.holder,
        tier=md.tier,
        status=status,
        classification=int(md.classification),
        embargo_end=0,
        registered_block=10,
        metadata_digest=md.digest(),
        activity_digest=md.activity_digest() or ZERO32,
        subject_root=hashlib.sha256(b"subjects" + root).digest(),
        successor=ZERO32,
        derived_count=0,
        parents=tuple(bytes.fromhex(p[2:]) for p in md.parents),
    )
    return DatasetVerification(root, record=record, metadata=md, metadata_cid=md.cid())


class Dag:
    """collected (A, with a collection activity) + legacy (B, no activity) -> merged (C) -> filtered (D)."""

    def __init__(self) -> None:
        self.a = metadata(
            "collected",
            HOSPITAL,
            {"en": "Diabetes cohort visits", "zh-CN": "糖尿病队列随访"},
            act=activity("collection", HOSPITAL, 1, software={"name": "redcap", "version": "14.0"}),
        )
        self.b = metadata("legacy", LAB, {"en": "Legacy lab panel"})
        self.c = metadata(
            "merged",
            PIPELINE,
            {"en": "Merged cohort and lab panel"},
            parents=(self.a.content_root(), self.b.content_root()),
            act=activity(
                "merge",
                PIPELINE,
                2,
                software={"name": "merge-tool", "version": "1.2.0"},
                parameters_digest="0x" + "ab" * 32,
            ),
        )
        self.d = metadata(
            "filtered",
            PIPELINE,
            {"en": "Merged panel, consent-filtered for HMB"},
            parents=(self.c.content_root(),),
            act=activity(
                "consent-filter",
                PIPELINE,
                3,
                consent_filter={"purpose_mask": PURPOSE, "block_number": 1234},
            ),
        )
        self.roots = {k: getattr(self, k).content_root() for k in "abcd"}

    def report(self, *, drop_metadata: str | None = None) -> LineageReport:
        nodes = {self.roots[k]: node(getattr(self, k)) for k in "dcab"}  # BFS order from the root
        if drop_metadata is not None:
            n = nodes[self.roots[drop_metadata]]
            n.metadata = None
        r = self.roots
        edges = [(r["d"], r["c"]), (r["c"], r["a"]), (r["c"], r["b"])]
        return LineageReport(r["d"], nodes, edges)

    def titles(self) -> set[str]:
        return {t for md in (self.a, self.b, self.c, self.d) for t in md.title.values()}


@pytest.fixture(scope="module")
def dag() -> Dag:
    return Dag()


# ---------------------------------------------------------------------------------------------
# PROV
# ---------------------------------------------------------------------------------------------

PROV_JSON_KEYS = {
    "prefix",
    "entity",
    "activity",
    "agent",
    "wasGeneratedBy",
    "used",
    "wasDerivedFrom",
    "wasAttributedTo",
    "wasAssociatedWith",
    "bundle",
}
# required attributes of each PROV-JSON relation (PROV-JSON submission, section 2.3)
PROV_REQUIRED = {
    "wasGeneratedBy": ("prov:entity",),
    "used": ("prov:activity",),
    "wasDerivedFrom": ("prov:generatedEntity", "prov:usedEntity"),
    "wasAttributedTo": ("prov:entity", "prov:agent"),
    "wasAssociatedWith": ("prov:activity",),
}
# which kind of element each relation attribute must refer to
PROV_REFERS = {
    "prov:entity": "entity",
    "prov:generatedEntity": "entity",
    "prov:usedEntity": "entity",
    "prov:activity": "activity",
    "prov:agent": "agent",
}


def check_prov_json(doc: dict[str, Any]) -> None:
    """The PROV-JSON structure: known top-level keys, declared prefixes, relation records with their
    required attributes referring to declared elements, xsd:dateTime times."""
    assert set(doc) <= PROV_JSON_KEYS
    prefixes = set(doc["prefix"]) | {"prov", "xsd"}
    for kind in ("entity", "activity", "agent"):
        for ident in doc.get(kind, {}):
            assert ident.split(":", 1)[0] in prefixes, ident
    for relation, required in PROV_REQUIRED.items():
        for ident, rec in doc.get(relation, {}).items():
            assert ident.startswith("_:") or ident.split(":", 1)[0] in prefixes
            for key in required:
                assert key in rec, (relation, key)
            for key, kind in PROV_REFERS.items():
                if key in rec:
                    assert rec[key] in doc[kind], (relation, key, rec[key])
            for key in ("prov:time",):
                if key in rec:
                    datetime.fromisoformat(rec[key])
    for rec in doc.get("activity", {}).values():
        start = datetime.fromisoformat(rec["prov:startTime"])
        end = datetime.fromisoformat(rec["prov:endTime"])
        assert start <= end


def without_blank_ids(doc: dict[str, Any]) -> dict[str, Any]:
    """Relation records keyed by generated blank-node ids (``_:id1``...) as a sorted list instead."""
    out: dict[str, Any] = {}
    for section, records in doc.items():
        if isinstance(records, dict) and records and all(k.startswith("_:") for k in records):
            out[section] = sorted(json.dumps(r, sort_keys=True) for r in records.values())
        else:
            out[section] = records
    return out


def ml(kind: str, value: str) -> str:
    return f"ml:{kind}/{value}"


def test_prov_document_contents(dag: Dag) -> None:
    doc = lineage_to_prov(dag.report())
    check_prov_json(doc)
    r = {k: hex32(v) for k, v in dag.roots.items()}
    assert doc["prefix"] == {"ml": "https://medledger.example/ns#"}
    assert set(doc["entity"]) == {ml("dataset", r[k]) for k in "abcd"}
    # B has no activity description: three activities, one per described dataset
    assert set(doc["activity"]) == {ml("activity", r[k]) for k in "acd"}
    assert set(doc["agent"]) == {ml("agent", a) for a in (HOSPITAL, LAB, PIPELINE)}

    derived = {(d["prov:generatedEntity"], d["prov:usedEntity"]) for d in doc["wasDerivedFrom"].values()}
    assert derived == {
        (ml("dataset", r["d"]), ml("dataset", r["c"])),
        (ml("dataset", r["c"]), ml("dataset", r["a"])),
        (ml("dataset", r["c"]), ml("dataset", r["b"])),
    }
    for d in doc["wasDerivedFrom"].values():
        assert d["prov:activity"] == d["prov:generatedEntity"].replace("dataset/", "activity/")
    generated = {(g["prov:entity"], g["prov:activity"]) for g in doc["wasGeneratedBy"].values()}
    assert generated == {(ml("dataset", r[k]), ml("activity", r[k])) for k in "acd"}
    used = {(u["prov:activity"], u["prov:entity"]) for u in doc["used"].values()}
    assert used == {
        (ml("activity", r["c"]), ml("dataset", r["a"])),
        (ml("activity", r["c"]), ml("dataset", r["b"])),
        (ml("activity", r["d"]), ml("dataset", r["c"])),
    }
    attributed = {(a["prov:entity"], a["prov:agent"]) for a in doc["wasAttributedTo"].values()}
    assert attributed == {
        (ml("dataset", r["a"]), ml("agent", HOSPITAL)),
        (ml("dataset", r["b"]), ml("agent", LAB)),
        (ml("dataset", r["c"]), ml("agent", PIPELINE)),
        (ml("dataset", r["d"]), ml("agent", PIPELINE)),
    }
    associated = {(a["prov:activity"], a["prov:agent"]) for a in doc["wasAssociatedWith"].values()}
    assert associated == {
        (ml("activity", r["a"]), ml("agent", HOSPITAL)),
        (ml("activity", r["c"]), ml("agent", PIPELINE)),
        (ml("activity", r["d"]), ml("agent", PIPELINE)),
    }

    a = doc["entity"][ml("dataset", r["a"])]
    assert a["ml:contentRoot"] == r["a"]
    assert a["ml:metadataCid"] == dag.a.cid()
    assert a["ml:metadataDigest"] == hex32(dag.a.digest())
    assert a["ml:status"] == "active"
    assert a["ml:tier"] == "controlled"
    assert a["ml:classification"] == "0x0101"
    assert a["ml:holder"] == HOSPITAL
    assert sorted((lbl["lang"], lbl["$"]) for lbl in a["prov:label"]) == sorted(
        [("en", "Diabetes cohort visits"), ("zh-CN", "糖尿病队列随访")]
    )

    filt = doc["activity"][ml("activity", r["d"])]
    assert filt["prov:type"] == {"$": "ml:consent-filter", "type": "xsd:QName"}
    assert filt["prov:startTime"].startswith("2024-03-03T08:00:00")
    assert filt["prov:endTime"].startswith("2024-03-03T09:00:00")
    assert filt["ml:purposeMask"] == hex(PURPOSE)
    assert filt["ml:purpose"] == "DUO:0000006"
    assert filt["ml:useAttribute"] == "publishes"
    assert filt["ml:consentBlock"] == {"$": "1234", "type": "xsd:int"}
    assert filt["ml:activityDigest"] == hex32(dag.d.activity_digest() or b"")
    merge = doc["activity"][ml("activity", r["c"])]
    assert merge["ml:softwareName"] == "merge-tool"
    assert merge["ml:parametersDigest"] == "0x" + "ab" * 32

    holder = doc["agent"][ml("agent", HOSPITAL)]
    assert holder["ml:address"] == HOSPITAL
    assert set(holder) == {"prov:type", "ml:address"}  # nothing but roles and the address


def test_prov_round_trip(dag: Dag) -> None:
    original = prov_document(dag.report())
    text = json.dumps(lineage_to_prov(dag.report()))
    back = ProvDocument.deserialize(content=text, format="json")
    assert back == original
    assert len(list(back.get_records())) == len(list(original.get_records()))
    kinds: dict[str, int] = {}
    for record in back.get_records():
        kinds[record.get_type().localpart] = kinds.get(record.get_type().localpart, 0) + 1
    assert kinds["Entity"] == 4
    assert kinds["Activity"] == 3
    assert kinds["Derivation"] == 3
    assert kinds["Generation"] == 3
    assert kinds["Usage"] == 3
    # and it serialises again to the same JSON (up to the numbering of blank relation ids), and to PROV-N
    again = back.serialize(format="json")
    assert again is not None
    assert without_blank_ids(json.loads(again)) == without_blank_ids(json.loads(text))
    assert "wasDerivedFrom(" in back.get_provn()


def test_prov_with_unreadable_metadata_keeps_the_chain_edges(dag: Dag) -> None:
    doc = lineage_to_prov(dag.report(drop_metadata="c"))
    check_prov_json(doc)
    r = {k: hex32(v) for k, v in dag.roots.items()}
    assert ml("activity", r["c"]) not in doc["activity"]
    derived = {(d["prov:generatedEntity"], d["prov:usedEntity"]) for d in doc["wasDerivedFrom"].values()}
    assert (ml("dataset", r["c"]), ml("dataset", r["a"])) in derived
    assert "prov:label" not in doc["entity"][ml("dataset", r["c"])]
    assert ProvDocument.deserialize(content=json.dumps(doc), format="json") == prov_document(
        dag.report(drop_metadata="c")
    )


def test_prov_namespace_is_configurable(dag: Dag) -> None:
    doc = lineage_to_prov(dag.report(), namespace="https://example.org/lineage#")
    assert doc["prefix"]["ml"] == "https://example.org/lineage#"


# ---------------------------------------------------------------------------------------------
# OpenLineage
# ---------------------------------------------------------------------------------------------

RUN_EVENT_SCHEMA = re.compile(r"^https://openlineage\.io/spec/\d+-\d+-\d+/OpenLineage\.json#/\$defs/RunEvent$")


def check_run_event(event: dict[str, Any]) -> None:
    """Required fields of an OpenLineage RunEvent (OpenLineage.json: BaseEvent, RunEvent, Run, Job,
    datasets and facets); the client package ships no JSON schema file to validate against."""
    for key in ("eventTime", "producer", "schemaURL", "run", "job"):
        assert key in event, key
    assert RUN_EVENT_SCHEMA.match(event["schemaURL"])
    assert event["eventType"] in {"START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER"}
    assert "T" in event["eventTime"]
    datetime.fromisoformat(event["eventTime"])
    uuid.UUID(event["run"]["runId"])
    assert event["job"]["namespace"] and event["job"]["name"]
    facets = [*event["run"].get("facets", {}).values(), *event["job"].get("facets", {}).values()]
    for dataset in [*event.get("inputs", []), *event.get("outputs", [])]:
        assert dataset["namespace"] and dataset["name"]
        facets += list(dataset.get("facets", {}).values())
    for facet in facets:
        assert facet["_producer"].startswith("https://")
        assert re.match(r"^https://\S+\.json#/\$defs/\w+$", facet["_schemaURL"]), facet["_schemaURL"]
    for name in [*event["run"].get("facets", {}), *event["job"].get("facets", {})]:
        assert re.match(r"^[A-Za-z_]+$", name)


def test_openlineage_events(dag: Dag) -> None:
    events = lineage_to_openlineage(dag.report())
    r = {k: hex32(v) for k, v in dag.roots.items()}
    for event in events:
        check_run_event(event)
        assert event["eventType"] == "COMPLETE"
        assert event["producer"] == "https://medledger.example/producer"
    # A (collection), C (merge), D (consent filter), parents first; B is original and undescribed
    assert [e["outputs"][0]["name"] for e in events] == [r["a"], r["c"], r["d"]]
    by_output = {e["outputs"][0]["name"]: e for e in events}
    assert by_output[r["a"]].get("inputs", []) == []
    assert [i["name"] for i in by_output[r["c"]]["inputs"]] == [r["a"], r["b"]]
    assert [i["name"] for i in by_output[r["d"]]["inputs"]] == [r["c"]]
    assert all(len(e["outputs"]) == 1 for e in events)

    d = by_output[r["d"]]
    assert d["job"] == {
        "namespace": "medledger",
        "name": f"consent-filter.{r['d']}",
        "facets": d["job"]["facets"],
    }
    assert d["job"]["facets"]["jobType"]["jobType"] == "CONSENT-FILTER"
    assert d["eventTime"] == "2024-03-03T09:00:00Z"
    assert d["run"]["runId"] == run_id(dag.roots["d"])
    assert d["run"]["facets"]["nominalTime"]["nominalStartTime"] == "2024-03-03T08:00:00Z"
    act = d["run"]["facets"]["medledger_activity"]
    assert act["activityType"] == "consent-filter"
    assert act["agent"] == PIPELINE
    assert act["consentFilter"] == {
        "purposeMask": hex(PURPOSE),
        "purposes": ["DUO:0000006"],
        "useAttributes": ["publishes"],
        "blockNumber": 1234,
    }
    out = d["outputs"][0]["facets"]["medledger_dataset"]
    assert out["contentRoot"] == r["d"]
    assert out["metadataCid"] == dag.d.cid()
    assert out["_schemaURL"].endswith("MedLedgerDatasetFacet.json#/$defs/MedLedgerDatasetFacet")
    assert out["_producer"] == "https://medledger.example/producer"
    parent = d["inputs"][0]["facets"]["medledger_dataset"]
    assert parent["contentRoot"] == r["c"]
    assert parent["metadataCid"] == dag.c.cid()
    merge = by_output[r["c"]]["run"]["facets"]
    assert merge["processing_engine"]["name"] == "merge-tool"
    assert merge["processing_engine"]["version"] == "1.2.0"


def test_openlineage_run_ids_are_stable(dag: Dag) -> None:
    first = lineage_to_openlineage(dag.report())
    second = lineage_to_openlineage(Dag().report())
    assert first == second
    ids = [e["run"]["runId"] for e in first]
    assert len(set(ids)) == len(ids)
    assert ids == [run_id(dag.roots[k]) for k in "acd"]
    assert run_id(hex32(dag.roots["a"])) == run_id(dag.roots["a"])
    assert uuid.UUID(ids[0]).version == 5


def test_openlineage_options_and_serde(dag: Dag) -> None:
    events = lineage_to_openlineage(dag.report(), namespace="ledger-test", producer="https://example.org/p")
    for event in events:
        check_run_event(event)
        assert event["job"]["namespace"] == "ledger-test"
        assert event["producer"] == "https://example.org/p"
        assert {i["namespace"] for i in event.get("inputs", [])} <= {"ledger-test"}
    # the client's own JSON serialisation agrees with the dicts
    objects = openlineage_run_events(dag.report())
    assert [json.loads(Serde.to_json(o)) for o in objects] == lineage_to_openlineage(dag.report())


def test_openlineage_unknown_activity(dag: Dag) -> None:
    r = {k: hex32(v) for k, v in dag.roots.items()}
    events = lineage_to_openlineage(dag.report(drop_metadata="c"))
    assert [e["outputs"][0]["name"] for e in events] == [r["a"], r["d"]]
    when = datetime(2024, 6, 1, tzinfo=UTC)
    events = lineage_to_openlineage(dag.report(drop_metadata="c"), unknown_time=when)
    c = next(e for e in events if e["outputs"][0]["name"] == r["c"])
    check_run_event(c)
    assert c["eventTime"] == "2024-06-01T00:00:00Z"
    assert c["job"]["name"] == f"unknown.{r['c']}"
    assert [i["name"] for i in c["inputs"]] == [r["a"], r["b"]]
    assert "title" not in c["outputs"][0]["facets"]["medledger_dataset"]


# ---------------------------------------------------------------------------------------------
# FHIR R5 Consent
# ---------------------------------------------------------------------------------------------


def consent(
    scope: ConsentScope,
    *,
    purposes: int = datause.HMB | datause.NCU,
    disease: int = 0,
    grantee: str = ZERO_ADDRESS,
    state: ConsentState = ConsentState.GIVEN,
    expiry: int = EXPIRY,
) -> ConsentRecord:
    cid = hashlib.sha256(repr((scope, grantee, purposes)).encode()).digest()
    return ConsentRecord(cid, SUBJECT, scope, grantee, purposes, disease, expiry, state, 42)


def validated(resource: dict[str, Any]) -> Consent:
    model = Consent.model_validate(resource)
    Consent.model_validate_json(json.dumps(resource))
    return model


def codes(resource: dict[str, Any], system: str) -> list[str]:
    return [c["code"] for c in resource["provision"][0].get("purpose", []) if c["system"] == system]


def test_fhir_resources_is_r5() -> None:
    assert fhir.resources.__fhir_version__.startswith("5.")


def test_fhir_holder_wide_consent() -> None:
    rec = consent(ConsentScope.holder(HOSPITAL))
    res = consent_to_fhir(rec, now=NOW, given_at=NOW - 86_400)
    model = validated(res)
    assert model.status == "active"
    assert res["resourceType"] == "Consent"
    assert res["decision"] == "permit"
    assert res["identifier"] == [{"system": "urn:medledger:consent", "value": hex32(rec.consent_id)}]
    assert res["subject"] == {
        "type": "Patient",
        "identifier": {"system": ETHEREUM_ADDRESS_SYSTEM, "value": SUBJECT},
    }
    assert res["grantor"] == [res["subject"]]
    holder_ref = {"type": "Organization", "identifier": {"system": ETHEREUM_ADDRESS_SYSTEM, "value": HOSPITAL}}
    assert res["controller"] == [holder_ref]
    assert res["manager"] == [holder_ref]
    assert res["period"]["end"] == "2030-01-01T00:00:00Z"
    assert res["period"]["start"] == "2024-12-31T00:00:00Z"
    assert res["date"] == "2024-12-31"
    assert {c["coding"][0]["code"] for c in res["category"]} == {"57016-8", "research"}
    assert codes(res, DUO_SYSTEM) == ["DUO:0000006", "DUO:0000046"]
    assert codes(res, MONDO_SYSTEM) == []
    provision = res["provision"][0]
    assert "actor" not in provision
    assert "data" not in provision
    assert provision["action"][0]["coding"][0]["code"] == "use"


def test_fhir_dataset_scoped_disease_specific_consent(dag: Dag) -> None:
    root = dag.roots["a"]
    rec = consent(ConsentScope.dataset(root), purposes=datause.DS | datause.IRB, disease=5148)
    res = consent_to_fhir(rec, now=NOW, dataset_titles={hex32(root): dag.a.title["en"]})
    assert validated(res).status == "active"
    assert "controller" not in res and "manager" not in res
    assert "date" not in res and "start" not in res["period"]
    assert codes(res, DUO_SYSTEM) == ["DUO:0000007", "DUO:0000021"]
    assert codes(res, MONDO_SYSTEM) == ["MONDO:0005148"]
    assert res["provision"][0]["data"] == [
        {
            "meaning": "instance",
            "reference": {
                "identifier": {"system": "urn:medledger:dataset", "value": hex32(root)},
                "display": "Diabetes cohort visits",
            },
        }
    ]
    # without titles the reference has no display
    bare = consent_to_fhir(rec, now=NOW)
    assert "display" not in bare["provision"][0]["data"][0]["reference"]


def test_fhir_consent_with_grantee() -> None:
    rec = consent(ConsentScope.holder(LAB), grantee=GRANTEE, purposes=datause.GRU)
    res = consent_to_fhir(rec, now=NOW)
    assert validated(res).status == "active"
    actor = res["provision"][0]["actor"]
    assert actor == [
        {
            "role": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                        "code": "IRCP",
                        "display": "information recipient",
                    }
                ]
            },
            "reference": {"identifier": {"system": ETHEREUM_ADDRESS_SYSTEM, "value": GRANTEE}},
        }
    ]
    assert codes(res, DUO_SYSTEM) == ["DUO:0000042"]


def test_fhir_withdrawn_consent() -> None:
    rec = consent(ConsentScope.holder(HOSPITAL), state=ConsentState.WITHDRAWN)
    res = consent_to_fhir(rec, now=NOW)
    assert validated(res).status == "inactive"
    assert res["decision"] == "permit"  # what was consented; the status says it no longer applies
    assert datetime.fromisoformat(res["period"]["end"]).timestamp() > NOW


def test_fhir_expired_consent() -> None:
    expired = NOW - 3600
    for state in (ConsentState.GIVEN, ConsentState.RENEWED):
        rec = consent(ConsentScope.dataset(b"\x11" * 32), state=state, expiry=expired)
        res = consent_to_fhir(rec, now=NOW)
        assert validated(res).status == "inactive"
        assert datetime.fromisoformat(res["period"]["end"]).timestamp() == expired < NOW
    renewed = consent_to_fhir(consent(ConsentScope.dataset(b"\x11" * 32), state=ConsentState.RENEWED), now=NOW)
    assert renewed["status"] == "active"


def test_fhir_no_consent_is_draft() -> None:
    rec = consent(ConsentScope.holder(HOSPITAL), state=ConsentState.NONE, purposes=0, expiry=0)
    res = consent_to_fhir(rec, now=NOW)
    assert validated(res).status == "draft"
    assert "period" not in res
    assert "purpose" not in res["provision"][0]


def test_fhir_invalid_resource_is_refused(dag: Dag) -> None:
    root = dag.roots["a"]
    rec = consent(ConsentScope.dataset(root))
    with pytest.raises(InvalidInput, match="FHIR R5 Consent"):
        consent_to_fhir(rec, now=NOW, dataset_titles={hex32(root): ""})


# ---------------------------------------------------------------------------------------------
# no free text beyond titles, no personal data
# ---------------------------------------------------------------------------------------------

_STRUCTURAL = re.compile(
    r"^(?:"
    r"0x[0-9a-fA-F]+"  # content roots, digests, addresses, masks, consent ids
    r"|[0-9a-f]{64}"  # FHIR resource id
    r"|(?:ml|prov|xsd|_):[\w/.-]+"  # PROV qualified names and blank nodes
    r"|https?://\S+|urn:[\w:.-]+"  # URIs
    r"|(?:DUO|MONDO):\d{7}|\d{5}-\d"  # ontology and LOINC codes
    r"|\d{4}-\d{2}-\d{2}(?:T[\d:.]+(?:Z|[+-]\d{2}:\d{2}))?"  # dates and times
    r"|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"  # run ids
    r"|b[a-z2-7]{58}"  # CIDv1 base32
    r"|\d+"  # PROV-JSON typed numbers
    r"|[a-z][a-z0-9]*(?:-[a-z0-9]+)*|[A-Z][A-Z_-]*"  # enum values and codes: slugs, upper case
    r"|[a-z][a-z-]*\.0x[0-9a-f]{64}"  # OpenLineage job names
    r"|(?:Dataset|DataHolder|ActivityAgent|Patient|Organization|Consent)"  # fixed type names
    r"|[a-z]{2,3}(?:-[A-Za-z]{2,4})?"  # language tags
    r")$"
)


def strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def test_exports_carry_no_free_text_but_titles(dag: Dag) -> None:
    report = dag.report()
    software = {"redcap", "14.0", "merge-tool", "1.2.0"}
    allowed = dag.titles() | CODE_LABELS | software
    documents: list[Any] = [lineage_to_prov(report), lineage_to_openlineage(report)]
    for rec in (
        consent(ConsentScope.holder(HOSPITAL), grantee=GRANTEE),
        consent(ConsentScope.dataset(dag.roots["a"]), purposes=datause.DS, disease=5148),
        consent(ConsentScope.holder(HOSPITAL), state=ConsentState.WITHDRAWN),
    ):
        documents.append(consent_to_fhir(rec, now=NOW, dataset_titles={hex32(dag.roots["a"]): dag.a.title["en"]}))
    for document in documents:
        text = json.dumps(document, ensure_ascii=False)
        assert DESCRIPTION_MARKER not in text  # long descriptions stay in the metadata
        for value in strings(document):
            assert value in allowed or _STRUCTURAL.match(value), f"unexpected free text {value!r}"
    # people only as addresses: the subject reference is an identifier, without display or name
    fhir_doc = documents[2]
    assert set(fhir_doc["subject"]) == {"type", "identifier"}
    assert re.fullmatch(r"0x[0-9a-fA-F]{40}", fhir_doc["subject"]["identifier"]["value"])
    prov = documents[0]
    for agent in prov["agent"].values():
        assert set(agent) == {"prov:type", "ml:address"}
