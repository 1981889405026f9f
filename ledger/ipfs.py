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

import base64
import binascii
import contextlib
import hashlib
import threading
import warnings
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, overload
from urllib.parse import urlsplit

import aleph_cid
import ipfshttpclient
import rfc8785

from .errors import (
    DocumentTooLarge,
    InvalidInput,
    IpfsError,
    LedgerError,
    MetadataIntegrityError,
    MetadataNotFound,
    NodeUnavailable,
)

if TYPE_CHECKING:
    from .config import Settings
    from .metadata import CanonicalDocument

# ipfshttpclient 0.7 passes urllib3 an argument it deprecated (strict=True); the warning is noise for users.
warnings.filterwarnings("ignore", message="The 'strict' parameter is no longer needed", category=FutureWarning)

MAX_DOCUMENT_SIZE = 1 << 20
CODEC_RAW = 0x55
CODEC_DAG_PB = 0x70
HASH_SHA2_256 = 0x12

#: add options that make a document of up to 1 MiB one pinned raw block (ipfshttpclient's own add()
#: forgets raw-leaves when given cid_version, so the options are passed as the API spells them)
_ADD_OPTIONS = {"cid-version": 1, "raw-leaves": True, "chunker": f"size-{MAX_DOCUMENT_SIZE}", "pin": True}

D = TypeVar("D", bound="CanonicalDocument")

# ---------------------------------------------------------------------------------------------
# CIDs
# ---------------------------------------------------------------------------------------------

_B58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {c: i for i, c in enumerate(_B58_ALPHABET)}


def _b58decode(text: str) -> bytes:
    number = 0
    for char in text:
        try:
            number = number * 58 + _B58_INDEX[char]
        except KeyError as exc:
            raise InvalidInput(f"invalid base58 character {char!r}") from exc
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    leading = len(text) - len(text.lstrip("1"))
    return b"\x00" * leading + body


def _varint(data: bytes, offset: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if offset >= len(data) or shift > 63:
            raise InvalidInput("truncated varint in CID")
        byte = data[offset]
        offset += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, offset


def _uvarint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


@dataclass(frozen=True)
class Cid:
    """A decoded CID; equality ignores how it was printed (base32, base58btc, ...)."""

    version: int
    codec: int
    hash_code: int
    digest: bytes

    @classmethod
    def parse(cls, text: str) -> Cid:
        """Decode a CIDv0 (``Qm...``) or a CIDv1 in base32 (``b...``), base58btc (``z...``) or base16."""
        text = text.strip()
        if text.startswith("/ipfs/"):
            text = text[len("/ipfs/") :]
        if not text:
            raise InvalidInput("empty CID")
        try:
            if len(text) == 46 and text.startswith("Qm"):
                raw = _b58decode(text)
                if raw[:2] != b"\x12\x20" or len(raw) != 34:
                    raise InvalidInput(f"{text} is not a CIDv0")
                return cls(0, CODEC_DAG_PB, HASH_SHA2_256, raw[2:])
            prefix, body = text[0], text[1:]
            if prefix in "bB":
                raw = base64.b32decode(body.upper() + "=" * (-len(body) % 8))
            elif prefix == "z":
                raw = _b58decode(body)
            elif prefix in "fF":
                raw = bytes.fromhex(body)
            else:
                raise InvalidInput(f"{text!r}: unsupported multibase prefix {prefix!r}")
        except (ValueError, binascii.Error) as exc:
            raise InvalidInput(f"{text!r} is not a CID: {exc}") from exc
        version, offset = _varint(raw, 0)
        if version != 1:
            raise InvalidInput(f"{text!r}: unsupported CID version {version}")
        codec, offset = _varint(raw, offset)
        hash_code, offset = _varint(raw, offset)
        length, offset = _varint(raw, offset)
        digest = raw[offset:]
        if len(digest) != length:
            raise InvalidInput(f"{text!r}: multihash length {length} does not match its {len(digest)} bytes")
        return cls(1, codec, hash_code, digest)

    @property
    def is_raw_sha256(self) -> bool:
        return (
            self.version == 1 and self.codec == CODEC_RAW and self.hash_code == HASH_SHA2_256 and len(self.digest) == 32
        )

    def __str__(self) -> str:
        if self.version == 0:
            return _b58encode(b"\x12\x20" + self.digest)
        raw = b"\x01" + _uvarint(self.codec) + _uvarint(self.hash_code) + _uvarint(len(self.digest)) + self.digest
        return "b" + base64.b32encode(raw).decode("ascii").lower().rstrip("=")


def _b58encode(data: bytes) -> str:
    number = int.from_bytes(data, "big")
    out = []
    while number:
        number, rest = divmod(number, 58)
        out.append(_B58_ALPHABET[rest])
    leading = len(data) - len(data.lstrip(b"\x00"))
    return "1" * leading + "".join(reversed(out))


def parse_cid(cid: str | Cid) -> Cid:
    return cid if isinstance(cid, Cid) else Cid.parse(cid)


def same_cid(a: str | Cid, b: str | Cid) -> bool:
    """Whether two CIDs name the same content address, however each is printed."""
    return parse_cid(a) == parse_cid(b)


def cid_from_digest(digest: bytes | str) -> str:
    """The CIDv1 (raw, sha2-256, base32) of a document from the 32-byte digest the chain stores."""
    if isinstance(digest, str):
        digest = bytes.fromhex(digest.removeprefix("0x"))
    if len(digest) != 32:
        raise InvalidInput(f"a sha2-256 digest has 32 bytes, got {len(digest)}")
    return str(Cid(1, CODEC_RAW, HASH_SHA2_256, bytes(digest)))


def digest_of(cid: str | Cid) -> bytes:
    """The 32-byte digest the chain stores for a document CID. Only raw sha2-256 CIDv1 qualify: for
    them the digest alone determines the CID (:func:`cid_from_digest` is the inverse)."""
    parsed = parse_cid(cid)
    if not parsed.is_raw_sha256:
        raise InvalidInput(
            f"{cid} is not a raw-block sha2-256 CIDv1; the chain can only reference documents stored as one raw block",
            hint="store the document with IpfsStore.put",
        )
    return parsed.digest


def cid_of(data: bytes) -> str:
    """The CID :meth:`IpfsStore.put` gives ``data``: CIDv1 raw of sha256(data)."""
    return cid_from_digest(hashlib.sha256(data).digest())


def content_matches(data: bytes, cid: str | Cid) -> bool:
    """Recompute the CID of ``data`` in the flavour of ``cid`` with aleph-cid (independent of the node,
    and of this module's own CID code) and compare decoded. Raw CIDs are checked as one block; other
    flavours (CIDv0, dag-pb) as Kubo's default import would build them."""
    expected = parse_cid(cid)
    try:
        hasher = aleph_cid.CidHasher.for_expected(str(expected))
    except ValueError as exc:
        raise InvalidInput(f"aleph-cid cannot verify CIDs like {expected}: {exc}") from exc
    hasher.update(data)
    return parse_cid(hasher.finalize()) == expected


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
        import json

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
