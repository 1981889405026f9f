"""The consent rules of ``contracts/ConsentRegistry.sol``, stated once in Python.

Everything off chain that decides whether a consent is in force (the consent filter's recheck,
the index's projection, the relay's offline checks) asks this module, so its answers equal the
contract's. Each piece mirrors one part of the contract:

- :func:`consent_id`, :func:`holder_scope` -- ``consentId`` and the holder scope ``_inForce`` builds
  (the holder's address left-padded to 32 bytes).
- :class:`Consent` -- one ``_consents[id]`` slot (purposes, disease, expiry, state, block) with the
  key fields its ``ConsentGiven`` event carries (subject, scope, grantee).
- :func:`in_force` -- ``_covers`` for one consent, with the grantee match ``_inForce`` implies: given
  or renewed, ``expiry > now``, a valid use (``DataUse.isValidUse``) that ``DataUse.covers`` accepts
  (:func:`ledger.rules.datause.covers`).
- :func:`candidate_ids` -- the four consents ``_inForce`` looks at, in its order: dataset scope then
  holder scope to anyone, then (with a grantee) the same two to that grantee.
- :func:`replay` / :class:`RegistryState` -- the registry's storage rebuilt from its events
  (``ConsentGiven`` replaces the terms, ``ConsentRenewed`` sets the expiry, ``ConsentWithdrawn``
  ends it; ``DelegateAppointed`` / ``DelegateRevoked`` set ``_delegates``), up to a block;
  :meth:`RegistryState.is_in_force` is ``isInForce`` on it.
- :func:`delegate_in_force`, :func:`may_act` -- ``_requireActor`` and the delegate branch of
  ``_verify``: a delegate acts while ``_delegates[subject][delegate] > block.timestamp``.
- :func:`check_grant`, :func:`check_expiry`, :func:`check_delegate`, :func:`check_message` -- the
  validation of ``_grant``, ``_renew`` and ``_appoint`` that needs no chain state (purposes, holder
  scope shape, expiry in the future, delegate address), raising :class:`InvalidInput`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Generic, Protocol, TypeVar

from eth_utils.address import to_checksum_address

from ledger.content.merkle import keccak256
from ledger.core.errors import InvalidInput
from ledger.core.records import ZERO32, ZERO_ADDRESS, ConsentState, ScopeKind, to_bytes32
from ledger.rules import datause

__all__ = [
    "APPOINTED",
    "GIVEN",
    "RENEWED",
    "REVOKED",
    "WITHDRAWN",
    "Consent",
    "ConsentEventLike",
    "RegistryState",
    "candidate_ids",
    "check_delegate",
    "check_expiry",
    "check_grant",
    "check_message",
    "consent_id",
    "delegate_appointed_before",
    "delegate_in_force",
    "holder_scope",
    "in_force",
    "is_active",
    "may_act",
    "replay",
]

#: event kinds, as ``ledger.history.sources.ConsentEventKind`` spells them (a StrEnum compares equal)
GIVEN, RENEWED, WITHDRAWN = "given", "renewed", "withdrawn"
APPOINTED, REVOKED = "delegate-appointed", "delegate-revoked"


class ConsentEventLike(Protocol):
    """What the replay reads of a consent-registry event (``ledger.history.sources.ConsentEvent``
    has these fields; rules sit below history, so they name the shape, not the class)."""

    @property
    def kind(self) -> str: ...
    @property
    def block(self) -> int: ...
    @property
    def log_index(self) -> int: ...
    @property
    def subject(self) -> str: ...
    @property
    def consent_id(self) -> bytes | None: ...
    @property
    def scope_kind(self) -> ScopeKind | None: ...
    @property
    def scope(self) -> bytes | None: ...
    @property
    def grantee(self) -> str | None: ...
    @property
    def purposes(self) -> int | None: ...
    @property
    def disease(self) -> int | None: ...
    @property
    def expiry(self) -> int | None: ...
    @property
    def actor(self) -> str | None: ...
    @property
    def delegate(self) -> str | None: ...


E = TypeVar("E", bound=ConsentEventLike)


def _address(value: str, what: str = "address") -> str:
    try:
        return to_checksum_address(value)
    except ValueError as exc:
        raise InvalidInput(f"{what} {value!r} is not an Ethereum address") from exc


def _address_bytes(value: str, what: str) -> bytes:
    """The 20 bytes of a hex address, validated as ``to_checksum_address`` does, without its
    keccak (consent ids are computed per subject and candidate: this is the hot path)."""
    text = value[2:] if value[:2] in ("0x", "0X") else value
    try:
        raw = bytes.fromhex(text) if len(text) == 40 else b""
    except ValueError:
        raw = b""
    if len(raw) != 20:
        raise InvalidInput(f"{what} {value!r} is not an Ethereum address")
    return raw


def holder_scope(holder: str) -> bytes:
    """The scope of a holder-wide consent: the holder's address left-padded to 32 bytes."""
    return b"\x00" * 12 + _address_bytes(holder, "holder")


def consent_id(subject: str, scope_kind: ScopeKind, scope: bytes, grantee: str | None = None) -> bytes:
    """``ConsentRegistry.consentId``: keccak256(abi.encode(subject, scopeKind, scope, grantee))."""
    return keccak256(
        b"\x00" * 12
        + _address_bytes(subject, "subject")
        + int(scope_kind).to_bytes(32, "big")
        + to_bytes32(scope, "scope")
        + b"\x00" * 12
        + _address_bytes(grantee or ZERO_ADDRESS, "grantee")
    )


def candidate_ids(subject: str, dataset: bytes, holder: str, grantee: str | None = None) -> list[bytes]:
    """The consents ``_inForce`` looks at, in its order: dataset then holder scope, to anyone, then
    (with a grantee other than zero) dataset then holder scope to that grantee."""
    scope = holder_scope(holder)
    ids = [consent_id(subject, ScopeKind.DATASET, dataset), consent_id(subject, ScopeKind.HOLDER, scope)]
    g = grantee or ZERO_ADDRESS
    if _address_bytes(g, "grantee") != bytes(20):
        ids += [consent_id(subject, ScopeKind.DATASET, dataset, g), consent_id(subject, ScopeKind.HOLDER, scope, g)]
    return ids


def is_active(state: ConsentState) -> bool:
    """Given or renewed: the states ``_covers``, ``_renew`` and ``_withdraw`` accept."""
    return state in (ConsentState.GIVEN, ConsentState.RENEWED)


@dataclass(frozen=True)
class Consent:
    """One consent as ``ConsentRegistry._consents[id]`` holds it, with the key fields of its
    ``ConsentGiven`` event. Expiry is not a stored state: :func:`in_force` compares it with time."""

    subject: str = ZERO_ADDRESS
    scope_kind: ScopeKind = ScopeKind.HOLDER
    scope: bytes = ZERO32
    grantee: str = ZERO_ADDRESS
    purposes: int = 0
    disease: int = 0
    expiry: int = 0
    state: ConsentState = ConsentState.NONE
    updated_block: int = 0

    @property
    def id(self) -> bytes:
        return consent_id(self.subject, self.scope_kind, self.scope, self.grantee)


def in_force(
    consent: Consent | None, purpose: datause.Purpose | tuple[int, int], now: int, grantee: str | None = None
) -> bool:
    """Whether ``consent`` covers ``purpose`` (a :class:`Purpose` or a raw ``(use mask, disease)``)
    at time ``now`` for a use by ``grantee``: ``_covers`` plus the grantee match of ``_inForce``
    (a consent to anyone covers every grantee; one to a grantee covers only that one). A malformed
    use is covered by nothing, as in ``_inForce``."""
    if consent is None or not is_active(consent.state) or consent.expiry <= now:
        return False
    mask, disease = (purpose.mask, purpose.disease) if isinstance(purpose, datause.Purpose) else purpose
    if not datause.is_valid_use(mask, disease):
        return False
    if consent.grantee != ZERO_ADDRESS and consent.grantee.lower() != (grantee or ZERO_ADDRESS).lower():
        return False
    return datause.covers(consent.purposes, consent.disease, mask, disease)


def delegate_in_force(expiry: int, now: int) -> bool:
    """A delegate appointed until ``expiry`` (0: never appointed, or revoked) acts at ``now``."""
    return expiry > now


def may_act(subject: str, actor: str, delegate_expiry: int, now: int, *, allow_delegate: bool = True) -> bool:
    """``_requireActor`` / ``_verify``: the subject itself, or (where delegates may act: consents,
    not delegate management) a delegate whose appointment is in force at ``now``."""
    if _address(actor, "actor") == _address(subject, "subject"):
        return True
    return allow_delegate and delegate_in_force(delegate_expiry, now)


@dataclass
class RegistryState(Generic[E]):
    """The consent registry's storage rebuilt from its events (see :func:`replay`)."""

    consents: dict[bytes, Consent] = field(default_factory=dict)
    #: the ConsentGiven event behind each consent's current terms
    given: dict[bytes, E] = field(default_factory=dict)
    #: ``_delegates``: (subject, delegate) -> expiry; revoked ones are removed
    delegates: dict[tuple[str, str], int] = field(default_factory=dict)

    def apply(self, ev: E) -> None:
        """One event, as the contract's write that emitted it changed storage."""
        if ev.kind == APPOINTED and ev.delegate is not None:
            self.delegates[(ev.subject, ev.delegate)] = ev.expiry or 0
            return
        if ev.kind == REVOKED and ev.delegate is not None:
            self.delegates.pop((ev.subject, ev.delegate), None)
            return
        cid = ev.consent_id
        if cid is None:
            return
        if ev.kind == GIVEN:
            self.consents[cid] = Consent(
                subject=ev.subject,
                scope_kind=ScopeKind(ev.scope_kind if ev.scope_kind is not None else ScopeKind.HOLDER),
                scope=ev.scope if ev.scope is not None else ZERO32,
                grantee=ev.grantee or ZERO_ADDRESS,
                purposes=ev.purposes or 0,
                disease=ev.disease or 0,
                expiry=ev.expiry or 0,
                state=ConsentState.GIVEN,
                updated_block=ev.block,
            )
            self.given[cid] = ev
        elif ev.kind == RENEWED and cid in self.consents:
            c = self.consents[cid]
            self.consents[cid] = replace(c, expiry=ev.expiry or 0, state=ConsentState.RENEWED, updated_block=ev.block)
        elif ev.kind == WITHDRAWN and cid in self.consents:
            self.consents[cid] = replace(self.consents[cid], state=ConsentState.WITHDRAWN, updated_block=ev.block)

    def consent(self, cid: bytes) -> Consent | None:
        return self.consents.get(cid)

    def covering(
        self,
        subject: str,
        dataset: bytes,
        holder: str | None,
        purpose: datause.Purpose | tuple[int, int],
        now: int,
        grantee: str | None = None,
    ) -> bytes | None:
        """``_inForce``: the id of the first candidate consent that covers the use, or None.
        ``holder`` None means the dataset is not registered (``isInForce`` answers false)."""
        if holder is None:
            return None
        for cid in candidate_ids(subject, dataset, holder, grantee):
            if in_force(self.consents.get(cid), purpose, now, grantee):
                return cid
        return None

    def is_in_force(
        self,
        subject: str,
        dataset: bytes,
        holder: str | None,
        purpose: datause.Purpose | tuple[int, int],
        now: int,
        grantee: str | None = None,
    ) -> bool:
        """``ConsentRegistry.isInForce`` on this state at time ``now``."""
        return self.covering(subject, dataset, holder, purpose, now, grantee) is not None

    def delegate_expiry(self, subject: str, delegate: str) -> int:
        """``delegateExpiry``: 0 if never appointed or revoked."""
        return self.delegates.get((_address(subject, "subject"), _address(delegate, "delegate")), 0)

    def may_act(self, subject: str, actor: str, now: int, *, allow_delegate: bool = True) -> bool:
        return may_act(subject, actor, self.delegate_expiry(subject, actor), now, allow_delegate=allow_delegate)


def replay(
    history: Iterable[E], until_block: int | None = None, *, before: tuple[int, int] | None = None
) -> RegistryState[E]:
    """The registry's state after every event (in chain order) up to and including
    ``until_block``, or strictly before the position ``before`` = (block, log index)."""
    state: RegistryState[E] = RegistryState()
    for ev in history:
        if until_block is not None and ev.block > until_block:
            continue
        if before is not None and (ev.block, ev.log_index) >= before:
            continue
        state.apply(ev)
    return state


def delegate_appointed_before(history: Iterable[E], subject: str, delegate: str, position: tuple[int, int]) -> int:
    """The expiry of ``delegate``'s appointment by ``subject`` as it stood just before ``position``
    (block, log index), 0 if it was not appointed (or revoked) then."""
    expiry = 0
    s, d = _address(subject, "subject"), _address(delegate, "delegate")
    for ev in history:
        if (ev.block, ev.log_index) >= position:
            break
        if ev.subject != s or ev.delegate != d:
            continue
        if ev.kind == APPOINTED:
            expiry = ev.expiry or 0
        elif ev.kind == REVOKED:
            expiry = 0
    return expiry


# ---------------------------------------------------------------------------------------------- offline checks


def check_expiry(expiry: int, now: int) -> None:
    """``ExpiryNotInFuture`` of ``_grant``, ``_renew`` and ``_appoint``."""
    if int(expiry) <= now:
        raise InvalidInput("the expiry is not in the future", hint="choose a later expiry")


def check_grant(purposes: int, disease: int, scope_kind: ScopeKind | int, scope: bytes | str) -> bool:
    """The checks of ``_grant`` that need no chain state: ``InvalidPurposes`` (``isValidGrant``)
    and the holder-scope shape of ``InvalidScope``. Returns whether the scope is a dataset, whose
    registration only the chain can confirm."""
    if not datause.is_valid_grant(int(purposes), int(disease)):
        raise InvalidInput(
            "the consent's purposes or disease code are not valid",
            hint="at least one of NRES, GRU, HMB, DS (with a MONDO code), POA",
        )
    raw = to_bytes32(scope, "scope")
    if int(scope_kind) == ScopeKind.HOLDER:
        if raw[:12] != bytes(12) or raw == ZERO32:
            raise InvalidInput("a holder scope must be the holder's address")
        return False
    if int(scope_kind) != ScopeKind.DATASET:
        raise InvalidInput(f"scope kind {scope_kind} is neither holder (0) nor dataset (1)")
    return True


def check_delegate(subject: str, delegate: str) -> None:
    """``InvalidDelegate`` of ``_appoint``: not the zero address, not the subject itself."""
    d = _address(delegate, "delegate")
    if d == ZERO_ADDRESS or d == _address(subject, "subject"):
        raise InvalidInput("a delegate cannot be the subject itself or the zero address")


def check_message(kind: str, message: Mapping[str, Any], now: int) -> bool:
    """The offline checks of a signed consent message (``Grant``, ``Renew``, ``Withdraw``,
    ``AppointDelegate``, ``RevokeDelegate`` fields as signed): purposes and holder-scope shape of a
    grant, expiry in the future for grants, renewals and appointments. Returns whether the answer
    also depends on chain state the message does not carry (a dataset scope's registration)."""
    needs_chain = False
    if kind == "Grant":
        needs_chain = check_grant(message["purposes"], message["diseaseCode"], message["scopeKind"], message["scope"])
    if kind in ("Grant", "Renew", "AppointDelegate"):
        check_expiry(int(message["expiry"]), now)
    return needs_chain
