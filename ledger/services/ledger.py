"""The ledger's operations, one call each, for every party.

``Ledger`` ties a ChainClient (the relayer's key), a Relayer and an IPFS store together. Every
write is signed by the acting party's own key (``actor``): as an ERC-2771 forward request that the
relayer submits (``mode="relay"``, the default: the actor needs no ETH), or as the actor's own
transaction (``mode="direct"``). Consent writes are the consent registry's own EIP-712 messages,
so what the subject signs is what a wallet would show.

Registration follows the saga stated in ``ledger.services.datasets`` (pin, then anchor; nothing
stays pinned and unanchored); consent messages and the ``isInForce`` call are built by
``ledger.services.consents``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Literal

from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from web3.logs import DISCARD as _DISCARD
from web3.types import TxReceipt

from ledger.chain.client import ChainClient
from ledger.content.metadata import DatasetMetadata
from ledger.core.classification import DatasetStatus, Tier
from ledger.core.config import Settings
from ledger.core.errors import DatasetNotFound, InvalidInput, LedgerError, NotFound, TransactionFailed
from ledger.core.records import (
    ZERO32,
    ZERO_ADDRESS,
    AccessRequestRecord,
    ConsentRecord,
    ConsentScope,
    ConsentState,
    DatasetRecord,
    TxInfo,
    to_bytes32,
)
from ledger.relay.relayer import Outcome, Relayer, SignedConsent
from ledger.rules import datause
from ledger.services.consents import consent_message, decode_in_force, in_force_calldata
from ledger.services.datasets import (
    Registration,
    RegistrationCall,
    holder_registration,
    pin_then_anchor,
    registration_call,
)

# The registration types stay importable from here (benchmarks and older callers).
__all__ = ["Ledger", "Registration", "RegistrationCall", "Role", "expiry_in", "registration_call", "role_id"]

Role = Literal["holder", "reviewer", "user", "auditor", "admin"]


def role_id(role: str) -> bytes:
    if role == "admin":
        return ZERO32
    names = {"holder": "HOLDER_ROLE", "reviewer": "REVIEWER_ROLE", "user": "USER_ROLE", "auditor": "AUDITOR_ROLE"}
    if role not in names:
        raise InvalidInput(f"unknown role {role!r}", hint="one of holder, reviewer, user, auditor, admin")
    return bytes(keccak(text=names[role]))


class Ledger:
    """Operations over the deployed contracts (and, for datasets, the IPFS store)."""

    def __init__(
        self,
        settings: Settings,
        client: ChainClient | None = None,
        ipfs: Any = None,
        *,
        mode: Literal["relay", "direct"] = "relay",
    ) -> None:
        self.settings = settings
        self.client = client or ChainClient(settings)
        self.relayer = Relayer(self.client)
        self.ipfs = ipfs
        self.mode = mode
        self.datasets = self.client.contract("DatasetRegistry")
        self.consents = self.client.contract("ConsentRegistry")
        self.access = self.client.contract("AccessRegistry")
        self.usage = self.client.contract("UsageRegistry")
        self.roles = self.client.contract("LedgerRoles")
        self._direct_clients: dict[str, ChainClient] = {}

    # ------------------------------------------------------------------ plumbing

    def write(self, actor: LocalAccount, contract: str, fn: str, *args: Any) -> TxInfo:
        """Execute one write as ``actor``: relayed through the forwarder, or sent directly."""
        if self.mode == "direct":
            client = self._direct_clients.get(actor.address)
            if client is None:
                client = ChainClient(
                    self.settings,
                    private_key=actor.key.hex(),
                    record=self.client.record,
                    artifacts=self.client.artifacts,
                    check_record=False,
                )
                self._direct_clients[actor.address] = client
            receipt = client.transact_receipt(getattr(client.contract(contract).functions, fn)(*args))
            return TxInfo("0x" + bytes(receipt["transactionHash"]).hex(), int(receipt["blockNumber"]))
        req = self.relayer.sign_request(actor, contract, fn, *args)
        return _mined(self.relayer.submit([req])[0], "relayed request failed")

    def write_consent(self, signed: SignedConsent) -> TxInfo:
        self.relayer.check_consent(signed, simulate=True)
        return _mined(self.relayer.submit_consents([signed])[0], "signed consent message failed")

    def now(self) -> int:
        """The latest block's timestamp (the contracts' notion of now)."""
        return int(self.client.w3.eth.get_block("latest")["timestamp"])

    def receipt(self, tx_hash: str) -> TxReceipt:
        return self.client.w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ roles

    def grant_role(self, admin: LocalAccount, role: str, account: str) -> TxInfo:
        return self.write(admin, "LedgerRoles", "grantRole", role_id(role), to_checksum_address(account))

    def revoke_role(self, admin: LocalAccount, role: str, account: str) -> TxInfo:
        return self.write(admin, "LedgerRoles", "revokeRole", role_id(role), to_checksum_address(account))

    def has_role(self, role: str, account: str) -> bool:
        return bool(self.client.call(self.roles.functions.hasRole(role_id(role), to_checksum_address(account))))

    def roles_of(self, account: str) -> list[str]:
        return [r for r in ("admin", "holder", "reviewer", "user", "auditor") if self.has_role(r, account)]

    # ------------------------------------------------------------------ dataset reads

    def get_dataset(self, content_root: bytes | str) -> DatasetRecord:
        root = to_bytes32(content_root, "content root")
        rec = DatasetRecord.from_chain(self.client.call(self.datasets.functions.getDataset(root)))
        if not rec.exists:
            raise DatasetNotFound(f"no dataset with content root 0x{root.hex()}")
        return rec

    def get_datasets(self, roots: Sequence[bytes], chunk: int = 200) -> list[DatasetRecord]:
        """Many records, ``chunk`` per eth_call (status NONE for unknown roots)."""
        out: list[DatasetRecord] = []
        for i in range(0, len(roots), chunk):
            part = list(roots[i : i + chunk])
            out += [DatasetRecord.from_chain(t) for t in self.client.call(self.datasets.functions.getDatasets(part))]
        return out

    def dataset_exists(self, content_root: bytes) -> bool:
        return bool(self.client.call(self.datasets.functions.exists(content_root)))

    def usage_stats(self, content_root: bytes | str) -> dict[str, int]:
        root = to_bytes32(content_root, "content root")
        uses, users = self.client.call(self.usage.functions.statsOf(root))
        rec = self.get_dataset(root)
        return {"uses": int(uses), "distinct_users": int(users), "derived_datasets": rec.derived_count}

    # ------------------------------------------------------------------ dataset registration

    def register_dataset(
        self,
        actor: LocalAccount,
        metadata: DatasetMetadata,
        *,
        subjects: Sequence[str] = (),
        embargo_end: int = 0,
    ) -> Registration:
        """Register a dataset (primary or derived) from its metadata document, whose ``files``
        define the content root: pin the document (and its activity description) on IPFS and anchor
        the record, signed by ``actor`` (the holder named in the metadata). ``subjects`` are the
        covered subjects' addresses; only their Merkle root goes on chain. See the module docstring
        for what happens when a step fails."""
        if self.ipfs is None:
            raise LedgerError("registration needs an IPFS store", hint="construct Ledger with ipfs=IpfsStore(...)")
        call = holder_registration(actor.address, metadata, subjects=subjects, embargo_end=embargo_end)
        # Simulate (and sign) before pinning: a duplicate, a missing role or an unknown parent fails here.
        request = None
        if self.mode == "relay":
            request = self.relayer.sign_request(actor, "DatasetRegistry", "register", *call.args)

        def anchor(pins: list[str]) -> tuple[TxInfo, str]:
            if request is None:
                return self.write(actor, "DatasetRegistry", "register", *call.args), pins[0]
            return _mined(self.relayer.submit([request])[0], "registration failed"), pins[0]

        info, cid = pin_then_anchor(self.ipfs, call, anchor)
        root = call.content_root
        return Registration(root, cid, TxInfo(info.tx_hash, info.block, root), call.subject_root)

    # ------------------------------------------------------------------ dataset status writes

    def set_sharing(self, holder: LocalAccount, content_root: bytes | str, tier: Tier, embargo_end: int) -> TxInfo:
        root = to_bytes32(content_root, "content root")
        return self.write(holder, "DatasetRegistry", "setSharing", root, int(tier), embargo_end)

    def deprecate(self, holder: LocalAccount, content_root: bytes | str, successor: bytes | str) -> TxInfo:
        root = to_bytes32(content_root, "content root")
        return self.write(holder, "DatasetRegistry", "deprecate", root, to_bytes32(successor, "successor"))

    def retract(self, holder: LocalAccount, content_root: bytes | str, reason_digest: bytes = ZERO32) -> TxInfo:
        root = to_bytes32(content_root, "content root")
        return self.write(holder, "DatasetRegistry", "retract", root, reason_digest)

    def suspend_dataset(self, auditor: LocalAccount, content_root: bytes | str, reason_digest: bytes) -> TxInfo:
        root = to_bytes32(content_root, "content root")
        return self.write(auditor, "DatasetRegistry", "suspend", root, reason_digest)

    def reinstate_dataset(self, auditor: LocalAccount, content_root: bytes | str) -> TxInfo:
        return self.write(auditor, "DatasetRegistry", "reinstate", to_bytes32(content_root, "content root"))

    # ------------------------------------------------------------------ consent

    #: the fields of a consent typed message (``ledger.services.consents.consent_message``)
    consent_message = staticmethod(consent_message)

    def grant_consent(
        self,
        signer: LocalAccount,
        scope: ConsentScope,
        purposes: int,
        expiry: int,
        *,
        disease: int = 0,
        grantee: str | None = None,
        subject: str | None = None,
    ) -> TxInfo:
        """Give consent, signed by the subject (or, with ``subject``, by its delegate)."""
        msg = self.consent_message(
            "Grant",
            subject=subject or signer.address,
            scope=scope,
            grantee=grantee,
            purposes=purposes,
            disease=disease,
            expiry=expiry,
        )
        return self.write_consent(self.relayer.sign_consent(signer, "Grant", msg))

    def renew_consent(
        self,
        signer: LocalAccount,
        scope: ConsentScope,
        expiry: int,
        *,
        grantee: str | None = None,
        subject: str | None = None,
    ) -> TxInfo:
        msg = self.consent_message(
            "Renew", subject=subject or signer.address, scope=scope, grantee=grantee, expiry=expiry
        )
        return self.write_consent(self.relayer.sign_consent(signer, "Renew", msg))

    def withdraw_consent(
        self, signer: LocalAccount, scope: ConsentScope, *, grantee: str | None = None, subject: str | None = None
    ) -> TxInfo:
        msg = self.consent_message("Withdraw", subject=subject or signer.address, scope=scope, grantee=grantee)
        return self.write_consent(self.relayer.sign_consent(signer, "Withdraw", msg))

    def appoint_delegate(self, subject: LocalAccount, delegate: str, expiry: int) -> TxInfo:
        msg = self.consent_message("AppointDelegate", subject=subject.address, delegate=delegate, expiry=expiry)
        return self.write_consent(self.relayer.sign_consent(subject, "AppointDelegate", msg))

    def revoke_delegate(self, subject: LocalAccount, delegate: str) -> TxInfo:
        msg = self.consent_message("RevokeDelegate", subject=subject.address, delegate=delegate)
        return self.write_consent(self.relayer.sign_consent(subject, "RevokeDelegate", msg))

    def consent_id(self, subject: str, scope: ConsentScope, grantee: str | None = None) -> bytes:
        return bytes(
            self.client.call(
                self.consents.functions.consentId(
                    to_checksum_address(subject),
                    int(scope.kind),
                    scope.value,
                    to_checksum_address(grantee or ZERO_ADDRESS),
                )
            )
        )

    def get_consent(self, subject: str, scope: ConsentScope, grantee: str | None = None) -> ConsentRecord:
        cid = self.consent_id(subject, scope, grantee)
        purposes, disease, expiry, state, block = self.client.call(self.consents.functions.getConsent(cid))
        return ConsentRecord(
            cid,
            to_checksum_address(subject),
            scope,
            to_checksum_address(grantee or ZERO_ADDRESS),
            int(purposes),
            int(disease),
            int(expiry),
            ConsentState(state),
            int(block),
        )

    def consent_check_call(
        self, subject: str, dataset: bytes | str, purpose: datause.Purpose, grantee: str | None = None
    ) -> tuple[str, bytes]:
        """Target and hand-encoded calldata of ``ConsentRegistry.isInForce``."""
        return str(self.consents.address), in_force_calldata(subject, dataset, purpose, grantee)

    def consent_in_force(
        self,
        subject: str,
        dataset: bytes | str,
        purpose: datause.Purpose,
        grantee: str | None = None,
        block: int | str = "latest",
    ) -> bool:
        """``ConsentRegistry.isInForce``, hand-encoded and sent as a raw eth_call: this is the hot
        read path of a data platform (see ChainClient.raw_call)."""
        to, data = self.consent_check_call(subject, dataset, purpose, grantee)
        return decode_in_force(self.client.raw_call(to, data, block))

    def consent_in_force_many(
        self,
        subjects: Sequence[str],
        dataset: bytes | str,
        purpose: datause.Purpose,
        grantee: str | None = None,
        chunk: int = 500,
    ) -> list[bool]:
        """isInForce for many subjects, ``chunk`` per eth_call (cohort filtering)."""
        out: list[bool] = []
        root = to_bytes32(dataset, "dataset")
        g = to_checksum_address(grantee or ZERO_ADDRESS)
        for i in range(0, len(subjects), chunk):
            part = [to_checksum_address(s) for s in subjects[i : i + chunk]]
            out += [
                bool(x)
                for x in self.client.call(
                    self.consents.functions.inForceBatch(part, root, purpose.mask, purpose.disease, g)
                )
            ]
        return out

    def delegate_expiry(self, subject: str, delegate: str) -> int:
        return int(
            self.client.call(
                self.consents.functions.delegateExpiry(to_checksum_address(subject), to_checksum_address(delegate))
            )
        )

    # ------------------------------------------------------------------ access

    def request_access(
        self, user: LocalAccount, dataset: bytes | str, purpose: datause.Purpose, protocol_digest: bytes
    ) -> TxInfo:
        """File an access request; ``TxInfo.result`` is the new request id."""
        root = to_bytes32(dataset, "dataset")
        info = self.write(
            user,
            "AccessRegistry",
            "requestAccess",
            root,
            purpose.mask,
            purpose.disease,
            to_bytes32(protocol_digest, "protocol digest"),
        )
        receipt = self.receipt(info.tx_hash)
        ids = [
            int(ev["args"]["requestId"])
            for ev in self.access.events.AccessRequested().process_receipt(receipt, errors=_DISCARD)
            if ev["args"]["requester"] == user.address
        ]
        if not ids:
            raise TransactionFailed("access request mined but no AccessRequested event found")
        return TxInfo(info.tx_hash, info.block, ids[-1])

    def approve_access(self, reviewer: LocalAccount, request_id: int, conditions_digest: bytes, expiry: int) -> TxInfo:
        return self.write(
            reviewer,
            "AccessRegistry",
            "approve",
            request_id,
            to_bytes32(conditions_digest, "conditions digest"),
            expiry,
        )

    def deny_access(self, reviewer: LocalAccount, request_id: int, reason_digest: bytes = ZERO32) -> TxInfo:
        return self.write(reviewer, "AccessRegistry", "deny", request_id, reason_digest)

    def revoke_access(self, reviewer: LocalAccount, request_id: int, reason_digest: bytes = ZERO32) -> TxInfo:
        return self.write(reviewer, "AccessRegistry", "revoke", request_id, reason_digest)

    def override_embargo(self, auditor: LocalAccount, dataset: bytes | str, reason_digest: bytes) -> TxInfo:
        return self.write(
            auditor,
            "AccessRegistry",
            "overrideEmbargo",
            to_bytes32(dataset, "dataset"),
            to_bytes32(reason_digest, "reason digest"),
        )

    def suspend_user(self, auditor: LocalAccount, user: str, reason_digest: bytes = ZERO32) -> TxInfo:
        return self.write(auditor, "AccessRegistry", "suspendUser", to_checksum_address(user), reason_digest)

    def reinstate_user(self, auditor: LocalAccount, user: str) -> TxInfo:
        return self.write(auditor, "AccessRegistry", "reinstateUser", to_checksum_address(user))

    def get_request(self, request_id: int) -> AccessRequestRecord:
        rec = AccessRequestRecord.from_chain(request_id, self.client.call(self.access.functions.getRequest(request_id)))
        if rec.status == 0:
            raise NotFound(f"no access request {request_id}")
        return rec

    def is_user_suspended(self, user: str) -> bool:
        return bool(self.client.call(self.access.functions.isSuspended(to_checksum_address(user))))

    # ------------------------------------------------------------------ usage

    def record_use(
        self,
        user: LocalAccount,
        dataset: bytes | str,
        purpose: datause.Purpose,
        *,
        request_id: int = 0,
        result_digest: bytes = ZERO32,
    ) -> TxInfo:
        """Record a use; refused by the contract unless an approval (or the tier's rule) allows it."""
        return self.write(
            user,
            "UsageRegistry",
            "recordUse",
            to_bytes32(dataset, "dataset"),
            request_id,
            purpose.mask,
            purpose.disease,
            to_bytes32(result_digest, "result digest"),
        )

    # ------------------------------------------------------------------ helpers

    def wait_until(self, timestamp: int) -> None:
        """Local anvil only: move chain time forward (tests and the demo)."""
        if not self.settings.is_local_anvil:
            raise LedgerError("time travel is only possible on a local anvil")
        self.client.w3.provider.make_request("evm_setNextBlockTimestamp", [timestamp])  # type: ignore[arg-type]
        self.client.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
        self.relayer.forget_now()

    def status_name(self, status: int) -> str:
        return DatasetStatus(status).name.lower()


def _mined(outcome: Outcome, failure: str) -> TxInfo:
    """A relayed write's transaction, or its error (``failure`` when the outcome names none)."""
    if not outcome.ok:
        raise outcome.error or TransactionFailed(failure)
    return TxInfo(outcome.tx_hash, outcome.block)


def expiry_in(days: float, now: int | None = None) -> int:
    return int((now if now is not None else time.time()) + days * 86400)
