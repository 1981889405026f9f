"""Request models of the service, and the write answers (tickets, typed data to sign)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ForwardRequestIn(Model):
    """An ERC-2771 forward request signed by the acting party (EIP-712, domain MedLedgerForwarder)."""

    from_: str = Field(alias="from", pattern=r"^0x[0-9a-fA-F]{40}$")
    to: str = Field(pattern=r"^0x[0-9a-fA-F]{40}$")
    value: int = Field(0, ge=0, le=0)
    gas: int = Field(ge=21_000, le=5_000_000)
    nonce: int = Field(ge=0, lt=2**256)
    deadline: int = Field(ge=0, lt=2**48)
    data: str = Field(pattern=r"^0x([0-9a-fA-F]{2})*$", max_length=200_000)
    signature: str = Field(pattern=r"^0x[0-9a-fA-F]{130}$")

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    def as_json(self) -> dict[str, Any]:
        d = self.model_dump(by_alias=True)
        return d


class SignedWrite(Model):
    """A write: the signed forward request."""

    request: ForwardRequestIn


class Ticket(BaseModel):
    """A queued relayed request: poll GET /relay/{id} for its outcome."""

    id: str
    status: Literal["queued", "submitting", "mined", "failed"]
    kind: Literal["forward", "consent"]
    signer: str
    nonce: str
    tx_hash: str | None = None
    block: int | None = None
    error: dict[str, Any] | None = None
    result: dict[str, Any] | None = Field(None, description="what the write created: request_id, content_root")


class PrepareIn(Model):
    """Ask for the typed data to sign for an operation."""

    operation: str = Field(min_length=1, max_length=64)
    from_: str = Field(alias="from", pattern=r"^0x[0-9a-fA-F]{40}$")
    args: dict[str, Any]
    deadline: int | None = Field(None, ge=0, lt=2**48)

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Prepared(BaseModel):
    """EIP-712 typed data (eth_signTypedData_v4 payload) and what it does."""

    operation: str
    typed_data: dict[str, Any]
    request: dict[str, Any]


class ConsentPrepareIn(Model):
    kind: Literal["Grant", "Renew", "Withdraw", "AppointDelegate", "RevokeDelegate"]
    subject: str = Field(pattern=r"^0x[0-9a-fA-F]{40}$")
    scope_kind: Literal["holder", "dataset"] | None = None
    scope: str | None = Field(None, pattern=r"^0x([0-9a-fA-F]{40}|[0-9a-fA-F]{64})$")
    grantee: str | None = Field(None, pattern=r"^0x[0-9a-fA-F]{40}$")
    purposes: list[str] | None = Field(None, max_length=16, description="DUO codes or ids, e.g. ['HMB', 'NCU']")
    disease: str | None = Field(None, max_length=20, description="MONDO code for DS")
    expiry: int | None = Field(None, ge=0, lt=2**40)
    delegate: str | None = Field(None, pattern=r"^0x[0-9a-fA-F]{40}$")
    nonce: int | None = Field(None, ge=0, lt=2**256)
    deadline: int | None = Field(None, ge=0, lt=2**256)


class ConsentSigned(Model):
    """A consent registry typed message and the subject's (or delegate's) signature."""

    kind: Literal["Grant", "Renew", "Withdraw", "AppointDelegate", "RevokeDelegate"]
    message: dict[str, Any]
    signature: str = Field(pattern=r"^0x[0-9a-fA-F]{130}$")


class DatasetPrepareIn(Model):
    """A dataset to register: its metadata document, subject root and embargo."""

    metadata: dict[str, Any]
    subject_root: str | None = Field(None, pattern=r"^0x[0-9a-fA-F]{64}$")
    embargo_end: int = Field(0, ge=0, lt=2**32)
    deadline: int | None = Field(None, ge=0, lt=2**48)


class DatasetRegisterIn(DatasetPrepareIn):
    request: ForwardRequestIn


class DatasetPrepared(BaseModel):
    content_root: str
    metadata_cid: str
    typed_data: dict[str, Any]
    request: dict[str, Any]


class DatasetRegistered(BaseModel):
    content_root: str
    metadata_cid: str
    ticket: Ticket


class NonceOut(BaseModel):
    address: str
    forwarder_nonce: int
    note: str


class HashQuery(Model):
    sha256: str = Field(pattern=r"^(0x)?[0-9a-fA-F]{64}$")
    size: int = Field(ge=0, lt=2**63)
    datasets: list[str] | None = Field(None, max_length=1000)


class ImpactIn(Model):
    """The holders' subject lists (off chain) to check a withdrawal against."""

    subject_lists: dict[str, list[str]] = Field(default_factory=dict, max_length=1000)


class CoverageIn(Model):
    """A holder's subject list and a purpose: which subjects' consent covers it at a block."""

    dataset: str = Field(pattern=r"^0x[0-9a-fA-F]{64}$")
    subjects: list[str] = Field(min_length=1, max_length=100_000)
    category: Literal["GRU", "HMB", "DS", "POA"] = "HMB"
    attributes: list[str] = Field(default_factory=list, max_length=8)
    disease: str | None = Field(None, max_length=20)
    grantee: str | None = Field(None, pattern=r"^0x[0-9a-fA-F]{40}$")
    block: int | None = Field(None, ge=0, lt=2**63)


class RecheckIn(Model):
    """Recheck a registered consent filter against the chain's consent history."""

    subjects: list[str] = Field(min_length=1, max_length=100_000, description="the parent's full subject list")
    filter_subjects: list[str] | None = Field(None, max_length=100_000)
    grantee: str | None = Field(None, pattern=r"^0x[0-9a-fA-F]{40}$")
