"""Two ways to carry out an operation, with the same results (JSON-ready dicts):

- :class:`LocalBackend` uses the library against the configured chain and IPFS node. Writes are
  signed by the actor and relayed through the forwarder by the CLI itself, with the configured
  relayer key (on a local anvil: its first development account).
- :class:`ServiceBackend` asks the service for the typed data, signs it here, submits it and waits
  for the relayed outcome; reads go to the service.

Both return the shapes the service's routes return (they are the library's ``to_json`` forms), so
rendering does not depend on the path taken.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from eth_account.signers.local import LocalAccount

from ledger.content.metadata import DatasetMetadata
from ledger.core.classification import Tier
from ledger.core.errors import LedgerError, NodeUnavailable
from ledger.core.records import ZERO32, ConsentScope, ScopeKind, TxInfo, hex32
from ledger.rules import datause
from ledger.services.ledger import role_id

if TYPE_CHECKING:
    from ledger.cli._state import State
    from ledger.client.http import ServiceClient
    from ledger.services.ledger import Ledger


def _tx(info: TxInfo, **extra: Any) -> dict[str, Any]:
    return {"status": "mined", "tx_hash": info.tx_hash, "block": info.block, **extra}


def _scope_body(scope: ConsentScope) -> tuple[str, str]:
    if scope.kind == ScopeKind.HOLDER:
        assert scope.holder_address is not None
        return "holder", scope.holder_address
    return "dataset", hex32(scope.value)


class Backend:
    """The operations the CLI carries out; see the module docstring."""

    mode = "abstract"

    def __init__(self, state: State) -> None:
        self.state = state

    # writes ----------------------------------------------------------------------------------
    def grant_role(self, actor: LocalAccount, role: str, account: str) -> dict[str, Any]:
        raise NotImplementedError

    def revoke_role(self, actor: LocalAccount, role: str, account: str) -> dict[str, Any]:
        raise NotImplementedError

    def register_dataset(
        self, actor: LocalAccount, metadata: DatasetMetadata, subjects: Sequence[str], embargo_end: int
    ) -> dict[str, Any]:
        raise NotImplementedError

    def set_sharing(self, actor: LocalAccount, root: str, tier: Tier, embargo_end: int) -> dict[str, Any]:
        raise NotImplementedError

    def deprecate(self, actor: LocalAccount, root: str, successor: str) -> dict[str, Any]:
        raise NotImplementedError

    def retract(self, actor: LocalAccount, root: str, reason: bytes) -> dict[str, Any]:
        raise NotImplementedError

    def suspend_dataset(self, actor: LocalAccount, root: str, reason: bytes) -> dict[str, Any]:
        raise NotImplementedError

    def reinstate_dataset(self, actor: LocalAccount, root: str) -> dict[str, Any]:
        raise NotImplementedError

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
        raise NotImplementedError

    def request_access(
        self, actor: LocalAccount, root: str, purpose: datause.Purpose, protocol: bytes
    ) -> dict[str, Any]:
        raise NotImplementedError

    def approve_access(self, actor: LocalAccount, request_id: int, conditions: bytes, expiry: int) -> dict[str, Any]:
        raise NotImplementedError

    def deny_access(self, actor: LocalAccount, request_id: int, reason: bytes) -> dict[str, Any]:
        raise NotImplementedError

    def revoke_access(self, actor: LocalAccount, request_id: int, reason: bytes) -> dict[str, Any]:
        raise NotImplementedError

    def override_embargo(self, actor: LocalAccount, root: str, reason: bytes) -> dict[str, Any]:
        raise NotImplementedError

    def suspend_user(self, actor: LocalAccount, user: str, reason: bytes) -> dict[str, Any]:
        raise NotImplementedError

    def reinstate_user(self, actor: LocalAccount, user: str) -> dict[str, Any]:
        raise NotImplementedError

    def record_use(
        self, actor: LocalAccount, root: str, purpose: datause.Purpose, request_id: int, result: bytes
    ) -> dict[str, Any]:
        raise NotImplementedError

    # reads -----------------------------------------------------------------------------------
    def dataset(self, root: str) -> dict[str, Any]:
        raise NotImplementedError

    def versions(self, root: str) -> dict[str, Any]:
        raise NotImplementedError

    def stats(self, root: str) -> dict[str, Any]:
        raise NotImplementedError

    def consent_check(
        self,
        subject: str,
        root: str,
        category: str,
        attributes: Sequence[str],
        disease: str | None,
        grantee: str | None,
    ) -> dict[str, Any]:
        raise NotImplementedError

    def consents(self, subject: str) -> Any:
        raise NotImplementedError

    def consent_fhir(self, subject: str, scope: ConsentScope, grantee: str | None) -> dict[str, Any]:
        raise NotImplementedError

    def verify_dataset(self, root: str) -> dict[str, Any]:
        raise NotImplementedError

    def verify_hash(self, sha256: str, size: int, datasets: Sequence[str] | None) -> dict[str, Any]:
        raise NotImplementedError

    def verify_lineage(self, root: str) -> dict[str, Any]:
        raise NotImplementedError

    def prov(self, root: str) -> dict[str, Any]:
        raise NotImplementedError

    def openlineage(self, root: str) -> list[dict[str, Any]]:
        raise NotImplementedError

    def dataset_trail(self, root: str, limit: int, after: int | None) -> Any:
        raise NotImplementedError

    def user_trail(self, address: str, limit: int, after: int | None) -> Any:
        raise NotImplementedError

    def withdrawal_impact(self, subject: str, lists: Mapping[str, Sequence[str]]) -> dict[str, Any]:
        raise NotImplementedError

    def status(self) -> dict[str, Any]:
        raise NotImplementedError


# =============================================================================================
# local: the library, the CLI as its own relayer
# =============================================================================================


class LocalBackend(Backend):
    mode = "direct"

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
        from ledger.services.audit import dataset_with_metadata

        return dataset_with_metadata(self.ledger, root)

    def versions(self, root: str) -> dict[str, Any]:
        from ledger.services.audit import dataset_versions

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
        from ledger.exports.fhir import consent_to_fhir
        from ledger.services.audit import consent_record

        ledger = self.ledger
        record = consent_record(self.state.indexer(), hex32(ledger.consent_id(subject, scope, grantee)))
        given = [h for h in record.history if h.get("action") == "given"]
        given_at = int(given[-1]["timestamp"]) if given and given[-1].get("timestamp") else None
        return consent_to_fhir(record, now=ledger.now(), given_at=given_at)

    def verify_dataset(self, root: str) -> dict[str, Any]:
        from ledger.services.verification import verify_dataset

        return verify_dataset(self.ledger, root).to_json()

    def verify_hash(self, sha256: str, size: int, datasets: Sequence[str] | None) -> dict[str, Any]:
        from ledger.services.verification import verify_file, verify_lineage

        candidates = list(datasets) if datasets else self.all_datasets()
        result = verify_file(self.ledger, sha256=sha256, size=size, datasets=candidates)
        body: dict[str, Any] = result.to_json()
        if result.dataset is not None:
            report = verify_lineage(self.ledger, result.dataset)
            body["lineage"] = {
                "ok": report.ok,
                "flagged_ancestors": report.flagged_ancestors(),
                "failures": [{"dataset": hex32(r), **f.to_json()} for r, f in report.failures()],
            }
        return body

    def all_datasets(self) -> list[str]:
        """Every registered content root, from the local event index."""
        from ledger.services.audit import all_dataset_roots

        return all_dataset_roots(self.state.indexer())

    def verify_lineage(self, root: str) -> dict[str, Any]:
        from ledger.services.verification import verify_lineage

        return verify_lineage(self.ledger, root).to_json()

    def prov(self, root: str) -> dict[str, Any]:
        from ledger.exports.prov import lineage_to_prov
        from ledger.services.verification import verify_lineage

        return lineage_to_prov(verify_lineage(self.ledger, root))

    def openlineage(self, root: str) -> list[dict[str, Any]]:
        from ledger.exports.openlineage import lineage_to_openlineage
        from ledger.services.verification import verify_lineage

        return lineage_to_openlineage(verify_lineage(self.ledger, root))

    def dataset_trail(self, root: str, limit: int, after: int | None) -> Any:
        return self.state.indexer().dataset_trail(root, limit=limit, after=after)

    def user_trail(self, address: str, limit: int, after: int | None) -> Any:
        return self.state.indexer().user_trail(address, limit=limit, after=after)

    def withdrawal_impact(self, subject: str, lists: Mapping[str, Sequence[str]]) -> dict[str, Any]:
        from ledger.history.indexer import IndexEventSource
        from ledger.services.coverage import withdrawal_impact

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


# =============================================================================================
# service: prepare, sign here, submit, wait
# =============================================================================================


def _ticket(ticket: Mapping[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "status": ticket.get("status"),
        "ticket": ticket.get("id"),
        "tx_hash": ticket.get("tx_hash"),
        "block": ticket.get("block"),
        **extra,
    }


class ServiceBackend(Backend):
    mode = "service"

    @property
    def client(self) -> ServiceClient:
        return self.state.service()

    def _write(self, actor: LocalAccount, operation: str, args: Mapping[str, Any]) -> dict[str, Any]:
        ticket = self.client.write(actor, operation, args, wait=self.state.wait)
        return dict(ticket)

    # writes ----------------------------------------------------------------------------------

    def grant_role(self, actor: LocalAccount, role: str, account: str) -> dict[str, Any]:
        return _ticket(self._write(actor, "grantRole", {"role": hex32(role_id(role)), "account": account}))

    def revoke_role(self, actor: LocalAccount, role: str, account: str) -> dict[str, Any]:
        return _ticket(self._write(actor, "revokeRole", {"role": hex32(role_id(role)), "account": account}))

    def register_dataset(
        self, actor: LocalAccount, metadata: DatasetMetadata, subjects: Sequence[str], embargo_end: int
    ) -> dict[str, Any]:
        from ledger.content.merkle import subject_tree

        subject_root = hex32(subject_tree(subjects).root) if subjects else None
        answer = self.client.register_dataset(
            actor,
            metadata.model_dump(mode="json", exclude_none=True),
            subject_root=subject_root,
            embargo_end=embargo_end,
            wait=self.state.wait,
        )
        return _ticket(
            answer["ticket"],
            content_root=answer["content_root"],
            metadata_cid=answer["metadata_cid"],
            subject_root=subject_root or hex32(ZERO32),
        )

    def set_sharing(self, actor: LocalAccount, root: str, tier: Tier, embargo_end: int) -> dict[str, Any]:
        args = {"contentRoot": root, "tier": int(tier), "embargoEnd": embargo_end}
        return _ticket(self._write(actor, "setSharing", args))

    def deprecate(self, actor: LocalAccount, root: str, successor: str) -> dict[str, Any]:
        return _ticket(self._write(actor, "deprecateDataset", {"contentRoot": root, "successor": successor}))

    def retract(self, actor: LocalAccount, root: str, reason: bytes) -> dict[str, Any]:
        return _ticket(self._write(actor, "retractDataset", {"contentRoot": root, "reasonDigest": hex32(reason)}))

    def suspend_dataset(self, actor: LocalAccount, root: str, reason: bytes) -> dict[str, Any]:
        return _ticket(self._write(actor, "suspendDataset", {"contentRoot": root, "reasonDigest": hex32(reason)}))

    def reinstate_dataset(self, actor: LocalAccount, root: str) -> dict[str, Any]:
        return _ticket(self._write(actor, "reinstateDataset", {"contentRoot": root}))

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
        body: dict[str, Any] = {"kind": kind, "subject": subject}
        if scope is not None:
            body["scope_kind"], body["scope"] = _scope_body(scope)
        optional = {
            "grantee": grantee,
            "purposes": list(purposes) if purposes is not None else None,
            "disease": disease,
            "expiry": expiry,
            "delegate": delegate,
        }
        body.update({k: v for k, v in optional.items() if v is not None})
        ticket = self.client.consent(actor, body, wait=self.state.wait)
        return _ticket(ticket, message=ticket.get("message"))

    def request_access(
        self, actor: LocalAccount, root: str, purpose: datause.Purpose, protocol: bytes
    ) -> dict[str, Any]:
        args = {
            "dataset": root,
            "purpose": purpose.mask,
            "diseaseCode": purpose.disease,
            "protocolDigest": hex32(protocol),
        }
        ticket = self._write(actor, "requestAccess", args)
        request_id = None
        if ticket.get("status") == "mined" and ticket.get("tx_hash"):
            request_id = self._request_id(str(ticket["tx_hash"]), str(ticket.get("to")), actor.address, root, protocol)
        extra: dict[str, Any] = {"request_id": request_id}
        if request_id is None and ticket.get("status") == "mined":
            extra["note"] = "the request id could not be read from the chain; see `medledger audit user-trail`"
        return _ticket(ticket, **extra)

    def _request_id(self, tx_hash: str, registry: str, requester: str, root: str, protocol: bytes) -> int | None:
        """The new request's id from the batch's receipt (the service's ticket does not carry it):
        the AccessRequested log of this registry for this requester, dataset and protocol."""
        from eth_utils.crypto import keccak
        from web3 import HTTPProvider, Web3

        topic0 = "0x" + keccak(text="AccessRequested(uint256,bytes32,address,uint64,uint32,bytes32)").hex()
        try:
            w3 = Web3(HTTPProvider(self.state.settings().rpc_url, request_kwargs={"timeout": 10}))
            receipt = w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
        except Exception:  # the chain is not reachable from here: the id stays unknown
            return None
        found: int | None = None
        for entry in receipt["logs"]:
            topics = ["0x" + bytes(t).hex() for t in entry["topics"]]
            if len(topics) != 4 or topics[0] != topic0 or entry["address"].lower() != registry.lower():
                continue
            if topics[2] != root.lower() or int(topics[3], 16) != int(requester, 16):
                continue
            if bytes(entry["data"])[64:96] != protocol:
                continue
            found = int(topics[1], 16)
        return found

    def approve_access(self, actor: LocalAccount, request_id: int, conditions: bytes, expiry: int) -> dict[str, Any]:
        args = {"requestId": request_id, "conditionsDigest": hex32(conditions), "expiry": expiry}
        return _ticket(self._write(actor, "approveAccess", args))

    def deny_access(self, actor: LocalAccount, request_id: int, reason: bytes) -> dict[str, Any]:
        return _ticket(self._write(actor, "denyAccess", {"requestId": request_id, "reasonDigest": hex32(reason)}))

    def revoke_access(self, actor: LocalAccount, request_id: int, reason: bytes) -> dict[str, Any]:
        return _ticket(self._write(actor, "revokeAccess", {"requestId": request_id, "reasonDigest": hex32(reason)}))

    def override_embargo(self, actor: LocalAccount, root: str, reason: bytes) -> dict[str, Any]:
        return _ticket(self._write(actor, "overrideEmbargo", {"dataset": root, "reasonDigest": hex32(reason)}))

    def suspend_user(self, actor: LocalAccount, user: str, reason: bytes) -> dict[str, Any]:
        return _ticket(self._write(actor, "suspendUser", {"user": user, "reasonDigest": hex32(reason)}))

    def reinstate_user(self, actor: LocalAccount, user: str) -> dict[str, Any]:
        return _ticket(self._write(actor, "reinstateUser", {"user": user}))

    def record_use(
        self, actor: LocalAccount, root: str, purpose: datause.Purpose, request_id: int, result: bytes
    ) -> dict[str, Any]:
        args = {
            "dataset": root,
            "requestId": request_id,
            "purpose": purpose.mask,
            "diseaseCode": purpose.disease,
            "resultDigest": hex32(result),
        }
        return _ticket(self._write(actor, "recordUse", args))

    # reads -----------------------------------------------------------------------------------

    def dataset(self, root: str) -> dict[str, Any]:
        return dict(self.client.dataset(root))

    def versions(self, root: str) -> dict[str, Any]:
        return dict(self.client.versions(root))

    def stats(self, root: str) -> dict[str, Any]:
        return dict(self.client.stats(root))

    def consent_check(
        self,
        subject: str,
        root: str,
        category: str,
        attributes: Sequence[str],
        disease: str | None,
        grantee: str | None,
    ) -> dict[str, Any]:
        answer = self.client.consent_check(
            subject, root, category.upper(), attributes=attributes, disease=disease, grantee=grantee
        )
        return dict(answer)

    def consents(self, subject: str) -> Any:
        return self.client.consents(subject)

    def consent_fhir(self, subject: str, scope: ConsentScope, grantee: str | None) -> dict[str, Any]:
        from ledger.services.coverage import consent_id

        cid = consent_id(subject, scope.kind, scope.value, grantee)
        return dict(self.client.consent_fhir(hex32(cid)))

    def verify_dataset(self, root: str) -> dict[str, Any]:
        return dict(self.client.verify_dataset(root))

    def verify_hash(self, sha256: str, size: int, datasets: Sequence[str] | None) -> dict[str, Any]:
        return dict(self.client.verify_hash(sha256, size, datasets))

    def verify_lineage(self, root: str) -> dict[str, Any]:
        return dict(self.client.lineage_verification(root))

    def prov(self, root: str) -> dict[str, Any]:
        return dict(self.client.prov(root))

    def openlineage(self, root: str) -> list[dict[str, Any]]:
        return list(self.client.openlineage(root))

    def dataset_trail(self, root: str, limit: int, after: int | None) -> Any:
        return self.client.dataset_trail(root, limit=limit, after=after)

    def user_trail(self, address: str, limit: int, after: int | None) -> Any:
        return self.client.user_trail(address, limit=limit, after=after)

    def withdrawal_impact(self, subject: str, lists: Mapping[str, Sequence[str]]) -> dict[str, Any]:
        return dict(self.client.withdrawal_impact(subject, lists))

    def status(self) -> dict[str, Any]:
        try:
            ready = dict(self.client.ready())
        except NodeUnavailable as exc:
            return {"mode": "service", "service": self.state.service_url, "status": "unreachable", "error": exc.message}
        return {"mode": "service", "service": self.state.service_url, **ready}
