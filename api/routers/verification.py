"""Verification: is this file part of a registered dataset, intact, with a sound lineage?"""

from __future__ import annotations

import hashlib

from fastapi import APIRouter, Depends, File, Form, Path, UploadFile

from api.problems import COMMON, responses
from api.schemas import DatasetVerificationOut, FileVerificationOut, HashQuery
from api.state import AppState, get_state
from ledger.services.file_checks import file_report
from ledger.services.verification import verify_dataset

router = APIRouter(prefix="/verify", tags=["verification"], responses=COMMON)


@router.post(
    "/hash",
    response_model=FileVerificationOut,
    response_model_exclude_unset=True,  # no lineage summary when no dataset holds the file
    summary="Which dataset holds a file with this sha256 and size; proof checked on chain",
)
def by_hash(body: HashQuery, state: AppState = Depends(get_state)) -> FileVerificationOut:
    report = file_report(state.ledger, state.indexer, sha256=body.sha256, size=body.size, datasets=body.datasets)
    return FileVerificationOut(**report)


@router.post(
    "/file",
    response_model=FileVerificationOut,
    response_model_exclude_unset=True,
    summary="Upload a file: which dataset holds it, is it intact, is its lineage sound",
)
async def by_file(
    file: UploadFile = File(...),
    datasets: str | None = Form(None, max_length=67_000, description="comma-separated content roots"),
    state: AppState = Depends(get_state),
) -> FileVerificationOut:
    digest = hashlib.sha256()
    size = 0
    while chunk := await file.read(1 << 20):
        digest.update(chunk)
        size += len(chunk)
    given = [d.strip() for d in datasets.split(",") if d.strip()] if datasets else None
    report = file_report(state.ledger, state.indexer, sha256=digest.hexdigest(), size=size, datasets=given)
    return FileVerificationOut(**report)


@router.get(
    "/datasets/{root}",
    response_model=DatasetVerificationOut,
    summary="Verify one dataset's record and metadata",
    responses=responses(404),
)
def dataset(
    root: str = Path(pattern=r"^0x[0-9a-fA-F]{64}$"), state: AppState = Depends(get_state)
) -> DatasetVerificationOut:
    return DatasetVerificationOut(**verify_dataset(state.ledger, root).to_json())
