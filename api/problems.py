"""Errors as RFC 9457 problem details (``application/problem+json``), one type per failure."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException

from ledger.core.errors import ContractRevert, LedgerError

log = logging.getLogger("medledger.api")

PROBLEM_BASE = "urn:medledger:problem:"

#: HTTP status per library error code
STATUS: dict[str, int] = {
    "invalid-input": 422,
    "configuration": 500,
    "not-found": 404,
    "dataset-not-found": 404,
    "metadata-not-found": 404,
    "invalid-signature": 422,
    "access-denied": 403,
    "use-refused": 403,
    "dataset-already-registered": 409,
    "consent-not-active": 409,
    "consent-withdrawn": 409,
    "contract-revert": 409,
    "transaction-failed": 502,
    "metadata-integrity": 502,
    "node-unavailable": 503,
    "deployment-mismatch": 503,
    "ipfs-error": 502,
}


class Problem(BaseModel):
    """RFC 9457 problem details. ``type`` names the failure; ``hint`` says what to do."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    hint: str | None = None
    error: str | None = None
    args: dict[str, Any] | None = None
    errors: list[dict[str, Any]] | None = None


def problem_response(status: int, code: str, title: str, detail: str, **extra: Any) -> JSONResponse:
    body: dict[str, Any] = {"type": PROBLEM_BASE + code, "title": title, "status": status, "detail": detail}
    body.update({k: v for k, v in extra.items() if v is not None})
    return JSONResponse(body, status_code=status, media_type="application/problem+json")


def _title(code: str) -> str:
    return code.replace("-", " ").capitalize()


def ledger_error_response(exc: LedgerError) -> JSONResponse:
    status = STATUS.get(exc.code, 422 if isinstance(exc, ContractRevert) else 500)
    extra: dict[str, Any] = {"hint": exc.hint}
    if isinstance(exc, ContractRevert):
        extra["error"] = exc.name
        extra["args"] = _jsonable(exc.args_)
    return problem_response(status, exc.code, _title(exc.code), exc.message, **extra)


def _jsonable(v: Any) -> Any:
    if isinstance(v, bytes):
        return "0x" + v.hex()
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    if isinstance(v, int) and abs(v) >= 2**53:
        return str(v)
    return v


def install(app: FastAPI) -> None:
    @app.exception_handler(LedgerError)
    async def _ledger(_: Request, exc: LedgerError) -> JSONResponse:
        return ledger_error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
            for e in exc.errors()
        ]
        detail = "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errors[:5]) or "request is not valid"
        return problem_response(
            422, "invalid-request", "Invalid request", detail, errors=errors, hint="fix the fields listed in errors"
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
        return problem_response(exc.status_code, code, _title(code), str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return problem_response(500, "internal", "Internal error", f"{type(exc).__name__}: {exc}")


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries documenting problem responses."""
    descriptions = {
        400: "Bad request",
        403: "Not allowed: missing role, embargo, suspended user, use not covered",
        404: "Not found",
        409: "Refused by the contract (duplicate, wrong state)",
        422: "Invalid input or signature",
        502: "The chain or IPFS node answered wrongly",
        503: "The chain or IPFS node is unavailable",
    }
    return {
        s: {"model": Problem, "description": descriptions.get(s, "Error"), "content": {"application/problem+json": {}}}
        for s in statuses
    }


COMMON = responses(422, 503)
