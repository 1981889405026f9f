"""Answers about consents: typed data to sign, checks, coverage, history, FHIR."""

from __future__ import annotations

from typing import Any

from .base import Out


class ConsentPrepared(Out):
    kind: str
    typed_data: dict[str, Any]
    message: dict[str, Any]


class ConsentCheck(Out):
    subject: str
    dataset: str
    purpose: Any
    disease: str | None
    grantee: str | None
    in_force: bool


class CoverageOut(Out):
    """Which subjects' consent covers a purpose at a block; the subject root of those covered."""

    dataset: str
    block: int
    timestamp: int | None
    purpose: Any
    grantee: Any
    covered: list[str]
    excluded: list[str]
    covered_count: int
    excluded_count: int
    subject_root: str
    dataset_subject_root: str
    subjects_match_dataset: bool
    computed_at: str


class RecheckOut(Out):
    """A consent filter checked against the consent history at its block."""

    filter: str
    parent: str | None
    block: Any
    timestamp: Any
    purpose: Any
    grantee: Any
    activity_source: Any
    ok: bool
    match: bool


class ConsentHistoryEntry(Out):
    """One change of a consent, with its terms as they were after it."""

    seq: int
    event: str
    action: str
    consent_id: str
    subject: str


class SubjectConsent(Out):
    """A consent's current state and its history."""

    consent_id: str
    subject: str
    scope: dict[str, Any]


class FhirConsent(Out):
    """An HL7 FHIR R5 ``Consent`` resource (validated by fhir.resources)."""

    resourceType: str
    id: str
