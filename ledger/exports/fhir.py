"""Consents as HL7 FHIR R5 ``Consent`` resources, each validated by ``fhir.resources`` before it is
returned, so an invalid resource never leaves this module (rules of every export: ledger.exports.common).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Final

from fhir.resources.consent import Consent

from ledger.core.errors import InvalidInput
from ledger.core.records import ZERO_ADDRESS, ConsentRecord, ConsentState, ScopeKind, hex32, to_bytes32
from ledger.exports.common import DUO_LABELS, duo_codes, iso
from ledger.rules import datause

__all__ = [
    "CODE_LABELS",
    "CONSENT_ID_SYSTEM",
    "DATASET_SYSTEM",
    "DUO_SYSTEM",
    "ETHEREUM_ADDRESS_SYSTEM",
    "MONDO_SYSTEM",
    "consent_to_fhir",
    "consents_to_fhir",
]

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

_PRIVACY_POLICY_LOINC: Final = ("57016-8", "Privacy policy acknowledgment Document")
_RESEARCH_SCOPE: Final = ("research", "Research")
_USE_ACTION: Final = ("use", "Use")
_RECIPIENT_ROLE: Final = ("IRCP", "information recipient")

#: every fixed (non-data) label an export may contain
CODE_LABELS: Final[frozenset[str]] = frozenset(
    [*DUO_LABELS.values(), _PRIVACY_POLICY_LOINC[1], _RESEARCH_SCOPE[1], _USE_ACTION[1], _RECIPIENT_ROLE[1]]
)


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
    return iso(datetime.fromtimestamp(timestamp, UTC))


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

    Raises :class:`~ledger.core.errors.InvalidInput` if the resource does not validate.
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
    purposes = [_coding(DUO_SYSTEM, code, DUO_LABELS.get(code)) for code in duo_codes(consent.purposes)]
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
