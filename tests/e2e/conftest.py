"""End-to-end fixtures: the contracts deployed on the session's real anvil and js-ipfs, the
service as a uvicorn process with the app's own lifespan, and direct chain reads to check it.

Run: ``.venv/bin/python -m pytest -p no:pytest-brownie tests/e2e -q``
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest

from ledger.chain.client import ChainClient
from ledger.services.ledger import Ledger
from ledger.storage.ipfs import IpfsStore

from .helpers import ServiceProcess

if TYPE_CHECKING:
    from ledger.core.config import Settings


@pytest.fixture(scope="session")
def e2e_settings(deployed_settings: Callable[..., Settings]) -> Settings:
    return deployed_settings("e2e-data", batch_delay=0.05)


@pytest.fixture(scope="session")
def chain(e2e_settings: Settings) -> Iterator[Ledger]:
    """Direct reads of the chain and IPFS, independent of the service under test."""
    with IpfsStore.from_settings(e2e_settings) as store:
        yield Ledger(e2e_settings, ChainClient(e2e_settings), ipfs=store)


@pytest.fixture(scope="session")
def service(e2e_settings: Settings) -> Iterator[ServiceProcess]:
    """The service under test, for the whole session."""
    with ServiceProcess(e2e_settings) as proc:
        yield proc


@pytest.fixture(scope="session")
def admin_key(e2e_settings: Settings) -> str:
    return e2e_settings.relayer_private_key()
