"""Fixtures for the contract tests (brownie on anvil).

Every module deploys a fresh ledger (brownie's module_isolation resets the chain around each
module); every test runs in an anvil snapshot that is reverted afterwards (function isolation).
Parties are anvil's unlocked accounts: admin 0, holder 1, reviewer 2, user 3, auditor 4,
subject 5, delegate 6, stranger 7, relayer 8.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from brownie import (
    AccessRegistry,
    ConsentRegistry,
    DatasetRegistry,
    LedgerForwarder,
    LedgerRoles,
    UsageRegistry,
    accounts,
    history,
    web3,
)
from chain_helpers import (
    AUDITOR_ROLE,
    HOLDER_ROLE,
    REVIEWER_ROLE,
    USER_ROLE,
    ZERO32,
    Tier,
    b32,
)


def pytest_configure(config):
    # brownie's own isolation fixtures call rpc.snapshot/revert and warn about it
    config.addinivalue_line("filterwarnings", r"ignore:rpc\.\w+ should not be called directly:FutureWarning")


@pytest.fixture(scope="module", autouse=True)
def _module_isolation(module_isolation):
    yield


def _rpc(method, params=()):
    response = web3.provider.make_request(method, list(params))
    if "error" in response:
        raise RuntimeError(f"{method}: {response['error']}")
    return response["result"]


@pytest.fixture(autouse=True)
def _fn_isolation(module_isolation):
    """Each test runs in an anvil snapshot that is reverted afterwards.

    This is brownie's fn_isolation without its bookkeeping: brownie's chain.revert() runs a full
    gc.collect() and an eth_getCode per known contract on every revert (about 0.1 s per test here,
    most of the suite's run time). anvil's evm_revert restores state, blocks and time; no test
    deploys contracts inside a test function, so of brownie's registry only the transaction history
    needs trimming.
    """
    snapshot = _rpc("evm_snapshot")
    yield
    _rpc("evm_revert", [snapshot])
    # brownie picks the next nonce from its transaction history: forget the reverted transactions
    history._revert(web3.eth.block_number)


@pytest.fixture(scope="module")
def admin():
    return accounts[0]


@pytest.fixture(scope="module")
def holder():
    return accounts[1]


@pytest.fixture(scope="module")
def reviewer():
    return accounts[2]


@pytest.fixture(scope="module")
def user():
    return accounts[3]


@pytest.fixture(scope="module")
def auditor():
    return accounts[4]


@pytest.fixture(scope="module")
def subject():
    return accounts[5]


@pytest.fixture(scope="module")
def delegate():
    return accounts[6]


@pytest.fixture(scope="module")
def stranger():
    return accounts[7]


@pytest.fixture(scope="module")
def relayer():
    return accounts[8]


@pytest.fixture(scope="module")
def parties(admin, holder, reviewer, user, auditor, subject, delegate, stranger):
    return {
        "admin": admin,
        "holder": holder,
        "reviewer": reviewer,
        "user": user,
        "auditor": auditor,
        "subject": subject,
        "delegate": delegate,
        "stranger": stranger,
    }


def deploy_ledger(deployer, admin_account):
    forwarder = LedgerForwarder.deploy({"from": deployer})
    roles = LedgerRoles.deploy(forwarder, admin_account, {"from": deployer})
    datasets = DatasetRegistry.deploy(forwarder, roles, {"from": deployer})
    consent = ConsentRegistry.deploy(forwarder, datasets, {"from": deployer})
    access = AccessRegistry.deploy(forwarder, roles, datasets, {"from": deployer})
    usage = UsageRegistry.deploy(forwarder, roles, datasets, access, {"from": deployer})
    return SimpleNamespace(
        forwarder=forwarder, roles=roles, datasets=datasets, consent=consent, access=access, usage=usage
    )


@pytest.fixture(scope="module")
def ledger(module_isolation, admin, holder, reviewer, user, auditor):
    deployed = deploy_ledger(admin, admin)
    for role, account in ((HOLDER_ROLE, holder), (REVIEWER_ROLE, reviewer), (USER_ROLE, user), (AUDITOR_ROLE, auditor)):
        deployed.roles.grantRole(role, account, {"from": admin})
    return deployed


@pytest.fixture(scope="module")
def forwarder(ledger):
    return ledger.forwarder


@pytest.fixture(scope="module")
def roles(ledger):
    return ledger.roles


@pytest.fixture(scope="module")
def datasets(ledger):
    return ledger.datasets


@pytest.fixture(scope="module")
def consent(ledger):
    return ledger.consent


@pytest.fixture(scope="module")
def access(ledger):
    return ledger.access


@pytest.fixture(scope="module")
def usage(ledger):
    return ledger.usage


class Registrar:
    """Registers datasets with unique content roots."""

    def __init__(self, datasets):
        self.datasets = datasets
        self.counter = 0

    def __call__(
        self,
        sender,
        *,
        parents=(),
        tier=Tier.OPEN,
        classification=11,
        embargo_end=0,
        subject_root=ZERO32,
        activity=ZERO32,
        root=None,
        metadata=None,
    ):
        self.counter += 1
        root = root if root is not None else b32(f"dataset-{self.counter}")
        metadata = metadata if metadata is not None else b32(f"metadata-{self.counter}")
        parents = sorted(str(p).lower() for p in parents)
        self.datasets.register(
            root, metadata, parents, activity, tier, classification, embargo_end, subject_root, {"from": sender}
        )
        return root


@pytest.fixture(scope="module")
def register(datasets):
    return Registrar(datasets)
