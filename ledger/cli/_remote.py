"""The CLI's service backend: typed data from the service, signed here, submitted and waited for;
reads from the service (see :mod:`ledger.cli._backend`). It opens no chain or IPFS connection."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from eth_account.signers.local import LocalAccount

from ledger.cli._backend import Backend, Context, scope_body, with_purpose_terms
from ledger.client.http import ServiceClient
from ledger.content.merkle import subject_tree
from ledger.content.metadata import DatasetMetadata
from ledger.core.classification import Tier
from ledger.core.errors import NodeUnavailable
from ledger.core.records import ZERO32, ConsentScope, hex32
from ledger.rules import datause
from ledger.rules.consent import consent_id
from ledger.services.ledger import role_id


def _ticket(ticket: Mapping[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "status": ticket.get("status"),
        "ticket": ticket.get("id"),
        "tx_hash": ticket.get("tx_hash"),
        "block": ticket.get("block"),
        **extra,
    }


class ServiceBackend(Backend):
    """Reads and writes through the service; keys stay here, no chain connection of its own."""

    def __init__(self, state: Context) -> None:
        self.state = state

    @property
    def client(self) -> ServiceClient:
        return self.state.service()

    def _write(self, actor: LocalAccount, operation: str, args: Mapping[str, Any]) -> dict[str, Any]:
        return self.client.write(actor, operation, args, wait=self.state.wait)

    # writes ----------------------------------------------------------------------------------

    def grant_role(self, actor: LocalAccount, role: str, account: str) -> dict[str, Any]:
        return _ticket(self._write(actor, "grantRole", {"role": hex32(role_id(role)), "account": account}))

    def revoke_role(self, actor: LocalAccount, role: str, account: str) -> dict[str, Any]:
        return _ticket(self._write(actor, "revokeRole", {"role": hex32(role_id(role)), "account": account}))

    def register_dataset(
        self, actor: LocalAccount, metadata: DatasetMetadata, subjects: Sequence[str], embargo_end: int
    ) -> dict[str, Any]:
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
            body["scope_kind"], body["scope"] = scope_body(scope)
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
        if ticket.get("status") == "mined":
            request_id = self._request_id(ticket, actor.address, root, protocol)
        extra: dict[str, Any] = {"request_id": request_id}
        if request_id is None and ticket.get("status") == "mined":
            extra["note"] = "the request id could not be learnt from the service; see `medledger audit user-trail`"
        return _ticket(ticket, **extra)

    def _request_id(self, ticket: Mapping[str, Any], requester: str, root: str, protocol: bytes) -> int | None:
        """The new request's id: what the relay recorded for the ticket or, for a ticket settled
        without it, the requester's AccessRequested event of that transaction in the service's
        index (for this dataset and protocol)."""
        recorded = (ticket.get("result") or {}).get("request_id")
        if recorded is not None:
            return int(recorded)
        tx_hash = str(ticket.get("tx_hash") or "").lower()
        trail = self.client.user_trail(requester, limit=1000)
        found: int | None = None
        for item in trail.get("items", []):
            args = item.get("args") or {}
            if item.get("event") != "AccessRequested" or str(item.get("tx_hash") or "").lower() != tx_hash:
                continue
            if str(args.get("dataset", "")).lower() != root.lower():
                continue
            if str(args.get("protocolDigest", hex32(protocol))).lower() != hex32(protocol):
                continue
            found = int(args["requestId"])
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
        return self.client.dataset(root)

    def account(self, address: str) -> dict[str, Any]:
        answer = self.client.account(address)
        return {"account": address, "roles": list(answer["roles"]), "suspended": bool(answer["suspended"])}

    def access_request(self, request_id: int) -> dict[str, Any]:
        return with_purpose_terms(self.client.access_request(request_id))

    def versions(self, root: str) -> dict[str, Any]:
        return self.client.versions(root)

    def stats(self, root: str) -> dict[str, Any]:
        return self.client.stats(root)

    def consent_check(
        self,
        subject: str,
        root: str,
        category: str,
        attributes: Sequence[str],
        disease: str | None,
        grantee: str | None,
    ) -> dict[str, Any]:
        return self.client.consent_check(
            subject, root, category.upper(), attributes=attributes, disease=disease, grantee=grantee
        )

    def consents(self, subject: str) -> Any:
        return self.client.consents(subject)

    def consent_fhir(self, subject: str, scope: ConsentScope, grantee: str | None) -> dict[str, Any]:
        cid = consent_id(subject, scope.kind, scope.value, grantee)
        return self.client.consent_fhir(hex32(cid))

    def verify_dataset(self, root: str) -> dict[str, Any]:
        return self.client.verify_dataset(root)

    def verify_hash(self, sha256: str, size: int, datasets: Sequence[str] | None) -> dict[str, Any]:
        return self.client.verify_hash(sha256, size, datasets)

    def verify_lineage(self, root: str) -> dict[str, Any]:
        return self.client.lineage_verification(root)

    def prov(self, root: str) -> dict[str, Any]:
        return self.client.prov(root)

    def openlineage(self, root: str) -> list[dict[str, Any]]:
        return self.client.openlineage(root)

    def dataset_trail(self, root: str, limit: int, after: int | None) -> Any:
        return self.client.dataset_trail(root, limit=limit, after=after)

    def user_trail(self, address: str, limit: int, after: int | None) -> Any:
        return self.client.user_trail(address, limit=limit, after=after)

    def withdrawal_impact(self, subject: str, lists: Mapping[str, Sequence[str]]) -> dict[str, Any]:
        return self.client.withdrawal_impact(subject, lists)

    def status(self) -> dict[str, Any]:
        try:
            ready = self.client.ready()
        except NodeUnavailable as exc:
            return {"mode": "service", "service": self.state.service_url, "status": "unreachable", "error": exc.message}
        return {"mode": "service", "service": self.state.service_url, **ready}
