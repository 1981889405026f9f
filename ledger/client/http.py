"""A client of the ledger service that keeps keys local: it asks the service for the EIP-712 typed
data of a write, signs it here with the actor's key, submits the signed request and (optionally)
waits for the relayed outcome. The CLI, the demo and the tests use it; it runs over its own
``httpx.Client`` or an injected client with the same request interface (FastAPI's TestClient), so
the same calls reach a service process or an app in the caller's own process.

Errors come back as the library's own exceptions (see :mod:`ledger.client.problems`): a problem
document becomes the :mod:`ledger.core.errors` class its ``type`` names, with ``exc.problem`` and
``exc.status`` kept; a failed relayed request raises the same way from the error the ticket carries.
A service that does not answer raises :class:`~ledger.core.errors.NodeUnavailable`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

import httpx
from eth_account.signers.local import LocalAccount

from ledger.chain import typed_data
from ledger.client.problems import (
    PROBLEM_BASE,
    ServiceError,
    TicketTimeout,
    error_from_problem,
    problem_of,
    status_of,
)
from ledger.core.errors import LedgerError, NodeUnavailable
from ledger.relay.calls import FORWARD, OPERATIONS, REGISTRATION

__all__ = [
    "PROBLEM_BASE",
    "WRITE_PATHS",
    "ServiceClient",
    "ServiceError",
    "TicketTimeout",
    "error_from_problem",
    "problem_of",
    "status_of",
]

#: where each relayable operation is submitted: its route, as the relay's operation table states it
#: (``{contentRoot}`` is filled from the arguments); a registration goes through
#: :meth:`ServiceClient.register_dataset`, with its metadata
WRITE_PATHS: dict[str, str] = {name: op.route for name, op in OPERATIONS.items() if op.route != REGISTRATION}


class HttpResponse(Protocol):
    """What the client reads of an answer (httpx's Response, or the test client's)."""

    @property
    def status_code(self) -> int: ...

    @property
    def is_success(self) -> bool: ...

    @property
    def text(self) -> str: ...

    @property
    def reason_phrase(self) -> str: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    def json(self, **kwargs: Any) -> Any: ...


class HttpClient(Protocol):
    """An HTTP client bound to the service's base URL: ``httpx.Client``, or FastAPI's TestClient
    (an app served in the caller's process)."""

    @property
    def base_url(self) -> Any: ...

    def request(self, method: str, url: Any, *args: Any, **kwargs: Any) -> HttpResponse: ...

    def close(self) -> None: ...


class ServiceClient:
    """The ledger service over HTTP. ``wait_timeout`` bounds waiting for a relayed request.

    Give ``base_url`` (the client opens and closes its own connection pool) or ``http``, an
    ``httpx.Client`` whose ``base_url`` points at the service (a TestClient in the tests); an
    injected client is the caller's to close."""

    def __init__(
        self,
        base_url: str | None = None,
        *,
        http: HttpClient | None = None,
        timeout: float = 30.0,
        wait_timeout: float = 120.0,
        poll_interval: float = 0.05,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if http is None and base_url is None:
            raise ValueError("give the service's base_url or an http client")
        self.wait_timeout = wait_timeout
        self.poll_interval = poll_interval
        self._owns_http = http is None
        self.http: HttpClient
        if http is None:
            assert base_url is not None
            self.base_url = base_url.rstrip("/")
            self.http = httpx.Client(base_url=self.base_url, timeout=timeout, transport=transport)
        else:
            self.base_url = base_url.rstrip("/") if base_url else str(http.base_url).rstrip("/")
            self.http = http

    def close(self) -> None:
        if self._owns_http:
            self.http.close()

    def __enter__(self) -> ServiceClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing ------------------------------------------------------------------------------

    def _send(self, method: str, path: str, **kwargs: Any) -> HttpResponse:
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

    def exists(self, path: str) -> bool:
        """Whether ``GET path`` finds the resource (False on 404; other problems raise)."""
        try:
            self.get(path)
        except LedgerError as exc:
            if status_of(exc) == 404:
                return False
            raise
        return True

    def wait_ready(self, timeout: float = 60.0) -> dict[str, Any]:
        """Poll /ready until the service answers 200; the readiness report."""
        deadline = time.monotonic() + timeout
        last: str = "no answer"
        while True:
            try:
                report = self.ready()
                if report.get("status") == "ready":
                    return report
                last = str(report)[:300]
            except NodeUnavailable as exc:
                last = exc.message
            if time.monotonic() > deadline:
                raise NodeUnavailable(
                    f"the service at {self.base_url} is not ready after {timeout:g} s: {last}",
                    hint="check its log: the chain, the IPFS node or the indexer may be down",
                )
            time.sleep(0.3)

    def head_block(self) -> int:
        """The chain's latest block number, as the service sees it."""
        return int(self.ready()["chain"]["block"])

    def chain_time(self) -> int | None:
        """The chain's time as the service reports it in /ready, if it does."""
        value = self.ready().get("chain", {}).get("timestamp")
        return int(value) if isinstance(value, int | str) and str(value).isdigit() else None

    # -- relayed requests ----------------------------------------------------------------------

    def ticket(self, ticket_id: str) -> dict[str, Any]:
        out: dict[str, Any] = self.get(f"/relay/{ticket_id}")
        return out

    def settle(self, ticket_ids: Iterable[str], timeout: float | None = None) -> dict[str, dict[str, Any]]:
        """Poll until every ticket is mined or failed; the settled tickets by id (a failed one is
        returned, not raised)."""
        limit = self.wait_timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        pending = list(dict.fromkeys(ticket_ids))
        settled: dict[str, dict[str, Any]] = {}
        last: dict[str, Any] = {}
        delay = self.poll_interval
        while pending:
            still: list[str] = []
            for ticket_id in pending:
                ticket = self.ticket(ticket_id)
                if ticket.get("status") in ("mined", "failed"):
                    settled[ticket_id] = ticket
                else:
                    still.append(ticket_id)
                    last[ticket_id] = ticket.get("status")
            pending = still
            if not pending:
                break
            if time.monotonic() > deadline:
                first = pending[0]
                what = f"relayed request {first}"
                if len(pending) > 1:
                    what = f"{len(pending)} relayed requests (e.g. {first})"
                raise TicketTimeout(
                    f"{what} is still {last.get(first)} after {limit:g} s",
                    hint=f"check it later with: medledger --service {self.base_url} relay status {first}",
                )
            time.sleep(delay)
            delay = min(delay * 1.5, 0.5)
        return settled

    def wait_ticket(self, ticket_id: str, timeout: float | None = None) -> dict[str, Any]:
        """Poll until the request is mined (returned) or failed (its error raised)."""
        ticket = self.settle([ticket_id], timeout)[ticket_id]
        if ticket.get("status") == "failed":
            error = ticket.get("error") or {"type": "transaction-failed", "message": "the relayed request failed"}
            raise error_from_problem(error)
        return ticket

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
        op = OPERATIONS.get(operation)
        path = op.path(args) if op is not None and operation in WRITE_PATHS else FORWARD
        out: dict[str, Any] = self.post(path, json={"request": dict(signed_request)})
        return out

    def send(
        self, actor: LocalAccount, operation: str, args: Mapping[str, Any], *, attempts: int = 1
    ) -> dict[str, Any]:
        """Prepare, sign locally and submit (not waiting): the queued ticket, with ``to`` (the
        contract called). With ``attempts`` > 1, a nonce the service no longer expects (another
        request of the same signer settled meanwhile) is fetched again and signed again, as the
        problem's hint says."""
        for attempt in range(1, attempts + 1):
            prepared = self.prepare(operation, actor.address, args)
            try:
                ticket = self.submit(operation, self.sign_prepared(prepared, actor), args)
            except LedgerError as exc:
                stale = status_of(exc) == 422 and "nonce" in exc.message
                if not stale or attempt == attempts:
                    raise
                time.sleep(0.1)
                continue
            ticket["to"] = prepared["request"].get("to")
            return ticket
        raise AssertionError("unreachable: the last attempt returns or raises")

    def write(
        self, actor: LocalAccount, operation: str, args: Mapping[str, Any], *, wait: bool = True, attempts: int = 1
    ) -> dict[str, Any]:
        """Prepare, sign locally, submit and (with ``wait``) wait until mined: the ticket."""
        ticket = self.send(actor, operation, args, attempts=attempts)
        settled = self._settle(ticket, wait)
        settled["to"] = ticket["to"]
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
        here by the subject or its delegate: the ticket (with the signed ``message``). ``body`` is
        what /consents/prepare takes."""
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

    def access_request(self, request_id: int) -> dict[str, Any]:
        out: dict[str, Any] = self.get(f"/access-requests/{request_id}")
        return out

    def account(self, address: str) -> dict[str, Any]:
        """An account's roles and whether it is suspended."""
        out: dict[str, Any] = self.get(f"/accounts/{address}")
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
