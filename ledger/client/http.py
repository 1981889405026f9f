"""A client of the ledger service that keeps keys local: it asks the service for the EIP-712 typed
data of a write, signs it here with the actor's key, submits the signed request and (optionally)
waits for the relayed outcome.

Errors come back as the library's own exceptions: an RFC 9457 problem (``application/problem+json``)
becomes the :mod:`ledger.errors` class its ``type`` names (``urn:medledger:problem:access-denied`` ->
:class:`~ledger.errors.AccessDenied`, ...), with the problem's ``detail`` as the message, its ``hint``
kept, and the whole problem in ``exc.problem``; a type the library does not know becomes
:class:`ServiceError` with that code. A failed relayed request raises the same way from the error the
ticket carries. A service that does not answer raises :class:`~ledger.errors.NodeUnavailable`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
from eth_account.signers.local import LocalAccount

from ledger.chain import typed_data
from ledger.core import errors as _errors
from ledger.core.errors import ContractRevert, LedgerError, NodeUnavailable

PROBLEM_BASE = "urn:medledger:problem:"

#: where each relayable operation is submitted (``{contentRoot}`` is filled from the arguments)
WRITE_PATHS: dict[str, str] = {
    "grantRole": "/roles",
    "revokeRole": "/roles",
    "requestAccess": "/access-requests",
    "approveAccess": "/access-requests/decisions",
    "denyAccess": "/access-requests/decisions",
    "revokeAccess": "/access-requests/decisions",
    "overrideEmbargo": "/access-requests/decisions",
    "recordUse": "/uses",
    "suspendDataset": "/suspensions",
    "reinstateDataset": "/suspensions",
    "suspendUser": "/suspensions",
    "reinstateUser": "/suspensions",
    "setSharing": "/datasets/{contentRoot}/status",
    "deprecateDataset": "/datasets/{contentRoot}/status",
    "retractDataset": "/datasets/{contentRoot}/status",
}


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


class ServiceClient:
    """The ledger service over HTTP. ``wait_timeout`` bounds waiting for a relayed request."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 30.0,
        wait_timeout: float = 120.0,
        poll_interval: float = 0.05,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.wait_timeout = wait_timeout
        self.poll_interval = poll_interval
        self.http = httpx.Client(base_url=self.base_url, timeout=timeout, transport=transport)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> ServiceClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing ------------------------------------------------------------------------------

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self.http.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise NodeUnavailable(
                f"the service at {self.base_url} did not answer {method} {path} in time",
                hint="check that it is running and not overloaded",
            ) from exc
        except httpx.TransportError as exc:
            raise NodeUnavailable(
                f"the service at {self.base_url} is not reachable ({type(exc).__name__})",
                hint="start it (medledger serve) or check the --service URL",
            ) from exc

    def request(self, method: str, path: str, *, ok: Sequence[int] = (), **kwargs: Any) -> Any:
        """One call; the decoded JSON body, or the problem raised as a library exception.
        Statuses in ``ok`` are returned even when they are errors (e.g. 503 from /ready)."""
        response = self._send(method, path, **kwargs)
        body: Any
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.is_success or response.status_code in ok:
            return body
        if isinstance(body, Mapping):
            raise error_from_problem(body, response.status_code)
        text = response.text.strip()[:300]
        raise ServiceError(
            f"{method} {path} answered HTTP {response.status_code}: {text or response.reason_phrase}",
            code=f"http-{response.status_code}",
        )

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, json: Any = None, **kwargs: Any) -> Any:
        return self.request("POST", path, json=json, **kwargs)

    # -- relayed requests ----------------------------------------------------------------------

    def ticket(self, ticket_id: str) -> dict[str, Any]:
        out: dict[str, Any] = self.get(f"/relay/{ticket_id}")
        return out

    def wait_ticket(self, ticket_id: str, timeout: float | None = None) -> dict[str, Any]:
        """Poll until the request is mined (returned) or failed (its error raised)."""
        limit = self.wait_timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        delay = self.poll_interval
        while True:
            ticket = self.ticket(ticket_id)
            if ticket.get("status") == "mined":
                return ticket
            if ticket.get("status") == "failed":
                error = ticket.get("error") or {"type": "transaction-failed", "message": "the relayed request failed"}
                raise error_from_problem(error)
            if time.monotonic() > deadline:
                raise TicketTimeout(
                    f"relayed request {ticket_id} is still {ticket.get('status')} after {limit:g} s",
                    hint=f"check it later with: medledger --service {self.base_url} relay status {ticket_id}",
                )
            time.sleep(delay)
            delay = min(delay * 1.5, 0.5)

    def _settle(self, ticket: dict[str, Any], wait: bool) -> dict[str, Any]:
        return self.wait_ticket(str(ticket["id"])) if wait else ticket

    @staticmethod
    def sign_prepared(prepared: Mapping[str, Any], actor: LocalAccount) -> dict[str, Any]:
        """The prepared (unsigned) forward request with the actor's signature of its typed data."""
        signature = typed_data.sign(dict(prepared["typed_data"]), actor.key)
        return {**dict(prepared["request"]), "signature": "0x" + signature.hex()}

    def operations(self) -> dict[str, Any]:
        out: dict[str, Any] = self.get("/relay/operations")
        return out

    def nonce(self, address: str) -> dict[str, Any]:
        out: dict[str, Any] = self.get(f"/relay/nonce/{address}")
        return out

    def prepare(
        self, operation: str, sender: str, args: Mapping[str, Any], *, deadline: int | None = None
    ) -> dict[str, Any]:
        """The typed data the ``sender`` signs for ``operation`` (POST /relay/prepare)."""
        body: dict[str, Any] = {"operation": operation, "from": sender, "args": dict(args)}
        if deadline is not None:
            body["deadline"] = deadline
        out: dict[str, Any] = self.post("/relay/prepare", json=body)
        return out

    def submit(self, operation: str, signed_request: Mapping[str, Any], args: Mapping[str, Any]) -> dict[str, Any]:
        """Post a signed forward request to the resource that accepts ``operation``; the ticket."""
        path = WRITE_PATHS.get(operation, "/relay/forward")
        if "{contentRoot}" in path:
            path = path.format(contentRoot=args["contentRoot"])
        out: dict[str, Any] = self.post(path, json={"request": dict(signed_request)})
        return out

    def write(
        self, actor: LocalAccount, operation: str, args: Mapping[str, Any], *, wait: bool = True
    ) -> dict[str, Any]:
        """Prepare, sign locally, submit and (with ``wait``) wait until mined: the ticket."""
        prepared = self.prepare(operation, actor.address, args)
        ticket = self.submit(operation, self.sign_prepared(prepared, actor), args)
        settled = self._settle(ticket, wait)
        settled["to"] = prepared["request"].get("to")
        return settled

    def prepare_dataset(
        self, metadata: Mapping[str, Any], *, subject_root: str | None = None, embargo_end: int = 0
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"metadata": dict(metadata), "embargo_end": embargo_end}
        if subject_root is not None:
            body["subject_root"] = subject_root
        out: dict[str, Any] = self.post("/datasets/prepare", json=body)
        return out

    def register_dataset(
        self,
        actor: LocalAccount,
        metadata: Mapping[str, Any],
        *,
        subject_root: str | None = None,
        embargo_end: int = 0,
        wait: bool = True,
    ) -> dict[str, Any]:
        """Register a dataset: the service pins the metadata and queues the holder's signed request.
        Returns ``{content_root, metadata_cid, ticket}``."""
        prepared = self.prepare_dataset(metadata, subject_root=subject_root, embargo_end=embargo_end)
        body: dict[str, Any] = {
            "metadata": dict(metadata),
            "embargo_end": embargo_end,
            "request": self.sign_prepared(prepared, actor),
        }
        if subject_root is not None:
            body["subject_root"] = subject_root
        answer: dict[str, Any] = self.post("/datasets", json=body)
        answer["ticket"] = self._settle(answer["ticket"], wait)
        return answer

    def prepare_consent(self, body: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = self.post("/consents/prepare", json=dict(body))
        return out

    def consent(self, signer: LocalAccount, body: Mapping[str, Any], *, wait: bool = True) -> dict[str, Any]:
        """A consent message (grant, renew, withdraw, delegate appointment or revocation) signed
        here by the subject or its delegate: the ticket. ``body`` is what /consents/prepare takes."""
        prepared = self.prepare_consent(body)
        signature = typed_data.sign(prepared["typed_data"], signer.key)
        signed = {"kind": prepared["kind"], "message": prepared["message"], "signature": "0x" + signature.hex()}
        ticket: dict[str, Any] = self.post("/consents", json=signed)
        settled = self._settle(ticket, wait)
        settled["message"] = prepared["message"]
        return settled

    # -- reads ---------------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        out: dict[str, Any] = self.get("/health")
        return out

    def ready(self) -> dict[str, Any]:
        """The readiness report (also when the service answers 503: ``status`` says not-ready)."""
        out: dict[str, Any] = self.get("/ready", ok=(503,))
        return out

    def dataset(self, root: str) -> dict[str, Any]:
        out: dict[str, Any] = self.get(f"/datasets/{root}")
        return out

    def versions(self, root: str) -> dict[str, Any]:
        out: dict[str, Any] = self.get(f"/datasets/{root}/versions")
        return out

    def stats(self, root: str) -> dict[str, Any]:
        out: dict[str, Any] = self.get(f"/datasets/{root}/stats")
        return out

    def verify_dataset(self, root: str) -> dict[str, Any]:
        out: dict[str, Any] = self.get(f"/verify/datasets/{root}")
        return out

    def verify_hash(self, sha256: str, size: int, datasets: Sequence[str] | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"sha256": sha256, "size": size}
        if datasets:
            body["datasets"] = list(datasets)
        out: dict[str, Any] = self.post("/verify/hash", json=body)
        return out

    def lineage(self, root: str) -> dict[str, Any]:
        out: dict[str, Any] = self.get(f"/lineage/{root}")
        return out

    def lineage_verification(self, root: str) -> dict[str, Any]:
        out: dict[str, Any] = self.get(f"/lineage/{root}/verification")
        return out

    def prov(self, root: str) -> dict[str, Any]:
        out: dict[str, Any] = self.get(f"/lineage/{root}/prov")
        return out

    def openlineage(self, root: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = self.get(f"/lineage/{root}/openlineage")
        return out

    def consents(self, subject: str) -> Any:
        return self.get("/consents", params={"subject": subject})

    def consent_check(
        self,
        subject: str,
        dataset: str,
        category: str,
        *,
        attributes: Sequence[str] = (),
        disease: str | None = None,
        grantee: str | None = None,
    ) -> dict[str, Any]:
        params: dict[str, Any] = {"subject": subject, "dataset": dataset, "category": category}
        if attributes:
            params["attributes"] = list(attributes)
        if disease:
            params["disease"] = disease
        if grantee:
            params["grantee"] = grantee
        out: dict[str, Any] = self.get("/consents/check", params=params)
        return out

    def consent_history(self, consent_id: str) -> Any:
        return self.get(f"/consents/{consent_id}/history")

    def consent_fhir(self, consent_id: str) -> dict[str, Any]:
        out: dict[str, Any] = self.get(f"/consents/{consent_id}/fhir")
        return out

    def dataset_trail(self, root: str, *, limit: int = 500, after: int | None = None) -> Any:
        """Every event touching a dataset; ``after`` is the previous page's ``next_cursor``."""
        params: dict[str, Any] = {"limit": limit}
        if after is not None:
            params["after"] = after
        return self.get(f"/audit/datasets/{root}", params=params)

    def user_trail(self, address: str, *, limit: int = 500, after: int | None = None) -> Any:
        """Every event touching an account; ``after`` is the previous page's ``next_cursor``."""
        params: dict[str, Any] = {"limit": limit}
        if after is not None:
            params["after"] = after
        return self.get(f"/audit/users/{address}", params=params)

    def withdrawal_impact(self, subject: str, subject_lists: Mapping[str, Sequence[str]]) -> dict[str, Any]:
        body = {"subject_lists": {k: list(v) for k, v in subject_lists.items()}}
        out: dict[str, Any] = self.post(f"/audit/subjects/{subject}/withdrawal-impact", json=body)
        return out
