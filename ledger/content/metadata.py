"""The dataset metadata document and the lineage activity description, as stored on IPFS.

Why the models are shaped this way:

- **Versioned and closed.** ``schema_version`` is a literal and unknown fields are refused
  (``extra="forbid"``), so a reader never silently drops something a newer writer meant, and a field
  that could carry personal data cannot be smuggled in under another name.
- **Canonical bytes.** A document is stored as its RFC 8785 (JCS) serialisation, absent optional fields
  omitted, so the same content always has the same bytes, hence the same CID, hence the same 32-byte
  digest on chain. Because the ledger stores documents as single raw IPFS blocks, that digest is simply
  ``sha256(to_canonical_bytes())``: anyone can check it without an IPFS node.
- **No personal data.** There is no field for a person other than pseudonymous Ethereum addresses of
  the holder and the agent; subjects appear only as a count. Free text (titles, descriptions,
  keywords, notes) is screened by :func:`find_personal_data`, a *heuristic* that catches the usual
  slips (an e-mail address, a phone or ID-card number, a date of birth) and proves nothing more.
- Values the chain also stores (classification, tier, parents, holder) use the chain's form, so a
  verifier compares them with the chain record directly.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal, Self

import rfc8785
from eth_utils.address import is_checksum_address, to_checksum_address
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    field_validator,
    model_validator,
)

from ledger.content.cid import cid_from_digest
from ledger.content.files import FileEntry
from ledger.content.merkle import content_tree
from ledger.core.classification import Classification, Tier
from ledger.core.errors import InvalidInput

SCHEMA_VERSION: Literal["1.0"] = "1.0"

# ---------------------------------------------------------------------------------------------
# personal-data heuristic
# ---------------------------------------------------------------------------------------------

_DATE = (
    r"(?:\d{4}\s*[-/.年]\s*\d{1,2}\s*[-/.月]\s*\d{1,2}\s*日?"  # 1980-05-17, 1980年5月17日
    r"|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}"  # 17/05/1980, 05-17-80
    r"|\d{1,2}(?:st|nd|rd|th)?\s+[A-Za-z]{3,9}\.?,?\s+\d{4}"  # 17 May 1980
    r"|[A-Za-z]{3,9}\.?\s+\d{1,2}(?:st|nd|rd|th)?,?\s+\d{4})"  # May 17, 1980
)
_PERSONAL_DATA_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("an e-mail address", re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")),
    (
        "a date of birth",
        re.compile(
            r"(?i)(?:\bd\.?\s?o\.?\s?b\b\.?|\bdate\s+of\s+birth\b|\bbirth\s*date\b|\bbirthday\b|\bborn\s+on\b"
            r"|出生日期|出生年月日?|出生于|生日)\s*[:：=]?\s*" + _DATE
        ),
    ),
    (
        "a mainland China resident ID number",
        re.compile(r"(?<![\dA-Za-z])\d{6}(?:18|19|20)\d{2}[01]\d[0-3]\d{4}[\dXx](?![\dA-Za-z])"),
    ),
    ("a mobile phone number", re.compile(r"(?<![\d.])(?:\+?86[\s-]?)?1[3-9]\d[\s-]?\d{4}[\s-]?\d{4}(?![\d.])")),
    (
        "a phone number",
        re.compile(
            r"(?:\+\d{1,3}[\s.-]?(?:\(\d{1,4}\)[\s.-]?)?\d{2,4}(?:[\s.-]\d{2,4}){1,4}(?!\d)"  # +44 20 7946 0958
            r"|(?<![\d.])\(\d{3}\)\s?\d{3}[\s.-]\d{4}(?!\d)"  # (555) 123-4567
            r"|(?<![\d.])\d{3}[.-]\d{3}[.-]\d{4}(?!\d)"  # 555-123-4567
            r"|(?<![\d.])0\d{2,3}-\d{7,8}(?!\d))"  # 010-12345678 (China landline)
        ),
    ),
    (
        "a patient name",
        re.compile(r"(?i)\b(?:patient|participant|subject)(?:'s)?\s+name\s*[:：]|患者姓名|姓名\s*[:：]"),
    ),
)


def find_personal_data(text: str) -> str | None:
    """What kind of personal data ``text`` seems to contain, or None.

    A heuristic: it recognises e-mail addresses, phone numbers (international, North American, Chinese
    mobile and landline), Chinese resident ID numbers, dates next to a birth keyword ("DOB", "born on",
    "出生日期"...) and "patient name:" labels. Plain dates ("collected 2019-03-01") and numbers in
    ordinary prose pass. Passing the check does not make a text free of personal data.
    """
    for kind, pattern in _PERSONAL_DATA_PATTERNS:
        if pattern.search(text):
            return kind
    return None


def _no_personal_data(text: str) -> str:
    kind = find_personal_data(text)
    if kind is not None:
        raise ValueError(
            f"looks like it contains {kind}; metadata is public and must not carry personal data "
            "(this is a heuristic check: rephrase or remove the value)"
        )
    return text


# ---------------------------------------------------------------------------------------------
# field types
# ---------------------------------------------------------------------------------------------

_BCP47 = re.compile(r"^[A-Za-z]{2,3}(?:-[A-Za-z]{4})?(?:-(?:[A-Za-z]{2}|\d{3}))?(?:-[A-Za-z0-9]{5,8})*$")


def _check_language(tag: str) -> str:
    if not _BCP47.match(tag):
        raise ValueError(f"{tag!r} is not a BCP 47 language tag (e.g. 'en', 'zh-CN', 'zh-Hans')")
    return tag


def _check_text(limit: int) -> AfterValidator:
    def check(value: dict[str, str]) -> dict[str, str]:
        if not value:
            raise ValueError("give the text in at least one language")
        for tag, text in value.items():
            _check_language(tag)
            if not text.strip():
                raise ValueError(f"text for {tag!r} is empty")
            if len(text) > limit:
                raise ValueError(f"text for {tag!r} is longer than {limit} characters")
            _no_personal_data(text)
        return {tag: value[tag] for tag in sorted(value)}

    return AfterValidator(check)


#: text in several languages: BCP 47 tag -> text, e.g. ``{"en": "...", "zh-CN": "..."}``
TitleText = Annotated[dict[str, str], _check_text(500)]
LongText = Annotated[dict[str, str], _check_text(20_000)]
#: text that is not screened for personal data (legal terms); still language-tagged
TermsText = Annotated[dict[str, str], AfterValidator(lambda v: {_check_language(k): v[k] for k in sorted(v)})]
ScreenedStr = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_no_personal_data)]


def _hex_bytes32(value: Any) -> Any:
    if isinstance(value, bytes):
        value = "0x" + value.hex()
    if isinstance(value, str):
        value = value.lower()
        if not value.startswith("0x"):
            value = "0x" + value
    return value


#: 32 bytes as lower-case ``0x`` hex (content roots, digests)
Bytes32Hex = Annotated[str, BeforeValidator(_hex_bytes32), Field(pattern=r"^0x[0-9a-f]{64}$")]


def _checksum(value: Any) -> Any:
    if isinstance(value, bytes) and len(value) == 20:
        value = "0x" + value.hex()
    if isinstance(value, str) and re.fullmatch(r"0x[0-9a-fA-F]{40}", value):
        if value != value.lower() and value[2:] != value[2:].upper() and not is_checksum_address(value):
            raise ValueError(f"{value} has a wrong EIP-55 checksum (a typo?)")
        return to_checksum_address(value)
    raise ValueError(f"{value!r} is not an Ethereum address (0x + 40 hex digits)")


#: an Ethereum address, stored EIP-55 checksummed; a mixed-case input must carry a valid checksum
Address = Annotated[str, BeforeValidator(_checksum)]


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


#: a timezone-aware timestamp, stored in UTC (``...Z``)
Timestamp = Annotated[AwareDatetime, AfterValidator(_utc)]

DuoCode = Annotated[str, Field(pattern=r"^DUO:\d{7}$")]
MondoCode = Annotated[str, Field(pattern=r"^MONDO:\d{7}$")]
Slug = Annotated[str, Field(pattern=r"^[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*$", max_length=64)]


def mondo_number(code: str) -> int:
    """``"MONDO:0005148"`` -> 5148, the ``uint32`` disease code the contracts use."""
    if not re.fullmatch(r"MONDO:\d{7}", code):
        raise InvalidInput(f"{code!r} is not a MONDO code like MONDO:0005148")
    return int(code[6:])


def mondo_code(number: int) -> str:
    """5148 -> ``"MONDO:0005148"``."""
    if not 0 < number < 10_000_000:
        raise InvalidInput(f"{number} is not a MONDO number")
    return f"MONDO:{number:07d}"


def _unique(values: tuple[str, ...]) -> tuple[str, ...]:
    if len(set(values)) != len(values):
        raise ValueError("duplicate entries")
    return values


def _sorted_unique(values: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(sorted(_unique(values)))


def _enum_code(enum: type[Classification] | type[Tier]) -> BeforeValidator:
    def parse(value: Any) -> Any:
        if isinstance(value, int | str) and not isinstance(value, bool):
            try:
                return enum.parse(value)
            except InvalidInput as exc:
                raise ValueError(exc.message) from exc
        return value

    return BeforeValidator(parse)


ClassificationCode = Annotated[Classification, _enum_code(Classification), PlainSerializer(int, return_type=int)]
TierCode = Annotated[Tier, _enum_code(Tier), PlainSerializer(int, return_type=int)]

# ---------------------------------------------------------------------------------------------
# canonical documents
# ---------------------------------------------------------------------------------------------


class CanonicalDocument(BaseModel):
    """A frozen, closed model with one byte serialisation (RFC 8785) and the digest of those bytes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: what the document is called in error messages
    kind: ClassVar[str] = "document"

    def to_canonical_bytes(self) -> bytes:
        """RFC 8785 JSON of the document, optional fields that are unset omitted."""
        try:
            return rfc8785.dumps(self.model_dump(mode="json", exclude_none=True))
        except rfc8785.CanonicalizationError as exc:
            raise InvalidInput(f"{self.kind} cannot be serialised canonically: {exc}") from exc

    def digest(self) -> bytes:
        """sha256 of the canonical bytes = the digest of the document's CID (a single raw block)."""
        return hashlib.sha256(self.to_canonical_bytes()).digest()

    def cid(self) -> str:
        """The CIDv1 (raw, sha2-256) the document gets when stored with :class:`ledger.storage.ipfs.IpfsStore`."""
        return cid_from_digest(self.digest())

    @classmethod
    def from_bytes(cls, data: bytes, *, require_canonical: bool = True) -> Self:
        """Parse a stored document. With ``require_canonical`` the bytes must be exactly the canonical
        serialisation of what they parse to, so one document cannot circulate under two CIDs."""
        try:
            document = cls.model_validate_json(data)
        except ValidationError as exc:
            raise InvalidInput(f"not a valid {cls.kind}: {_summarise(exc)}") from exc
        if require_canonical and document.to_canonical_bytes() != data:
            raise InvalidInput(f"{cls.kind} is valid but not in canonical (RFC 8785) form")
        return document


def _summarise(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors()[:5]:
        where = ".".join(str(p) for p in error["loc"]) or "document"
        parts.append(f"{where}: {error['msg']}")
    more = exc.error_count() - len(parts)
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")


# ---------------------------------------------------------------------------------------------
# activity
# ---------------------------------------------------------------------------------------------


class ActivityType(StrEnum):
    """What produced a dataset from its parents (PROV activity types of the lineage)."""

    COLLECTION = "collection"
    DE_IDENTIFICATION = "de-identification"
    CONSENT_FILTER = "consent-filter"
    AGGREGATION = "aggregation"
    MERGE = "merge"
    MODEL_TRAINING = "model-training"
    REVISION = "revision"
    OTHER = "other"


class Software(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=200)
    version: str = Field(min_length=1, max_length=100)


class ConsentFilterParameters(BaseModel):
    """What a consent-filter activity computed: the subjects whose consent covered ``purpose_mask``
    (a DataUse use mask, with ``disease_code`` when disease-specific) at ``block_number``. Anyone with
    the subject list can recheck it against the chain's consent history at that block."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: DataUse mask (the contracts' uint64; valid masks use bits 0-39, so it is exact in JSON)
    purpose_mask: int = Field(ge=1, le=(1 << 53) - 1)
    disease_code: MondoCode | None = None
    block_number: int = Field(ge=0, le=(1 << 53) - 1)


class ActivityDescription(CanonicalDocument):
    """How a dataset was produced. Its canonical JSON is stored on IPFS; the digest of its CID is the
    ``activityDigest`` of the dataset's chain record."""

    kind: ClassVar[str] = "activity description"

    schema_version: Literal["1.0"] = SCHEMA_VERSION
    type: ActivityType
    agent: Address
    started: Timestamp
    ended: Timestamp
    software: Software | None = None
    #: sha256 of the run's parameters (kept by the agent; the digest lets them be checked later)
    parameters_digest: Bytes32Hex | None = None
    consent_filter: ConsentFilterParameters | None = None
    description: LongText | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.ended < self.started:
            raise ValueError("the activity ended before it started")
        if (self.type is ActivityType.CONSENT_FILTER) != (self.consent_filter is not None):
            raise ValueError("consent_filter is required for, and only for, a consent-filter activity")
        return self


# ---------------------------------------------------------------------------------------------
# dataset metadata
# ---------------------------------------------------------------------------------------------


class Licence(BaseModel):
    """Licence by SPDX id and/or URL, plus terms of use in free text."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    spdx: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9.+-]*$", max_length=100)
    url: str | None = Field(default=None, pattern=r"^https?://\S+$", max_length=2000)
    terms: TermsText | None = None

    @model_validator(mode="after")
    def _named(self) -> Self:
        if self.spdx is None and self.url is None:
            raise ValueError("name the licence by SPDX id or URL")
        return self


class DeIdentification(BaseModel):
    """How personal data was removed. ``method`` is a slug; the usual ones are in ``KNOWN_METHODS``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    KNOWN_METHODS: ClassVar[tuple[str, ...]] = (
        "anonymisation",
        "pseudonymisation",
        "k-anonymity",
        "l-diversity",
        "t-closeness",
        "differential-privacy",
        "generalisation",
        "suppression",
        "date-shifting",
        "hipaa-safe-harbor",
        "hipaa-expert-determination",
        "aggregation",
        "synthetic-data",
    )

    method: Slug
    parameters: dict[Slug, str | int | float | bool] | None = None
    notes: LongText | None = None


class Citation(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    doi: str | None = Field(default=None, pattern=r"^10\.\d{4,9}/\S+$", max_length=300)
    text: str | None = Field(default=None, min_length=1, max_length=2000)

    @model_validator(mode="after")
    def _given(self) -> Self:
        if self.doi is None and self.text is None:
            raise ValueError("give a DOI or a citation text")
        return self


class DatasetMetadata(CanonicalDocument):
    """The public description of one dataset version, stored on IPFS; the chain keeps its CID digest.

    ``files`` are kept sorted by path; ``content_root()`` recomputes the Merkle root the chain record
    is keyed by. Subjects never appear: only ``subject_count``.
    """

    kind: ClassVar[str] = "dataset metadata document"

    schema_version: Literal["1.0"] = SCHEMA_VERSION
    title: TitleText
    description: LongText
    keywords: Annotated[tuple[ScreenedStr, ...], AfterValidator(_sorted_unique)] | None = None
    classification: ClassificationCode
    tier: TierCode
    licence: Licence
    #: GA4GH DUO codes of the permitted uses, e.g. "DUO:0000042" (general research use)
    data_use: Annotated[tuple[DuoCode, ...], AfterValidator(_sorted_unique)] = Field(min_length=1)
    disease_codes: Annotated[tuple[MondoCode, ...], AfterValidator(_sorted_unique)] | None = None
    files: tuple[FileEntry, ...] = Field(min_length=1)
    #: content roots of the datasets this one was derived from, in the chain record's order
    parents: Annotated[tuple[Bytes32Hex, ...], AfterValidator(_unique)] = ()
    activity: ActivityDescription | None = None
    deidentification: DeIdentification | None = None
    subject_count: int | None = Field(default=None, ge=0, le=(1 << 53) - 1)
    holder: Address
    citation: Citation | None = None
    created: Timestamp

    @field_validator("files")
    @classmethod
    def _files_sorted(cls, files: tuple[FileEntry, ...]) -> tuple[FileEntry, ...]:
        ordered = tuple(sorted(files, key=lambda entry: entry.path))
        for before, after in itertools.pairwise(ordered):
            if before.path == after.path:
                raise ValueError(f"duplicate file path {before.path!r}")
        return ordered

    @model_validator(mode="after")
    def _lineage(self) -> Self:
        if self.parents and self.activity is None:
            raise ValueError("a derived dataset must describe the activity that produced it")
        if self.activity is not None and self.activity.type is ActivityType.COLLECTION and self.parents:
            raise ValueError("a collection activity has no parent datasets")
        return self

    def content_root(self) -> bytes:
        """The Merkle root over the file entries (OpenZeppelin StandardMerkleTree, see ledger.merkle)."""
        return content_tree(entry.leaf() for entry in self.files).root

    def activity_digest(self) -> bytes | None:
        """The chain's ``activityDigest`` for this dataset: the digest of the activity description's CID."""
        return self.activity.digest() if self.activity is not None else None

    @property
    def total_size(self) -> int:
        return sum(entry.size for entry in self.files)
