"""Consent: signed grants, renewals, withdrawals and delegations; checks; history; FHIR export."""

from __future__ import annotations

from eth_utils.address import is_address
from fastapi import APIRouter, Depends, Path, Query

from api.problems import COMMON, responses
from api.schemas import (
    ConsentCheck,
    ConsentHistoryEntry,
    ConsentPrepared,
    ConsentPrepareIn,
    ConsentSigned,
    CoverageIn,
    CoverageOut,
    FhirConsent,
    RecheckIn,
    RecheckOut,
    SubjectConsent,
    Ticket,
)
from api.state import AppState, get_state
from ledger.core.errors import InvalidInput
from ledger.core.records import ConsentScope
from ledger.history.index import IndexEventSource
from ledger.relay.relayer import SignedConsent
from ledger.rules import datause
from ledger.services.audit import consent_fhir
from ledger.services.consents import consent_message, decode_in_force, in_force_answer, prepared_consent
from ledger.services.coverage import compute_coverage
from ledger.services.recheck import recheck_filter

router = APIRouter(prefix="/consents", tags=["consents"], responses=COMMON)


def _scope(body: ConsentPrepareIn) -> ConsentScope | None:
    if body.kind in ("AppointDelegate", "RevokeDelegate"):
        return None
    if body.scope_kind is None or body.scope is None:
        raise InvalidInput(f"{body.kind} needs scope_kind and scope")
    if body.scope_kind == "holder":
        if len(body.scope) != 42:
            raise InvalidInput("a holder scope is the holder's address")
        return ConsentScope.holder(body.scope)
    if len(body.scope) != 66:
        raise InvalidInput("a dataset scope is the dataset's content root")
    return ConsentScope.dataset(body.scope)


@router.post(
    "/prepare",
    response_model=ConsentPrepared,
    summary="The consent typed message for the subject (or delegate) to sign",
)
def prepare(body: ConsentPrepareIn, state: AppState = Depends(get_state)) -> ConsentPrepared:
    purposes = datause.grant_mask(body.purposes) if body.purposes is not None else None
    msg = consent_message(
        body.kind,
        subject=body.subject,
        scope=_scope(body),
        grantee=body.grantee,
        purposes=purposes,
        disease=datause.parse_disease(body.disease),
        expiry=body.expiry,
        delegate=body.delegate,
    )
    prepared = prepared_consent(state.ledger.relayer, body.kind, msg, nonce=body.nonce, deadline=body.deadline)
    return ConsentPrepared(**prepared)


@router.post(
    "",
    response_model=Ticket,
    status_code=202,
    responses=responses(403, 409),
    summary="Queue a signed consent message; withdrawals are relayed before anything else",
)
def submit(body: ConsentSigned, state: AppState = Depends(get_state)) -> Ticket:
    sc = SignedConsent.from_json(body.model_dump())
    return Ticket(**state.queue.submit_consent(sc).to_json())


@router.get(
    "/check",
    response_model=ConsentCheck,
    summary="Is a subject's consent in force for a dataset, purpose and grantee now?",
    responses=responses(404),
)
async def check(
    subject: str = Query(pattern=r"^0x[0-9a-fA-F]{40}$"),
    dataset: str = Query(pattern=r"^0x[0-9a-fA-F]{64}$"),
    category: str = Query("HMB", pattern=r"^(GRU|HMB|DS|POA)$"),
    attributes: list[str] = Query(default_factory=list, max_length=8),
    disease: str | None = Query(None, max_length=20),
    grantee: str | None = Query(None, pattern=r"^0x[0-9a-fA-F]{40}$"),
    state: AppState = Depends(get_state),
) -> ConsentCheck:
    # async and a raw eth_call: the hot read path of a data platform, kept off the thread pool
    purpose = datause.Purpose.of(category, attributes, disease)
    to, data = state.ledger.consent_check_call(subject, dataset, purpose, grantee)
    out = await state.async_reader().call(to, data)
    return ConsentCheck(**in_force_answer(subject, dataset, purpose, grantee, decode_in_force(out)))


@router.post(
    "/coverage",
    response_model=CoverageOut,
    summary="Which of a holder's subjects consent to a purpose at a block (for a filter)",
    responses=responses(404),
)
def coverage(body: CoverageIn, state: AppState = Depends(get_state)) -> CoverageOut:
    purpose = datause.Purpose.of(body.category, body.attributes, body.disease)
    bad = [s for s in body.subjects if not is_address(s)]
    if bad:
        raise InvalidInput(f"{len(bad)} subjects are not addresses, e.g. {bad[0]!r}")
    result = compute_coverage(
        state.ledger, body.dataset, body.subjects, purpose, block=body.block, grantee=body.grantee
    )
    return CoverageOut(**result.to_json())


@router.post(
    "/filters/{root}/recheck",
    response_model=RecheckOut,
    summary="Recheck a consent-filtered dataset against the consent history",
    responses=responses(404),
)
def recheck(
    body: RecheckIn, root: str = Path(pattern=r"^0x[0-9a-fA-F]{64}$"), state: AppState = Depends(get_state)
) -> RecheckOut:
    result = recheck_filter(
        state.ledger,
        IndexEventSource(state.require_indexer()),
        root,
        body.subjects,
        filter_subjects=body.filter_subjects,
        grantee=body.grantee,
    )
    return RecheckOut(**result.to_json())


@router.get(
    "",
    response_model=list[SubjectConsent],
    summary="A subject's consents with their history (from the indexer)",
)
def of_subject(
    subject: str = Query(pattern=r"^0x[0-9a-fA-F]{40}$"), state: AppState = Depends(get_state)
) -> list[SubjectConsent]:
    return [SubjectConsent(**c) for c in state.require_indexer().subject_consents(subject)]


@router.get(
    "/{consent_id}/history",
    response_model=list[ConsentHistoryEntry],
    summary="Every change of one consent",
    responses=responses(404),
)
def history(
    consent_id: str = Path(pattern=r"^0x[0-9a-fA-F]{64}$"), state: AppState = Depends(get_state)
) -> list[ConsentHistoryEntry]:
    return [ConsentHistoryEntry(**h) for h in state.require_indexer().consent_history(consent_id)]


@router.get(
    "/{consent_id}/fhir",
    response_model=FhirConsent,
    summary="The consent as an HL7 FHIR R5 Consent resource",
    responses=responses(404),
)
def fhir(consent_id: str = Path(pattern=r"^0x[0-9a-fA-F]{64}$"), state: AppState = Depends(get_state)) -> FhirConsent:
    return FhirConsent(**consent_fhir(state.ledger, state.require_indexer(), consent_id))
