"""Exceptions that name the domain. Nothing here leaks an RPC or HTTP client error: callers catch
``LedgerError`` (or a subclass) and get a message that says what was wrong and what to do."""

from __future__ import annotations

from typing import Any


class LedgerError(Exception):
    """Base of every error the library raises on purpose."""

    #: short machine-readable kind, used by the API as the problem type
    code = "ledger-error"

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class ConfigurationError(LedgerError):
    code = "configuration"


class NodeUnavailable(LedgerError):
    """The chain node or the IPFS daemon cannot be reached."""

    code = "node-unavailable"


class DeploymentMismatch(LedgerError):
    """The deployment record does not match the chain (other chain id, no code, other ABI)."""

    code = "deployment-mismatch"


class InvalidInput(LedgerError):
    code = "invalid-input"


class NotFound(LedgerError):
    code = "not-found"


class DatasetNotFound(NotFound):
    code = "dataset-not-found"


class MetadataNotFound(NotFound):
    """The metadata document is not available from the IPFS node (within the timeout)."""

    code = "metadata-not-found"


class MetadataIntegrityError(LedgerError):
    """Content fetched from IPFS does not hash to the CID it was asked for."""

    code = "metadata-integrity"


class SignatureError(LedgerError):
    code = "invalid-signature"


class TransactionFailed(LedgerError):
    """A transaction was mined but reverted, or could not be sent."""

    code = "transaction-failed"


class ContractRevert(LedgerError):
    """A contract refused a call with a custom error. ``name`` is the Solidity error name and
    ``args`` its decoded arguments. Subclasses named after the errors exist for the common ones
    (``DatasetAlreadyRegistered``, ``ConsentNotActive``, ...); others come back as this class."""

    code = "contract-revert"

    def __init__(self, name: str, args: dict[str, Any], contract: str | None = None) -> None:
        self.name = name
        self.args_ = args
        self.contract = contract
        shown = ", ".join(f"{k}={_show(v)}" for k, v in args.items())
        where = f"{contract}: " if contract else ""
        super().__init__(f"{where}{name}({shown})", hint=REVERT_HINTS.get(name))


def _show(value: Any) -> str:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return str(value)


REVERT_HINTS: dict[str, str] = {
    "MissingRole": "ask an admin to grant the role, or act from an account that has it",
    "AccessControlUnauthorizedAccount": "only an admin may grant or revoke roles",
    "DatasetAlreadyRegistered": "this content is already registered; use the existing record",
    "DatasetNotFound": "register the dataset first, or check the content root",
    "UnknownParent": "register the parent dataset before its children",
    "NotDatasetHolder": "only the dataset's holder may change it",
    "InvalidStatus": "the dataset's status does not allow this change",
    "NotSubjectOrDelegate": "sign as the subject or as a delegate the subject appointed",
    "ConsentNotActive": "there is no given or renewed consent with these terms",
    "ConsentNotRenewable": "grant a new consent instead",
    "ExpiryNotInFuture": "choose an expiry after the current block time",
    "SignatureExpired": "sign the message again with a later deadline",
    "NonceAlreadyUsed": "this signed message was already executed; sign a new one",
    "InvalidSigner": "the signature does not belong to the subject or a delegate in force",
    "UserSuspended": "an auditor suspended this user; ask the auditor to reinstate",
    "DatasetNotUsable": "the dataset is suspended or retracted",
    "NoApproval": "request access and wait for an approval in force",
    "PurposeNotApproved": "record the use under the purpose the approval names",
    "DatasetEmbargoed": "under embargo only the holder decides, unless an auditor overrides it",
    "DatasetNotShared": "closed datasets are used only by their holder",
    "AccessNotRequestable": "open and registered data need no request; closed data is not shared",
    "DelegateNotAppointed": "this delegate is not appointed (or was already revoked)",
    "InvalidDelegate": "a delegate must be another, non-zero address",
    "InvalidRequestStatus": "the request was already decided; file a new request",
    "RequestNotFound": "check the access request id",
    "InvalidSuccessor": "name another registered, non-retracted dataset as the successor",
    "UserNotSuspended": "the user is not suspended",
    "NotEmbargoed": "the dataset is not under embargo, or the embargo was already overridden",
    "InvalidPurpose": "name one category (GRU, HMB, DS with a MONDO code, POA) and optional attributes",
    "InvalidPurposes": "give at least one of NRES, GRU, HMB, DS (with a MONDO code), POA",
    "MissingDigest": "give the digest of the document kept off chain (protocol, conditions, reason)",
    "InvalidScope": "a holder scope is the holder's address; a dataset scope a registered content root",
    "ParentsNotSorted": "list parents in ascending order without duplicates (the library does this)",
    "TooManyParents": "a dataset names at most 256 parents",
    "ZeroValue": "the content root and metadata digest must not be zero",
    "UnexpectedRequestId": "open and registered data, and holders' own uses, take request id 0",
    "ERC2771ForwarderInvalidSigner": "the forward request's signature does not match its sender",
    "ERC2771ForwarderExpiredRequest": "sign the request again with a later deadline",
    "InvalidAccountNonce": "the nonce was already used; fetch the next nonce and sign again",
}


# Named subclasses for the errors callers most often handle. ``decode_revert`` (ledger.chain)
# picks the subclass by name.
class DatasetAlreadyRegistered(ContractRevert):
    code = "dataset-already-registered"


class ConsentWithdrawn(ContractRevert):
    code = "consent-withdrawn"


class ConsentNotActive(ContractRevert):
    code = "consent-not-active"


class AccessDenied(ContractRevert):
    """A role or authorisation check failed (MissingRole, NotDatasetHolder, NotSubjectOrDelegate,
    InvalidSigner, DatasetEmbargoed)."""

    code = "access-denied"


class UseRefused(ContractRevert):
    """The usage registry refused a use (NoApproval, PurposeNotApproved, DatasetNotUsable,
    UserSuspended, DatasetNotShared)."""

    code = "use-refused"


REVERT_CLASSES: dict[str, type[ContractRevert]] = {
    "DatasetAlreadyRegistered": DatasetAlreadyRegistered,
    "ConsentNotActive": ConsentNotActive,
    "MissingRole": AccessDenied,
    "AccessControlUnauthorizedAccount": AccessDenied,
    "NotDatasetHolder": AccessDenied,
    "NotSubjectOrDelegate": AccessDenied,
    "InvalidSigner": AccessDenied,
    "DatasetEmbargoed": AccessDenied,
    "NoApproval": UseRefused,
    "PurposeNotApproved": UseRefused,
    "DatasetNotUsable": UseRefused,
    "UserSuspended": UseRefused,
    "DatasetNotShared": UseRefused,
}


# Storage and local nodes.
class IpfsError(LedgerError):
    """The IPFS daemon answered, but with an error other than a timeout (see ``MetadataNotFound``)."""

    code = "ipfs-error"


class DocumentTooLarge(InvalidInput):
    """A document exceeds what is stored as one IPFS block (1 MiB), so its CID would not be a raw block."""

    code = "document-too-large"


class NodeStartFailed(NodeUnavailable):
    """A local node (anvil, js-ipfs) was started but did not come up; the message carries its log tail."""

    code = "node-start-failed"
