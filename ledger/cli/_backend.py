"""Two ways to carry out an operation, with the same results (JSON-ready dicts):

- :class:`~ledger.cli._local.LocalBackend` uses the services layer against the configured chain and
  IPFS node. Writes are signed by the actor and relayed through the forwarder by the CLI itself,
  with the configured relayer key (on a local anvil: its first development account).
- :class:`~ledger.cli._remote.ServiceBackend` asks the service for the typed data, signs it here,
  submits it and waits for the relayed outcome; reads go to the service. It opens no connection
  to the chain or the IPFS node of its own.

Both return the shapes the service's routes return (the services' ``to_json`` forms), so
rendering does not depend on the path taken; tests/parity checks that they agree. This module
holds what both share: the :class:`Backend` protocol they implement and a few helpers; it does not
know the command state, only the :class:`Context` protocol that state satisfies.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from eth_account.signers.local import LocalAccount

from ledger.content.metadata import DatasetMetadata
from ledger.core.classification import Tier
from ledger.core.records import ConsentScope, ScopeKind, hex32
from ledger.rules import datause

if TYPE_CHECKING:
    from ledger.client.http import ServiceClient
    from ledger.core.config import Settings
    from ledger.history.index import Indexer
    from ledger.services.ledger import Ledger
    from ledger.storage.ipfs import IpfsStore


class Context(Protocol):
    """What a backend takes from the running command: the options and the connections, built on
    first use (the command state, :class:`ledger.cli._state.State`, is one)."""

    @property
    def wait(self) -> bool: ...

    @property
    def service_url(self) -> str | None: ...

    def settings(self) -> Settings: ...

    def ledger(self) -> Ledger: ...

    def indexer(self) -> Indexer: ...

    def ipfs(self) -> IpfsStore: ...

    def service(self) -> ServiceClient: ...


def scope_body(scope: ConsentScope) -> tuple[str, str]:
    """A consent scope as the service's ``scope_kind`` and ``scope`` fields."""
    if scope.kind == ScopeKind.HOLDER:
        assert scope.holder_address is not None
        return "holder", scope.holder_address
    return "dataset", hex32(scope.value)


def with_purpose_terms(request: Mapping[str, Any]) -> dict[str, Any]:
    """An access request's JSON with its purpose spelled as DUO terms."""
    body = dict(request)
    body["purpose_terms"] = datause.describe(int(body["purpose"]))
    return body


class Backend(Protocol):
    """The operations the CLI carries out; see the module docstring."""

    # writes ----------------------------------------------------------------------------------
    def grant_role(self, actor: LocalAccount, role: str, account: str) -> dict[str, Any]: ...

    def revoke_role(self, actor: LocalAccount, role: str, account: str) -> dict[str, Any]: ...

    def register_dataset(
        self, actor: LocalAccount, metadata: DatasetMetadata, subjects: Sequence[str], embargo_end: int
    ) -> dict[str, Any]: ...

    def set_sharing(self, actor: LocalAccount, root: str, tier: Tier, embargo_end: int) -> dict[str, Any]: ...

    def deprecate(self, actor: LocalAccount, root: str, successor: str) -> dict[str, Any]: ...

    def retract(self, actor: LocalAccount, root: str, reason: bytes) -> dict[str, Any]: ...

    def suspend_dataset(self, actor: LocalAccount, root: str, reason: bytes) -> dict[str, Any]: ...

    def reinstate_dataset(self, actor: LocalAccount, root: str) -> dict[str, Any]: ...

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
    ) -> dict[str, Any]: ...

    def request_access(
        self, actor: LocalAccount, root: str, purpose: datause.Purpose, protocol: bytes
    ) -> dict[str, Any]: ...

    def approve_access(
        self, actor: LocalAccount, request_id: int, conditions: bytes, expiry: int
    ) -> dict[str, Any]: ...

    def deny_access(self, actor: LocalAccount, request_id: int, reason: bytes) -> dict[str, Any]: ...

    def revoke_access(self, actor: LocalAccount, request_id: int, reason: bytes) -> dict[str, Any]: ...

    def override_embargo(self, actor: LocalAccount, root: str, reason: bytes) -> dict[str, Any]: ...

    def suspend_user(self, actor: LocalAccount, user: str, reason: bytes) -> dict[str, Any]: ...

    def reinstate_user(self, actor: LocalAccount, user: str) -> dict[str, Any]: ...

    def record_use(
        self, actor: LocalAccount, root: str, purpose: datause.Purpose, request_id: int, result: bytes
    ) -> dict[str, Any]: ...

    # reads -----------------------------------------------------------------------------------
    def dataset(self, root: str) -> dict[str, Any]: ...

    def account(self, address: str) -> dict[str, Any]:
        """An account's roles and whether it is suspended: ``{account, roles, suspended}``."""
        ...

    def access_request(self, request_id: int) -> dict[str, Any]:
        """An access request and its decision, with ``purpose_terms`` and ``approval_in_force``."""
        ...

    def versions(self, root: str) -> dict[str, Any]: ...

    def stats(self, root: str) -> dict[str, Any]: ...

    def consent_check(
        self,
        subject: str,
        root: str,
        category: str,
        attributes: Sequence[str],
        disease: str | None,
        grantee: str | None,
    ) -> dict[str, Any]: ...

    def consents(self, subject: str) -> Any: ...

    def consent_fhir(self, subject: str, scope: ConsentScope, grantee: str | None) -> dict[str, Any]: ...

    def verify_dataset(self, root: str) -> dict[str, Any]: ...

    def verify_hash(self, sha256: str, size: int, datasets: Sequence[str] | None) -> dict[str, Any]: ...

    def verify_lineage(self, root: str) -> dict[str, Any]: ...

    def prov(self, root: str) -> dict[str, Any]: ...

    def openlineage(self, root: str) -> list[dict[str, Any]]: ...

    def dataset_trail(self, root: str, limit: int, after: int | None) -> Any: ...

    def user_trail(self, address: str, limit: int, after: int | None) -> Any: ...

    def withdrawal_impact(self, subject: str, lists: Mapping[str, Sequence[str]]) -> dict[str, Any]: ...

    def status(self) -> dict[str, Any]: ...
