"""The verification rules on records and documents made in memory (no chain, no IPFS): every field
the chain record and the metadata both state is compared, each difference under its own reason."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from ledger_fixtures import metadata_for, unique_files, write_files

from ledger.content.metadata import DatasetMetadata
from ledger.core.classification import Classification, DatasetStatus, Tier
from ledger.core.records import ZERO32, DatasetRecord
from ledger.rules.verification import DatasetVerification, Reason, check_metadata, settle_tier, tier_unsettled

HOLDER = Account.from_key(b"\x01" * 32).address


@pytest.fixture
def metadata(tmp_path: Path) -> DatasetMetadata:
    md: DatasetMetadata = metadata_for(HOLDER, write_files(tmp_path / "d", unique_files("rules")))
    return md


def record_for(md: DatasetMetadata, **changes: Any) -> DatasetRecord:
    """The chain record a faithful registration of ``md`` makes, with ``changes`` applied."""
    rec = DatasetRecord(
        content_root=md.content_root(),
        holder=HOLDER,
        tier=md.tier,
        status=DatasetStatus.ACTIVE,
        classification=int(md.classification),
        embargo_end=0,
        registered_block=1,
        metadata_digest=md.digest(),
        activity_digest=md.activity_digest() or ZERO32,
        subject_root=ZERO32,
        successor=ZERO32,
        derived_count=0,
        parents=(),
    )
    return dataclasses.replace(rec, **changes)


def checked(md: DatasetMetadata, rec: DatasetRecord) -> DatasetVerification:
    result = DatasetVerification(rec.content_root, record=rec)
    check_metadata(result, md.to_canonical_bytes())
    return result


def test_a_faithful_record_passes(metadata: DatasetMetadata) -> None:
    result = checked(metadata, record_for(metadata))
    assert result.ok and result.reasons == set(), result.to_json()


@pytest.mark.parametrize(
    ("changes", "reason", "named"),
    [
        ({"classification": int(Classification.PHARMA_POST_MARKET)}, Reason.CLASSIFICATION_MISMATCH, "0x0402"),
        ({"classification": 0x7777}, Reason.CLASSIFICATION_MISMATCH, "0x7777"),  # not a taxonomy code
        ({"tier": Tier.OPEN}, Reason.TIER_MISMATCH, "open"),
        ({"holder": Account.from_key(b"\x02" * 32).address}, Reason.HOLDER_MISMATCH, "chain"),
        ({"parents": (b"\x05" * 32,)}, Reason.PARENTS_MISMATCH, "0x" + "05" * 32),
        ({"activity_digest": b"\x06" * 32}, Reason.ACTIVITY_MISMATCH, "0x" + "06" * 32),
        ({"content_root": b"\x07" * 32}, Reason.CONTENT_ROOT_MISMATCH, "0x" + "07" * 32),
    ],
)
def test_each_differing_field_is_named(
    metadata: DatasetMetadata, changes: dict[str, Any], reason: Reason, named: str
) -> None:
    result = checked(metadata, record_for(metadata, **changes))
    assert not result.ok
    assert result.reasons == {reason}, result.to_json()
    assert named in result.failures[0].detail


def test_classification_detail_names_both_codes(metadata: DatasetMetadata) -> None:
    assert metadata.classification == Classification.CLINICAL_RESEARCH
    result = checked(metadata, record_for(metadata, classification=0x0402))
    (finding,) = result.failures
    assert finding.to_json()["reason"] == "classification-mismatch"
    assert "metadata classification 0x0101" in finding.detail and "chain records 0x0402" in finding.detail


def test_tier_and_classification_differ_together(metadata: DatasetMetadata) -> None:
    result = checked(metadata, record_for(metadata, classification=0x0201, tier=Tier.CLOSED))
    assert result.reasons == {Reason.CLASSIFICATION_MISMATCH, Reason.TIER_MISMATCH}
    assert {f.to_json()["reason"] for f in result.failures} == {"classification-mismatch", "tier-mismatch"}


def test_a_tier_changed_after_registration_is_no_mismatch(metadata: DatasetMetadata) -> None:
    # the holder registered under the metadata's tier, then opened the dataset up (setSharing)
    result = checked(metadata, record_for(metadata, tier=Tier.OPEN))
    assert tier_unsettled(result)
    settle_tier(result, metadata.tier)
    assert result.ok and not tier_unsettled(result), result.to_json()


def test_a_tier_that_differed_at_registration_stays_a_mismatch(metadata: DatasetMetadata) -> None:
    result = checked(metadata, record_for(metadata, tier=Tier.REGISTERED))
    settle_tier(result, Tier.OPEN)
    (finding,) = result.failures
    assert finding.reason is Reason.TIER_MISMATCH and "chain registered open" in finding.detail
    unknown = checked(metadata, record_for(metadata, tier=Tier.OPEN))
    settle_tier(unknown, None)  # no registration event found: the mismatch stands
    assert unknown.reasons == {Reason.TIER_MISMATCH}
    same = checked(metadata, record_for(metadata))
    settle_tier(same, Tier.OPEN)  # nothing to settle when the tiers agree now
    assert same.ok
