"""Metadata documents: validation, canonical bytes, digests, personal-data heuristic, classification."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import rfc8785
from pydantic import ValidationError

from ledger.content.cid import cid_from_digest, digest_of
from ledger.content.files import FileEntry
from ledger.content.merkle import content_tree
from ledger.content.metadata import (
    ActivityDescription,
    ActivityType,
    DatasetMetadata,
    find_personal_data,
    mondo_code,
    mondo_number,
)
from ledger.core.classification import Category, Classification, DatasetStatus, Tier
from ledger.core.errors import InvalidInput
from ledger.rules.access import dataset_usable

HOLDER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
AGENT = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
PARENT = "0x" + "ab" * 32


def files() -> list[dict[str, Any]]:
    return [
        {"path": "visits.csv", "size": 10, "sha256": "11" * 32},
        {"path": "README.md", "size": 3, "sha256": "22" * 32},
        {"path": "影像/ct-01.dcm", "size": 1 << 40, "sha256": "33" * 32},
    ]


def activity(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "type": "consent-filter",
        "agent": AGENT.lower(),
        "started": "2025-03-01T08:00:00+08:00",
        "ended": "2025-03-01T08:05:00+08:00",
        "software": {"name": "medledger", "version": "0.1.0"},
        "parameters_digest": "CD" * 32,
        "consent_filter": {"purpose_mask": (1 << 3) | (1 << 34), "disease_code": "MONDO:0005148", "block_number": 1234},
        "description": {
            "en": "Subjects whose consent covers type 2 diabetes research",
            "zh-CN": "同意用于糖尿病研究的受试者",
        },
    }
    base.update(changes)
    return base


def metadata(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "title": {"en": "Type 2 diabetes cohort, consent-filtered", "zh-CN": "2型糖尿病队列（按同意筛选）"},
        "description": {"en": "Visits 2019-03-01 to 2021-12-31 of 1,204 adults.", "zh-CN": "2019年至2021年就诊记录。"},
        "keywords": ["diabetes", "cohort"],
        "classification": 0x0101,
        "tier": "controlled",
        "licence": {"spdx": "CC-BY-NC-4.0", "terms": {"en": "Cite the DOI."}},
        "data_use": ["DUO:0000007", "DUO:0000046"],
        "disease_codes": ["MONDO:0005148"],
        "files": files(),
        "parents": [PARENT],
        "activity": activity(),
        "deidentification": {"method": "k-anonymity", "parameters": {"k": 5, "quasi_identifiers": "age,sex,zip3"}},
        "subject_count": 1204,
        "holder": HOLDER,
        "citation": {"doi": "10.1234/medledger.5678"},
        "created": "2025-03-02T00:00:00Z",
    }
    base.update(changes)
    return base


def test_valid_document_normalises() -> None:
    document = DatasetMetadata.model_validate(metadata())
    assert document.schema_version == "1.0"
    assert document.tier is Tier.CONTROLLED
    assert document.classification is Classification.CLINICAL_RESEARCH
    assert [f.path for f in document.files] == ["README.md", "visits.csv", "影像/ct-01.dcm"]
    assert document.keywords == ("cohort", "diabetes")
    assert document.activity is not None
    assert document.activity.agent == AGENT
    assert document.activity.started == datetime(2025, 3, 1, 0, 0, tzinfo=UTC)
    assert document.activity.parameters_digest == "0x" + "cd" * 32


def test_canonical_bytes_are_rfc8785_and_stable() -> None:
    document = DatasetMetadata.model_validate(metadata())
    data = document.to_canonical_bytes()
    assert data == rfc8785.dumps(json.loads(data))
    shuffled = metadata(files=list(reversed(files())), keywords=["cohort", "diabetes"])
    assert DatasetMetadata.model_validate(shuffled).to_canonical_bytes() == data
    assert DatasetMetadata.from_bytes(data) == document
    assert b'"tier":2' in data and b'"classification":257' in data
    assert "影像".encode() in data  # UTF-8, not \u escapes
    assert b"null" not in data  # unset optional fields are omitted


def test_non_canonical_bytes_are_refused() -> None:
    document = DatasetMetadata.model_validate(metadata())
    pretty = json.dumps(json.loads(document.to_canonical_bytes()), indent=2, ensure_ascii=False).encode()
    with pytest.raises(InvalidInput, match="not in canonical"):
        DatasetMetadata.from_bytes(pretty)
    assert DatasetMetadata.from_bytes(pretty, require_canonical=False) == document
    with pytest.raises(InvalidInput, match="not a valid"):
        DatasetMetadata.from_bytes(b'{"schema_version": "2.0"}')


def test_digest_and_cid() -> None:
    document = DatasetMetadata.model_validate(metadata())
    digest = hashlib.sha256(document.to_canonical_bytes()).digest()
    assert document.digest() == digest
    assert document.cid().startswith("bafkrei")
    assert digest_of(document.cid()) == digest
    assert cid_from_digest(digest) == document.cid()
    assert document.activity is not None
    assert document.activity_digest() == hashlib.sha256(document.activity.to_canonical_bytes()).digest()


def test_content_root_recomputes_the_merkle_root() -> None:
    document = DatasetMetadata.model_validate(metadata())
    expected = content_tree([(f["path"], f["size"], bytes.fromhex(f["sha256"])) for f in files()]).root
    assert document.content_root() == expected
    assert document.total_size == 13 + (1 << 40)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("schema_version", "2.0"),
        ("subjects", ["0x" + "11" * 20]),  # subjects never appear, only a count
        ("patient_name", "x"),
        ("tier", "secret"),
        ("classification", 0x0999),
        ("data_use", ["DUO:42"]),
        ("data_use", []),
        ("disease_codes", ["ICD10:E11"]),
        ("files", []),
        ("parents", ["0x1234"]),
        ("parents", [PARENT, PARENT]),
        ("holder", "0x70997970c51812DC3A010C7d01b50e0d17dc79C8"),  # bad EIP-55 checksum
        ("holder", "alice"),
        ("created", "2025-03-02T00:00:00"),  # naive timestamp
        ("title", {}),
        ("title", {"english": "x"}),
        ("title", {"en": "   "}),
        ("licence", {"terms": {"en": "no id"}}),
        ("citation", {}),
        ("subject_count", -1),
    ],
)
def test_invalid_fields_are_refused(field: str, value: Any) -> None:
    with pytest.raises(ValidationError):
        DatasetMetadata.model_validate(metadata(**{field: value}))


def test_duplicate_file_paths_are_refused() -> None:
    with pytest.raises(ValidationError, match="duplicate file path"):
        DatasetMetadata.model_validate(metadata(files=[*files(), files()[0]]))


def test_lineage_rules() -> None:
    with pytest.raises(ValidationError, match="must describe the activity"):
        DatasetMetadata.model_validate(metadata(activity=None))
    with pytest.raises(ValidationError, match="collection activity has no parent"):
        DatasetMetadata.model_validate(metadata(activity=activity(type="collection", consent_filter=None)))
    original = DatasetMetadata.model_validate(
        metadata(parents=[], activity=activity(type="collection", consent_filter=None))
    )
    assert original.parents == ()


def test_activity_rules() -> None:
    ActivityDescription.model_validate(activity())
    with pytest.raises(ValidationError, match="consent_filter is required"):
        ActivityDescription.model_validate(activity(consent_filter=None))
    with pytest.raises(ValidationError, match="consent_filter is required"):
        ActivityDescription.model_validate(activity(type="aggregation"))
    with pytest.raises(ValidationError, match="ended before it started"):
        ActivityDescription.model_validate(activity(ended="2025-03-01T07:00:00+08:00"))
    with pytest.raises(ValidationError):
        ActivityDescription.model_validate(activity(type="teleportation"))
    assert {t.value for t in ActivityType} >= {"collection", "de-identification", "consent-filter", "merge"}


def test_activity_timestamps_are_utc() -> None:
    described = ActivityDescription.model_validate(activity())
    data = json.loads(described.to_canonical_bytes())
    assert data["started"] == "2025-03-01T00:00:00Z"
    shifted = activity(
        started=datetime(2025, 3, 1, 9, 0, tzinfo=timezone(timedelta(hours=9))),
        ended=datetime(2025, 3, 1, 0, 5, tzinfo=UTC),
    )
    assert ActivityDescription.model_validate(shifted).to_canonical_bytes() == described.to_canonical_bytes()


def test_models_are_frozen() -> None:
    document = DatasetMetadata.model_validate(metadata())
    with pytest.raises(ValidationError):
        document.tier = Tier.OPEN


# ---------------------------------------------------------------------------------------------
# personal-data heuristic
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "Contact the PI at wang.li@hospital.example.cn for access",
        "Patient DOB: 1980-05-17, enrolled 2019",
        "date of birth 17/05/1980",
        "born on May 17, 1980",
        "患者出生日期：1980年5月17日",
        "call +86 138 0013 8000",
        "手机 13800138000",
        "phone (555) 123-4567",
        "身份证 110101198005170035",
        "Patient name: Zhang San",
    ],
)
def test_personal_data_heuristic_flags(text: str) -> None:
    assert find_personal_data(text) is not None


@pytest.mark.parametrize(
    "text",
    [
        "Visits from 2019-03-01 to 2021-12-31 of 1,204 adults aged 40-75",
        "Whole-genome sequencing at 30x, GRCh38, 2,000,000 variants",
        "Subjects born between 1950 and 1970",
        "HbA1c measured at 0, 3, 6 and 12 months; 95% CI 1.2-3.4",
        "2型糖尿病队列，2019年至2021年，共1204名成人",
        "DOI 10.1234/medledger.5678 and PMID 31234567",
    ],
)
def test_personal_data_heuristic_passes_ordinary_text(text: str) -> None:
    assert find_personal_data(text) is None


def test_personal_data_in_titles_and_descriptions_is_refused() -> None:
    with pytest.raises(ValidationError, match="e-mail address"):
        DatasetMetadata.model_validate(metadata(title={"en": "Cohort of jane.doe@example.org"}))
    with pytest.raises(ValidationError, match="date of birth"):
        DatasetMetadata.model_validate(metadata(description={"en": "Index case, DOB 1980-05-17"}))
    with pytest.raises(ValidationError, match="date of birth"):
        DatasetMetadata.model_validate(metadata(description={"zh-CN": "出生日期 1980年5月17日"}))
    with pytest.raises(ValidationError, match="phone"):
        DatasetMetadata.model_validate(metadata(keywords=["13800138000"]))
    with pytest.raises(ValidationError, match="e-mail"):
        ActivityDescription.model_validate(activity(description={"en": "run by ops@lab.example"}))


# ---------------------------------------------------------------------------------------------
# codes
# ---------------------------------------------------------------------------------------------


def test_classification_codes() -> None:
    assert Classification.parse(0x0102) is Classification.CLINICAL_ROUTINE_CARE
    assert Classification.parse("0x0203") is Classification.BASIC_PATHOLOGY
    assert Classification.parse("public-health-survey") is Classification.PUBLIC_HEALTH_SURVEY
    assert Classification.PHARMA_POST_MARKET.category is Category.PHARMACEUTICAL
    assert Classification.BASIC_MOLECULAR.label.zh
    assert all(c.label.en and c.label.zh for c in Classification)
    assert {c.value for c in Classification} == {
        0x0101, 0x0102, 0x0201, 0x0202, 0x0203, 0x0301, 0x0302, 0x0303, 0x0401, 0x0402,
    }  # fmt: skip
    with pytest.raises(InvalidInput, match="unknown classification"):
        Classification.parse(0x0500)
    with pytest.raises(InvalidInput):
        Classification.parse("astrology")


def test_tier_and_status_match_the_contract_enums() -> None:
    assert [(t.name, t.value) for t in Tier] == [("OPEN", 0), ("REGISTERED", 1), ("CONTROLLED", 2), ("CLOSED", 3)]
    assert [s.value for s in DatasetStatus] == [0, 1, 2, 3, 4]
    assert [s.name for s in DatasetStatus] == ["NONE", "ACTIVE", "DEPRECATED", "SUSPENDED", "RETRACTED"]
    assert Tier.parse("Registered") is Tier.REGISTERED
    assert Tier.parse("3") is Tier.CLOSED
    assert DatasetStatus.parse(4) is DatasetStatus.RETRACTED
    assert dataset_usable(DatasetStatus.DEPRECATED) and not dataset_usable(DatasetStatus.SUSPENDED)
    with pytest.raises(InvalidInput):
        Tier.parse(7)


def test_mondo_codes() -> None:
    assert mondo_number("MONDO:0005148") == 5148
    assert mondo_code(5148) == "MONDO:0005148"
    with pytest.raises(InvalidInput):
        mondo_number("MONDO:5148")


def test_file_entry_model_is_shared() -> None:
    document = DatasetMetadata.model_validate(metadata())
    assert isinstance(document.files[0], FileEntry)
