"""Verification: is this file part of a registered dataset, intact, with a sound lineage?"""

from __future__ import annotations

import hashlib
from typing import Any

from fastapi import APIRouter, Depends, File, Form, Path, UploadFile

from api.problems import COMMON, responses
from api.schemas import HashQuery
from api.state import AppState, get_state
from ledger.core.errors import InvalidInput
from ledger.services.verification import verify_dataset, verify_file, verify_lineage

router = APIRouter(prefix="/verify", tags=["verification"], responses=COMMON)


def _candidates(state: AppState, given: list[str] | None) -> list[str]:
    if given:
        return given
    if state.indexer is None:
        raise InvalidInput("name the candidate datasets", hint="the indexer is not running to search all datasets")
    from ledger.services.audit import all_dataset_roots

    return all_dataset_roots(state.indexer)


def _with_lineage(state: AppState, result: Any) -> dict[str, Any]:
    body: dict[str, Any] = result.to_json()
    if result.dataset is not None:
        report = verify_lineage(state.ledger, result.dataset)
        body["lineage"] = {
            "ok": report.ok,
            "flagged_ancestors": report.flagged_ancestors(),
            "failures": [{"dataset": "0x" + r.hex(), **f.to_json()} for r, f in report.failures()],
        }
    return body


@router.post("/hash", summary="Which dataset holds a file with this sha256 and size; proof checked on chain")
def by_hash(body: HashQuery, state: AppState = Depends(get_state)) -> dict[str, Any]:
    result = verify_file(state.ledger, sha256=body.sha256, size=body.size, datasets=_candidates(state, body.datasets))
    return _with_lineage(state, result)


@router.post("/file", summary="Upload a file: which dataset holds it, is it intact, is its lineage sound")
async def by_file(
    file: UploadFile = File(...),
    datasets: str | None = Form(None, max_length=67_000, description="comma-separated content roots"),
    state: AppState = Depends(get_state),
) -> dict[str, Any]:
    digest = hashlib.sha256()
    size = 0
    while chunk := await file.read(1 << 20):
        digest.update(chunk)
        size += len(chunk)
    given = [d.strip() for d in datasets.split(",") if d.strip()] if datasets else None
    result = verify_file(state.ledger, sha256=digest.hexdigest(), size=size, datasets=_candidates(state, given))
    return _with_lineage(state, result)


@router.get("/datasets/{root}", summary="Verify one dataset's record and metadata", responses=responses(404))
def dataset(root: str = Path(pattern=r"^0x[0-9a-fA-F]{64}$"), state: AppState = Depends(get_state)) -> dict[str, Any]:
    return verify_dataset(state.ledger, root).to_json()
