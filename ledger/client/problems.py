"""Problems the service reports, as the library's own exceptions: an RFC 9457 problem
(``application/problem+json``) becomes the :mod:`ledger.core.errors` class its ``type`` names
(``urn:medledger:problem:access-denied`` -> :class:`~ledger.core.errors.AccessDenied`, ...), with the
problem's ``detail`` as the message, its ``hint`` kept, and the whole problem in ``exc.problem`` (and the
HTTP status in ``exc.status``); a type the library does not know becomes :class:`ServiceError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ledger.core import errors as _errors
from ledger.core.errors import ContractRevert, LedgerError

PROBLEM_BASE = "urn:medledger:problem:"


class ServiceError(LedgerError):
    """A problem reported by the service that the library has no exception class for."""

    code = "service-error"

    def __init__(self, message: str, *, hint: str | None = None, code: str | None = None) -> None:
        super().__init__(message, hint=hint)
        if code:
            self.code = code


class TicketTimeout(LedgerError):
    """A relayed request was accepted but not settled within the wait."""

    code = "ticket-timeout"


def _error_classes() -> dict[str, type[LedgerError]]:
    """Library exception class by code. Where several classes share a code the first defined wins."""
    table: dict[str, type[LedgerError]] = {}
    pending: list[type[LedgerError]] = [LedgerError]
    while pending:
        cls = pending.pop(0)
        if cls.__module__ == _errors.__name__:
            table.setdefault(cls.code, cls)
        pending += cls.__subclasses__()
    for revert_class in _errors.REVERT_CLASSES.values():
        table.setdefault(revert_class.code, revert_class)
    # the service's own request validation: the arguments were wrong
    table["invalid-request"] = _errors.InvalidInput
    return table


_CLASSES = _error_classes()


def error_from_problem(problem: Mapping[str, Any], status: int | None = None) -> LedgerError:
    """The library exception for a problem document (or a ticket's error object)."""
    kind = str(problem.get("type") or "")
    code = kind.removeprefix(PROBLEM_BASE) or "service-error"
    detail = problem.get("detail") or problem.get("message") or problem.get("title") or f"HTTP {status}"
    hint = problem.get("hint")
    hint_text = str(hint) if hint else None
    cls = _CLASSES.get(code)
    exc: LedgerError
    if cls is None:
        exc = ServiceError(str(detail), hint=hint_text, code=code)
    elif issubclass(cls, ContractRevert):
        revert = cls.__new__(cls)
        LedgerError.__init__(revert, str(detail), hint=hint_text)
        revert.name = str(problem.get("error") or code)
        args = problem.get("args")
        revert.args_ = dict(args) if isinstance(args, Mapping) else {}
        revert.contract = None
        exc = revert
    else:
        exc = cls(str(detail), hint=hint_text)
    exc.code = code
    exc.problem = dict(problem)  # type: ignore[attr-defined]
    exc.status = status  # type: ignore[attr-defined]
    return exc


def problem_of(exc: BaseException) -> dict[str, Any] | None:
    """The problem document an exception raised by this client carries, if any."""
    problem = getattr(exc, "problem", None)
    return dict(problem) if isinstance(problem, Mapping) else None


def status_of(exc: BaseException) -> int | None:
    """The HTTP status of the answer an exception raised by this client came from, if any."""
    status = getattr(exc, "status", None)
    return status if isinstance(status, int) else None
