"""Content identifiers, computed without an IPFS node.

A document is stored as one raw block (CIDv1, codec raw, sha2-256), so its CID is a pure function
of ``sha256(bytes)``: the chain stores only that digest and anyone can rebuild the CID
(:func:`cid_from_digest`) or check bytes against a CID (:func:`content_matches`, with aleph-cid,
independently of this module's own code). CIDs compare decoded, never as strings (js-ipfs prints
base58btc, Kubo base32).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

import aleph_cid

from ledger.core.errors import InvalidInput

#: one raw block holds at most 1 MiB (the largest chunk Kubo accepts)
MAX_DOCUMENT_SIZE = 1 << 20
CODEC_RAW = 0x55
CODEC_DAG_PB = 0x70
HASH_SHA2_256 = 0x12


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


