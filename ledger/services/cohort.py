"""What the consent-filter services share: the cohort's subject list and its Merkle root, the
block a question is pinned to, and the consent rule answered two ways at that block -- by the
contract itself (``inForceBatch``, an ``eth_call`` pinned to the block) and from the event history
replayed with :mod:`ledger.rules.consent` (``ConsentRegistry._inForce`` off chain).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Any

import rfc8785
from eth_utils.address import to_checksum_address

from ledger.content.merkle import subject_tree
from ledger.core.errors import InvalidInput
from ledger.core.records import ZERO32, ZERO_ADDRESS, hex32
from ledger.history.sources import ConsentEvent
from ledger.rules import consent, datause
from ledger.services.ledger import Ledger

#: subjects per ``inForceBatch`` eth_call
DEFAULT_CHUNK = 500


def address(value: str, what: str = "address") -> str:
    try:
        return to_checksum_address(value)
    except ValueError as exc:
        raise InvalidInput(f"{what} {value!r} is not an Ethereum address") from exc


def in_force_from_history(
    history: Iterable[ConsentEvent],
    subjects: Sequence[str],
    dataset: bytes,
    holder: str,
    purpose: datause.Purpose,
    *,
    block: int,
    timestamp: int,
    grantee: str | None = None,
) -> dict[str, ConsentEvent | None]:
    """``ConsentRegistry._inForce`` evaluated off chain from the event history: for each subject,
    the Given event of the consent that covers ``purpose`` on ``dataset`` (of ``holder``) at
    ``block`` whose timestamp is ``timestamp``, or None if no consent is in force."""
    state = consent.replay(history, block)
    out: dict[str, ConsentEvent | None] = {}
    for subject in subjects:
        s = address(subject, "subject")
        cid = state.covering(s, dataset, holder, purpose, timestamp, grantee)
        out[s] = None if cid is None else state.given[cid]
    return out


def filter_parameters_digest(dataset: bytes, purpose: datause.Purpose, block: int, grantee: str | None = None) -> bytes:
    """sha256 of the canonical JSON of every parameter of a consent filter, grantee included
    (the activity's ``parameters_digest``): the metadata schema has no grantee field, so a
    grantee-specific filter is recognised by this digest."""
    doc: dict[str, str | int] = {
        "dataset": hex32(dataset),
        "purpose_mask": purpose.mask,
        "disease_code": purpose.disease,
        "block_number": block,
        "grantee": address(grantee or ZERO_ADDRESS, "grantee"),
    }
    return hashlib.sha256(rfc8785.dumps(doc)).digest()


def purpose_json(purpose: datause.Purpose) -> dict[str, Any]:
    return {
        "mask": purpose.mask,
        "terms": datause.describe(purpose.mask),
        "disease": datause.disease_label(purpose.disease),
    }


def grantee_json(grantee: str | None) -> str | None:
    return None if grantee is None or grantee == ZERO_ADDRESS else grantee


def normalise_subjects(subjects: Iterable[str]) -> list[str]:
    out = [address(s, "subject") for s in subjects]
    if len(set(out)) != len(out):
        raise InvalidInput("the subject list contains a duplicate address")
    return out


def root_of(subjects: Sequence[str]) -> bytes:
    return subject_tree(subjects).root if subjects else ZERO32


def block_timestamp(ledger: Ledger, block: int) -> int:
    return int(ledger.client.w3.eth.get_block(block)["timestamp"])


def pin_block(ledger: Ledger, block: int | None) -> int:
    head = int(ledger.client.w3.eth.block_number)
    if block is None:
        return max(0, head - ledger.settings.confirmations)
    if not 0 <= block <= head:
        raise InvalidInput(f"block {block} is not between 0 and the chain head {head}")
    return block


def contract_in_force(
    ledger: Ledger,
    subjects: Sequence[str],
    dataset: bytes,
    purpose: datause.Purpose,
    grantee: str | None,
    block: int,
    chunk: int,
) -> list[bool]:
    """``inForceBatch`` at ``block``, ``chunk`` subjects per eth_call."""
    g = address(grantee or ZERO_ADDRESS, "grantee")
    out: list[bool] = []
    for i in range(0, len(subjects), chunk):
        part = list(subjects[i : i + chunk])
        fn = ledger.consents.functions.inForceBatch(part, dataset, purpose.mask, purpose.disease, g)
        out += [bool(x) for x in ledger.client.call(fn, block)]
    return out
