"""The CLI's direct backend: the services layer over the configured chain and IPFS node, the CLI
its own relayer (see :mod:`ledger.cli._backend`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from eth_account.signers.local import LocalAccount

from ledger.cli._backend import Backend, Context, with_purpose_terms
from ledger.content.metadata import DatasetMetadata
from ledger.core.classification import Tier
from ledger.core.errors import LedgerError
from ledger.core.records import ConsentScope, TxInfo, hex32
from ledger.exports.openlineage import lineage_to_openlineage
from ledger.exports.prov import lineage_to_prov
from ledger.history.index import IndexEventSource
from ledger.rules import datause
from ledger.services.audit import consent_fhir, dataset_versions, dataset_with_metadata
from ledger.services.file_checks import file_report
from ledger.services.impact import withdrawal_impact
from ledger.services.ledger import Ledger
from ledger.services.verification import verify_dataset, verify_lineage


def _tx(info: TxInfo, **extra: Any) -> dict[str, Any]:
    return {"status": "mined", "tx_hash": info.tx_hash, "block": info.block, **extra}


class LocalBackend(Backend):
    """The services layer over the configured chain and IPFS node; the CLI is its own relayer."""

    def __init__(self, state: Context) -> None:
        self.state = state

    @property
    def ledger(self) -> Ledger:
        return self.state.ledger()

    # writes ----------------------------------------------------------------------------------

    def grant_role(self, actor: LocalAccount, role: str, account: str) -> dict[str, Any]:
        return _tx(self.ledger.grant_role(actor, role, account))

    def revoke_role(self, actor: LocalAccount, role: str, account: str) -> dict[str, Any]:
        return _tx(self.ledger.revoke_role(actor, role, account))

    def register_dataset(
        self, actor: LocalAccount, metadata: DatasetMetadata, subjects: Sequence[str], embargo_end: int
    ) -> dict[str, Any]:
        reg = self.ledger.register_dataset(actor, metadata, subjects=subjects, embargo_end=embargo_end)
        return {"status": "mined", **reg.to_json()}

    def set_sharing(self, actor: LocalAccount, root: str, tier: Tier, embargo_end: int) -> dict[str, Any]:
        return _tx(self.ledger.set_sharing(actor, root, tier, embargo_end))

    def deprecate(self, actor: LocalAccount, root: str, successor: str) -> dict[str, Any]:
        return _tx(self.ledger.deprecate(actor, root, successor))

    def retract(self, actor: LocalAccount, root: str, reason: bytes) -> dict[str, Any]:
        return _tx(self.ledger.retract(actor, root, reason))

    def suspend_dataset(self, actor: LocalAccount, root: str, reason: bytes) -> dict[str, Any]:
        return _tx(self.ledger.suspend_dataset(actor, root, reason))

    def reinstate_dataset(self, actor: LocalAccount, root: str) -> dict[str, Any]:
        return _tx(self.ledger.reinstate_dataset(actor, root))

    def consent(
        self,
        actor: LocalAccount,
        kind: str,
        *,
        subject: str,
        scope: ConsentScope | None = None,
        grantee: str | None = None,
        purposes: Sequence[str] | None = None,
        disease: str | None = None,
        expiry: int | None = None,
        delegate: str | None = None,
    ) -> dict[str, Any]:
        ledger = self.ledger
        mask = datause.grant_mask(purposes) if purposes is not None else None
        message = ledger.consent_message(
            kind,
            subject=subject,
            scope=scope,
            grantee=grantee,
            purposes=mask,
            disease=datause.parse_disease(disease),
            expiry=expiry,
            delegate=delegate,
        )
        signed = ledger.relayer.sign_consent(actor, kind, message)
        info = ledger.write_consent(signed)
        return _tx(info, message=signed.to_json()["message"])

    def request_access(
        self, actor: LocalAccount, root: str, purpose: datause.Purpose, protocol: bytes
    ) -> dict[str, Any]:
        info = self.ledger.request_access(actor, root, purpose, protocol)
        return _tx(info, request_id=info.result)

    def approve_access(self, actor: LocalAccount, request_id: int, conditions: bytes, expiry: int) -> dict[str, Any]:
        return _tx(self.ledger.approve_access(actor, request_id, conditions, expiry))

    def deny_access(self, actor: LocalAccount, request_id: int, reason: bytes) -> dict[str, Any]:
        return _tx(self.ledger.deny_access(actor, request_id, reason))

    def revoke_access(self, actor: LocalAccount, request_id: int, reason: bytes) -> dict[str, Any]:
        return _tx(self.ledger.revoke_access(actor, request_id, reason))

    def override_embargo(self, actor: LocalAccount, root: str, reason: bytes) -> dict[str, Any]:
        return _tx(self.ledger.override_embargo(actor, root, reason))

    def suspend_user(self, actor: LocalAccount, user: str, reason: bytes) -> dict[str, Any]:
        return _tx(self.ledger.suspend_user(actor, user, reason))

    def reinstate_user(self, actor: LocalAccount, user: str) -> dict[str, Any]:
        return _tx(self.ledger.reinstate_user(actor, user))

    def record_use(
        self, actor: LocalAccount, root: str, purpose: datause.Purpose, request_id: int, result: bytes
    ) -> dict[str, Any]:
        info = self.ledger.record_use(actor, root, purpose, request_id=request_id, result_digest=result)
        return _tx(info)

    # reads -----------------------------------------------------------------------------------

    def dataset(self, root: str) -> dict[str, Any]:
        return dataset_with_metadata(self.ledger, root)

    def account(self, address: str) -> dict[str, Any]:
        ledger = self.ledger
        return {"account": address, "roles": ledger.roles_of(address), "suspended": ledger.is_user_suspended(address)}

    def access_request(self, request_id: int) -> dict[str, Any]:
        ledger = self.ledger
        body = with_purpose_terms(ledger.get_request(request_id).to_json())
        body["approval_in_force"] = bool(ledger.client.call(ledger.access.functions.isApprovalInForce(request_id)))
        return body

    def versions(self, root: str) -> dict[str, Any]:
        return dataset_versions(self.ledger, self.state.indexer(), root)

    def stats(self, root: str) -> dict[str, Any]:
        return dict(self.ledger.usage_stats(root))

    def consent_check(
        self,
        subject: str,
        root: str,
        category: str,
        attributes: Sequence[str],
        disease: str | None,
        grantee: str | None,
    ) -> dict[str, Any]:
        purpose = datause.Purpose.of(category, attributes, disease)
        ok = self.ledger.consent_in_force(subject, root, purpose, grantee)
        return {
            "subject": subject,
            "dataset": root,
            "purpose": datause.describe(purpose.mask),
            "disease": datause.disease_label(purpose.disease),
            "grantee": grantee,
            "in_force": ok,
        }

    def consents(self, subject: str) -> Any:
        """The subject's consents with their history, from the local event index."""
        return self.state.indexer().subject_consents(subject)

    def consent_fhir(self, subject: str, scope: ConsentScope, grantee: str | None) -> dict[str, Any]:
        ledger = self.ledger
        return consent_fhir(ledger, self.state.indexer(), hex32(ledger.consent_id(subject, scope, grantee)))

    def verify_dataset(self, root: str) -> dict[str, Any]:
        return verify_dataset(self.ledger, root).to_json()

    def verify_hash(self, sha256: str, size: int, datasets: Sequence[str] | None) -> dict[str, Any]:
        # the index (synced on opening) is needed only to search every dataset
        indexer = None if datasets else self.state.indexer()
        return file_report(self.ledger, indexer, sha256=sha256, size=size, datasets=datasets)

    def verify_lineage(self, root: str) -> dict[str, Any]:
        return verify_lineage(self.ledger, root).to_json()

    def prov(self, root: str) -> dict[str, Any]:
        return lineage_to_prov(verify_lineage(self.ledger, root))

    def openlineage(self, root: str) -> list[dict[str, Any]]:
        return lineage_to_openlineage(verify_lineage(self.ledger, root))

    def dataset_trail(self, root: str, limit: int, after: int | None) -> Any:
        return self.state.indexer().dataset_trail(root, limit=limit, after=after)

    def user_trail(self, address: str, limit: int, after: int | None) -> Any:
        return self.state.indexer().user_trail(address, limit=limit, after=after)

    def withdrawal_impact(self, subject: str, lists: Mapping[str, Sequence[str]]) -> dict[str, Any]:
        source = IndexEventSource(self.state.indexer())
        return withdrawal_impact(self.ledger, source, subject, lists).to_json()

    def status(self) -> dict[str, Any]:
        settings = self.state.settings()
        out: dict[str, Any] = {"mode": "direct"}
        ok = True
        try:
            ledger = self.ledger
            w3 = ledger.client.w3
            relayer = ledger.client.address
            out["chain"] = {
                "ok": True,
                "rpc_url": settings.rpc_url,
                "chain_id": ledger.client.chain_id,
                "block": int(w3.eth.block_number),
            }
            out["deployment"] = {"ok": True, "file": str(settings.deployment_path)}
            out["relayer"] = {"address": relayer, "balance_wei": str(w3.eth.get_balance(relayer))}  # type: ignore[arg-type]
        except LedgerError as exc:
            ok = False
            out["chain"] = {"ok": False, "rpc_url": settings.rpc_url, "error": exc.message, "hint": exc.hint}
        ipfs_ok = self.state.ipfs().is_available()
        ok = ok and ipfs_ok
        out["ipfs"] = {"ok": ipfs_ok, "api": settings.ipfs_api}
        out["status"] = "ready" if ok else "not-ready"
        return out
