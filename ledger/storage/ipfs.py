"""Metadata documents on IPFS, checked by their CID.

Why it works the way it does:

- A document is stored as **one raw block** (CIDv1, codec raw, sha2-256: ``bafkrei...``). Its CID is
  then a pure function of ``sha256(bytes)``, so the chain stores only that 32-byte digest and anyone can
  rebuild the CID (:func:`cid_from_digest`) or check bytes against it without an IPFS node. One block
  holds at most 1 MiB (the largest chunk Kubo accepts), so larger documents are refused.
  Storing uses ``add`` with a 1 MiB chunker and raw leaves, which Kubo and js-ipfs both answer with
  the raw block's CID and pin.
- Everything fetched is verified: the CID is recomputed locally with ``aleph-cid`` and compared
  *decoded* (js-ipfs prints CIDv1 in base58btc, Kubo in base32), and a mismatch is an integrity error,
  never a silent success.
- Nothing hangs: js-ipfs waits forever for a block it does not have, so every fetch carries both the
  API's own ``timeout`` argument and a client-side read timeout a little longer; a daemon that is down
  fails at connect time with :class:`NodeUnavailable`.
- Each thread gets its own HTTP session (``requests`` sessions are not thread-safe), so
  :meth:`IpfsStore.get_many` can fetch in parallel over kept-alive connections.
"""

from __future__ import annotations

import contextlib
import json
import threading
import warnings
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar, overload
from urllib.parse import urlsplit

import ipfshttpclient
import rfc8785

from ledger.content.cid import (
    MAX_DOCUMENT_SIZE,
    Cid,
    cid_of,
    content_matches,
    parse_cid,
    same_cid,
)
from ledger.core.errors import (
    DocumentTooLarge,
    InvalidInput,
    IpfsError,
    LedgerError,
    MetadataIntegrityError,
    MetadataNotFound,
    NodeUnavailable,
)

if TYPE_CHECKING:
    from ledger.content.metadata import CanonicalDocument
    from ledger.core.config import Settings

# ipfshttpclient 0.7 passes urllib3 an argument it deprecated (strict=True); the warning is noise for users.
warnings.filterwarnings("ignore", message="The 'strict' parameter is no longer needed", category=FutureWarning)


#: add options that make a document of up to 1 MiB one pinned raw block (ipfshttpclient's own add()
#: forgets raw-leaves when given cid_version, so the options are passed as the API spells them)
_ADD_OPTIONS = {"cid-version": 1, "raw-leaves": True, "chunker": f"size-{MAX_DOCUMENT_SIZE}", "pin": True}

D = TypeVar("D", bound="CanonicalDocument")

# ---------------------------------------------------------------------------------------------
# the store
# ---------------------------------------------------------------------------------------------


def to_multiaddr(address: str) -> str:
    """Accept the API as a multiaddr (``/ip4/127.0.0.1/tcp/5002/http``) or a URL (``http://host:5002``)."""
    if address.startswith("/"):
        return address
    parts = urlsplit(address)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(f"IPFS API {address!r} is neither a multiaddr nor an http(s) URL")
    host = parts.hostname
    kind = "ip6" if ":" in host else ("ip4" if host.replace(".", "").isdigit() else "dns")
    port = parts.port or (443 if parts.scheme == "https" else 5001)
    return f"/{kind}/{host}/tcp/{port}/{parts.scheme}"


def _api_duration(seconds: float) -> str:
    return f"{max(1, round(seconds * 1000))}ms"


def _is_timeout_message(message: str) -> bool:
    text = message.lower()
    return "timed out" in text or "timeout" in text or "deadline exceeded" in text


class IpfsStore:
    """Put and get documents on an IPFS node's HTTP RPC API (js-ipfs or Kubo).

    ``timeout`` bounds every fetch (seconds); connecting fails after at most ``connect_timeout``.
    Use as a context manager or call :meth:`close` to release the HTTP sessions.
    """

    def __init__(
        self,
        api_multiaddr: str = "/ip4/127.0.0.1/tcp/5002/http",
        timeout: float = 10.0,
        *,
        connect_timeout: float = 3.0,
        workers: int = 8,
    ) -> None:
        if timeout <= 0:
            raise InvalidInput("IPFS timeout must be positive")
        self.api = to_multiaddr(api_multiaddr)
        self.timeout = timeout
        self.connect_timeout = min(connect_timeout, timeout)
        self.workers = max(1, workers)
        self._local = threading.local()
        self._clients: list[Any] = []
        self._lock = threading.Lock()
        self._closed = False
        self._pool: ThreadPoolExecutor | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> IpfsStore:
        return cls(settings.ipfs_api, settings.ipfs_timeout)

    # -- session handling ---------------------------------------------------------------------

    def _client(self) -> Any:
        if self._closed:
            raise LedgerError("this IpfsStore is closed")
        client = getattr(self._local, "client", None)
        if client is None:
            try:
                # Client(), not connect(): connect() refuses every daemon version outside 0.4.23..0.8.0
                client = ipfshttpclient.Client(
                    self.api, session=True, timeout=(self.connect_timeout, self.timeout + 5.0)
                )
            except ipfshttpclient.exceptions.AddressError as exc:
                raise InvalidInput(f"IPFS API address {self.api!r} is invalid: {exc}") from exc
            self._local.client = client
            with self._lock:
                self._clients.append(client)
        return client

    def close(self) -> None:
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)
        with self._lock:
            clients, self._clients = self._clients, []
        for client in clients:
            # closing a broken session must not mask the caller's error
            with contextlib.suppress(Exception):
                client.close()

    def __enter__(self) -> IpfsStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _unavailable(self, exc: Exception) -> NodeUnavailable:
        return NodeUnavailable(
            f"IPFS node at {self.api} is not reachable ({type(exc).__name__})",
            hint="start it (medledger node start) or set MEDLEDGER_IPFS_API",
        )

    # -- node ---------------------------------------------------------------------------------

    def node_info(self) -> dict[str, Any]:
        """The daemon's ``version`` answer; raises :class:`NodeUnavailable` if it does not answer."""
        try:
            answer = self._client().version(timeout=(self.connect_timeout, self.timeout))
        except ipfshttpclient.exceptions.ConnectionError as exc:
            raise self._unavailable(exc) from exc
        except ipfshttpclient.exceptions.TimeoutError as exc:
            raise NodeUnavailable(f"IPFS node at {self.api} did not answer within {self.timeout:g} s") from exc
        except ipfshttpclient.exceptions.Error as exc:
            raise IpfsError(f"IPFS node at {self.api} refused a version request: {exc}") from exc
        return dict(answer)

    def is_available(self) -> bool:
        try:
            self.node_info()
        except LedgerError:
            return False
        return True

    # -- writing ------------------------------------------------------------------------------

    def put(self, data: bytes) -> str:
        """Store ``data`` as one pinned raw block; returns its CID (base32 CIDv1, ``bafkrei...``)."""
        if not isinstance(data, bytes | bytearray | memoryview):
            raise InvalidInput(f"put() takes bytes, got {type(data).__name__}")
        data = bytes(data)
        if len(data) > MAX_DOCUMENT_SIZE:
            raise DocumentTooLarge(
                f"document is {len(data)} bytes; at most {MAX_DOCUMENT_SIZE} (1 MiB) are stored as one IPFS block",
                hint="keep large content (data files) off IPFS metadata; reference it by content root",
            )
        expected = cid_of(data)
        try:
            answer = self._client().add_bytes(data, opts=_ADD_OPTIONS, timeout=(self.connect_timeout, self.timeout))
        except ipfshttpclient.exceptions.ConnectionError as exc:
            raise self._unavailable(exc) from exc
        except ipfshttpclient.exceptions.TimeoutError as exc:
            raise NodeUnavailable(
                f"IPFS node at {self.api} did not store the document within {self.timeout:g} s"
            ) from exc
        except ipfshttpclient.exceptions.Error as exc:
            raise IpfsError(f"IPFS node at {self.api} refused to store the document: {exc}") from exc
        stored = answer if isinstance(answer, str) else dict(answer).get("Hash", "")
        if not same_cid(stored, expected):
            raise MetadataIntegrityError(
                f"IPFS node stored the document as {stored}, expected {expected}",
                hint="the node does not honour raw-leaves/chunker options; use Kubo or js-ipfs",
            )
        return expected

    @overload
    def put_json(self, document: CanonicalDocument) -> str: ...

    @overload
    def put_json(self, document: Mapping[str, Any] | list[Any]) -> str: ...

    def put_json(self, document: CanonicalDocument | Mapping[str, Any] | list[Any]) -> str:
        """Store a model (or plain JSON) in its canonical RFC 8785 serialisation."""
        if hasattr(document, "to_canonical_bytes"):
            return self.put(document.to_canonical_bytes())
        try:
            return self.put(rfc8785.dumps(document))
        except rfc8785.CanonicalizationError as exc:
            raise InvalidInput(f"value cannot be serialised as canonical JSON: {exc}") from exc

    # -- reading ------------------------------------------------------------------------------

    def get(self, cid: str | Cid, *, timeout: float | None = None) -> bytes:
        """Fetch and verify a document. :class:`MetadataNotFound` if the node cannot produce it within
        the timeout, :class:`MetadataIntegrityError` if what it returns does not hash to ``cid``."""
        parsed = parse_cid(cid)
        wait = timeout if timeout is not None else self.timeout
        opts = {"timeout": _api_duration(wait), "length": MAX_DOCUMENT_SIZE + 1}
        try:
            data = self._client().cat(str(parsed), opts=opts, timeout=(self.connect_timeout, wait + 2.0))
        except ipfshttpclient.exceptions.ConnectionError as exc:
            raise self._unavailable(exc) from exc
        except ipfshttpclient.exceptions.TimeoutError as exc:
            raise MetadataNotFound(f"{parsed} was not found on the IPFS node within {wait:g} s") from exc
        except ipfshttpclient.exceptions.ErrorResponse as exc:
            if _is_timeout_message(str(exc)):
                raise MetadataNotFound(f"{parsed} was not found on the IPFS node within {wait:g} s") from exc
            raise IpfsError(f"IPFS node could not return {parsed}: {exc}") from exc
        except ipfshttpclient.exceptions.Error as exc:
            raise IpfsError(f"IPFS node could not return {parsed}: {exc}") from exc
        if len(data) > MAX_DOCUMENT_SIZE:
            raise DocumentTooLarge(f"{parsed} is larger than a document may be ({MAX_DOCUMENT_SIZE} bytes)")
        if not content_matches(data, parsed):
            raise MetadataIntegrityError(
                f"content returned for {parsed} does not hash to that CID",
                hint="the IPFS node's copy is corrupt or tampered with; fetch it from another node",
            )
        return bytes(data)

    @overload
    def get_json(self, cid: str | Cid, model: type[D], *, timeout: float | None = None) -> D: ...

    @overload
    def get_json(self, cid: str | Cid, model: None = None, *, timeout: float | None = None) -> Any: ...

    def get_json(self, cid: str | Cid, model: type[D] | None = None, *, timeout: float | None = None) -> D | Any:
        """Fetch, verify and parse a document; with ``model``, validate it (and require canonical bytes)."""
        data = self.get(cid, timeout=timeout)
        if model is not None:
            return model.from_bytes(data)
        try:
            return json.loads(data)
        except ValueError as exc:
            raise InvalidInput(f"{cid} is not JSON: {exc}") from exc

    def fetch_many(self, cids: Iterable[str | Cid], *, timeout: float | None = None) -> dict[str, bytes | LedgerError]:
        """Fetch several documents in parallel; each CID (as given) maps to its bytes or to the error
        it raised, so a lineage check can report every node instead of stopping at the first."""
        unique = list(dict.fromkeys(str(c) for c in cids))
        if not unique:
            return {}

        def one(cid: str) -> bytes | LedgerError:
            try:
                return self.get(cid, timeout=timeout)
            except LedgerError as exc:
                return exc

        return dict(zip(unique, self._executor().map(one, unique), strict=True))

    def _executor(self) -> ThreadPoolExecutor:
        # one pool for the store's life: its threads keep their HTTP sessions between calls (a pool per
        # call would open, and leave open until close(), a new connection per thread per call)
        with self._lock:
            if self._closed:
                raise LedgerError("this IpfsStore is closed")
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="ipfs")
            return self._pool

    def get_many(self, cids: Iterable[str | Cid], *, timeout: float | None = None) -> dict[str, bytes]:
        """Like :meth:`fetch_many`, but raise the first error (in the order given) if any fetch failed."""
        results = self.fetch_many(cids, timeout=timeout)
        out: dict[str, bytes] = {}
        for cid, result in results.items():
            if isinstance(result, LedgerError):
                raise result
            out[cid] = result
        return out

    def unpin(self, cid: str | Cid) -> None:
        """Remove this node's pin of a document (the blocks are collected by the node's GC later).
        Used when a write that pinned a document did not anchor it. Unpinning what is not pinned
        is not an error."""
        try:
            self._client().pin.rm(str(parse_cid(cid)), opts={"timeout": _api_duration(self.timeout)})
        except ipfshttpclient.exceptions.ConnectionError as exc:
            raise self._unavailable(exc) from exc
        except ipfshttpclient.exceptions.Error as exc:
            if "not pinned" in str(exc).lower():
                return
            raise IpfsError(f"IPFS node could not unpin {cid}: {exc}") from exc

    def is_pinned(self, cid: str | Cid) -> bool:
        """Whether this node pins the document (directly or recursively)."""
        try:
            answer = self._client().pin.ls(str(parse_cid(cid)), opts={"timeout": _api_duration(self.timeout)})
        except ipfshttpclient.exceptions.ConnectionError as exc:
            raise self._unavailable(exc) from exc
        except ipfshttpclient.exceptions.Error:
            return False
        keys = dict(answer).get("Keys", {}) if answer else {}
        return bool(keys)

    def pin(self, cid: str | Cid) -> None:
        """Pin a document already on the node (e.g. one fetched from another node)."""
        try:
            self._client().pin.add(str(parse_cid(cid)), opts={"timeout": _api_duration(self.timeout)})
        except ipfshttpclient.exceptions.ConnectionError as exc:
            raise self._unavailable(exc) from exc
        except ipfshttpclient.exceptions.TimeoutError as exc:
            raise MetadataNotFound(f"{cid} was not found on the IPFS node within {self.timeout:g} s") from exc
        except ipfshttpclient.exceptions.Error as exc:
            if _is_timeout_message(str(exc)):
                raise MetadataNotFound(f"{cid} was not found on the IPFS node within {self.timeout:g} s") from exc
            raise IpfsError(f"IPFS node could not pin {cid}: {exc}") from exc
