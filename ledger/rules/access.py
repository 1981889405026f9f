"""Embargo, embargo override and usability: the access rules of contracts/AccessRegistry.sol.

These are the one Python statement of the rules; off-chain answers (the index's projection,
service-side checks) use them so that they equal the contract's.

- A dataset is **under embargo** while its embargo end lies after the block's time
  (``embargoEnd > block.timestamp``); 0 means no embargo.
- An auditor's **override** covers the embargo end it was made for, and nothing else: the contract
  keeps that end (``_overriddenEmbargo``) and ``embargoOverridden`` is true while the dataset's
  current embargo end is non-zero and equal to it. A new embargo end set by the holder is not
  overridden; setting the old end again brings the override back.
- Under an embargo that is not overridden only the holder decides on access requests.
- A dataset is **usable** (access requests, approvals and uses are accepted) while it is active or
  deprecated; suspended and retracted datasets are not (``_usableDataset``).
"""

from __future__ import annotations

from ledger.core.classification import DatasetStatus, Tier

#: statuses the AccessRegistry accepts requests, approvals and uses for
USABLE_STATUSES = frozenset({DatasetStatus.ACTIVE, DatasetStatus.DEPRECATED})


def embargo_in_force(embargo_end: int, now: int) -> bool:
    """Whether an embargo ending at ``embargo_end`` holds at time ``now`` (0: no embargo)."""
    return embargo_end > now


def override_applies(overridden_end: int, embargo_end: int) -> bool:
    """``AccessRegistry.embargoOverridden``: whether an override made for the embargo ending at
    ``overridden_end`` (0: never overridden) covers the dataset's current ``embargo_end``."""
    return embargo_end != 0 and overridden_end == embargo_end


def holder_decides_alone(embargo_end: int, overridden_end: int, now: int) -> bool:
    """Whether only the holder may approve or deny at ``now``: an embargo in force that no
    override covers (``AccessRegistry._requireDeciderFor``)."""
    return embargo_in_force(embargo_end, now) and overridden_end != embargo_end


def can_override(embargo_end: int, overridden_end: int, now: int) -> bool:
    """The embargo part of whether an auditor's override at ``now`` is accepted: an embargo is in
    force and is not overridden already (``overrideEmbargo`` reverts ``NotEmbargoed`` otherwise).
    The contract checks first that the dataset exists and is usable (``DatasetNotFound``,
    ``DatasetNotUsable``): combine with :func:`dataset_usable` for the whole answer."""
    return holder_decides_alone(embargo_end, overridden_end, now)


def dataset_usable(status: int) -> bool:
    """Whether a dataset of this status takes access requests, approvals and uses."""
    return status in USABLE_STATUSES


def requestable(status: int, tier: int) -> bool:
    """Whether an access request may be filed for a dataset (usable and of the controlled tier).
    The requester's own suspension (``UserSuspended``, checked first by the contract) is not part
    of it."""
    return dataset_usable(status) and tier == Tier.CONTROLLED
