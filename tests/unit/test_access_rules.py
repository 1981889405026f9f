"""The access rules (ledger/rules/access.py) without a node: embargo in force, the override and
when it lapses, who decides, usability; and the index's projection of the override, fed
synthetic events, against a literal model of AccessRegistry's storage."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.core.classification import DatasetStatus, Tier
from ledger.history.events import LedgerEvent
from ledger.history.index import IndexIdentity, IndexStore
from ledger.rules import access

T = 1_000_000
END = T + 86_400
LATER = T + 2 * 86_400


def test_an_embargo_holds_until_its_end() -> None:
    assert access.embargo_in_force(END, T)
    assert access.embargo_in_force(END, END - 1)
    assert not access.embargo_in_force(END, END)  # the contract: embargoEnd > block.timestamp
    assert not access.embargo_in_force(0, T)


def test_an_override_covers_the_embargo_it_was_made_for_only() -> None:
    assert access.override_applies(END, END)
    assert not access.override_applies(END, LATER)  # the holder set a new embargo end
    assert not access.override_applies(0, END)  # never overridden
    assert not access.override_applies(0, 0)  # no embargo: nothing is overridden
    assert not access.override_applies(END, 0)
    # not a matter of time: an override of an embargo that has ended still reads true
    assert access.override_applies(T - 1, T - 1)


def test_under_an_embargo_only_the_holder_decides_unless_overridden() -> None:
    assert access.holder_decides_alone(END, 0, T)
    assert not access.holder_decides_alone(END, END, T)
    assert access.holder_decides_alone(LATER, END, T)  # the override was for another end
    assert not access.holder_decides_alone(END, 0, END)  # ended
    assert not access.holder_decides_alone(0, 0, T)


def test_an_override_is_accepted_once_per_embargo_in_force() -> None:
    assert access.can_override(END, 0, T)
    assert not access.can_override(END, END, T)  # already overridden
    assert access.can_override(LATER, END, T)  # a new embargo may be overridden again
    assert not access.can_override(END, 0, END)  # not under embargo
    assert not access.can_override(0, 0, T)


@pytest.mark.parametrize("status", list(DatasetStatus))
def test_usable_while_active_or_deprecated(status: DatasetStatus) -> None:
    usable = status in (DatasetStatus.ACTIVE, DatasetStatus.DEPRECATED)
    assert access.dataset_usable(status) is usable
    assert access.dataset_usable(int(status)) is usable
    for tier in Tier:
        assert access.requestable(status, tier) is (usable and tier == Tier.CONTROLLED)


# ---------------------------------------------------------------------------------------------
# the rules and the index's projection against a literal model of the contract's storage


@dataclass
class _Registry:
    """DatasetRegistry's embargo end and AccessRegistry's ``_overriddenEmbargo``, line by line."""

    embargo_end: int
    overridden: int = 0

    def set_sharing(self, end: int) -> None:
        self.embargo_end = end

    def override(self, now: int) -> bool:
        if self.embargo_end <= now or self.overridden == self.embargo_end:
            return False  # reverts NotEmbargoed
        self.overridden = self.embargo_end
        return True

    def embargo_overridden(self) -> bool:
        return self.embargo_end != 0 and self.overridden == self.embargo_end


ROOT = "0x" + "ab" * 32
HOLDER = "0x" + "11" * 20
AUDITOR = "0x" + "22" * 20
ZERO = "0x" + "00" * 32

ends = st.sampled_from([0, T - 10, END, LATER, LATER + 1])
steps = st.lists(
    st.one_of(st.tuples(st.just("sharing"), ends), st.tuples(st.just("override"), st.just(0))), max_size=12
)


def _event(name: str, block: int, args: dict[str, object], contract: str) -> LedgerEvent:
    return LedgerEvent(contract, name, block, T, "0x" + f"{block:064x}", 0, args)


@settings(max_examples=60, deadline=None)
@given(ends, steps)
def test_the_projection_follows_the_contract(first: int, ops: list[tuple[str, int]]) -> None:
    model = _Registry(first)
    events = [
        _event(
            "DatasetRegistered",
            1,
            {
                "contentRoot": ROOT,
                "holder": HOLDER,
                "metadataDigest": ZERO,
                "activityDigest": ZERO,
                "subjectRoot": ZERO,
                "parents": [],
                "tier": 2,
                "classification": 0x0101,
                "embargoEnd": first,
            },
            "DatasetRegistry",
        )
    ]
    expected = [model.embargo_overridden()]
    for op, end in ops:
        block = len(events) + 1
        if op == "sharing":
            model.set_sharing(end)
            events.append(
                _event("SharingChanged", block, {"contentRoot": ROOT, "tier": 2, "embargoEnd": end}, "DatasetRegistry")
            )
        else:
            if not model.override(T):
                continue  # the call reverts: no event
            events.append(
                _event(
                    "EmbargoOverridden",
                    block,
                    {"dataset": ROOT, "auditor": AUDITOR, "reasonDigest": ZERO},
                    "AccessRegistry",
                )
            )
        assert access.override_applies(model.overridden, model.embargo_end) is model.embargo_overridden()
        assert access.can_override(model.embargo_end, model.overridden, T) is (
            model.embargo_end > T and model.overridden != model.embargo_end
        )
        expected.append(model.embargo_overridden())
    with tempfile.TemporaryDirectory() as tmp, IndexStore(Path(tmp) / "index.sqlite3") as store:
        store.reset(IndexIdentity(chain_id=1, deploy_block=1, addresses={}))
        seen = []
        for ev in events:  # one block at a time, reading the row after each
            store.ingest([ev], from_block=ev.block_number, to_block=ev.block_number)
            row = store.dataset(ROOT)
            assert row is not None
            seen.append(row["embargo_overridden"])
        assert seen == expected
        store.reproject()  # re-deriving the rows from the stored events gives the same
        last = store.dataset(ROOT)
        assert last is not None
        assert last["embargo_overridden"] is expected[-1] and last["embargo_end"] == model.embargo_end
