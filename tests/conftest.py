"""Shared fixtures: real anvil and js-ipfs nodes on free ports in a temporary directory, and the
test tiers.

Importing this file starts nothing: the node fixtures are session-scoped and start on first use, and
stop at the end of the session (they are also tied to the test process, so a killed run leaks no daemon).

Tiers. Every collected test is marked either ``unit`` (needs no node) or ``node`` (needs anvil or
js-ipfs), automatically: a test is a node test when its fixture closure holds a node fixture
(``anvil_node``, ``ipfs_node`` or anything built on them), when it is marked ``node`` explicitly (for
tests that start nodes in a child process), or when its code or its fixtures' code (and the test
helpers they call) constructs a node. ``pytest -m unit`` is the fast tier (``./test.sh --fast``).
While a unit test runs, starting a node fails the test, so a misclassified test cannot slow the
tier down unnoticed.

Contract tests (tests/contracts) run under ``brownie test``; library tests run with plain pytest, e.g.
``pytest -p no:pytest-brownie tests/ledger`` (without the flag brownie's plugin also loads the brownie
project and starts its own anvil, which needs the environment of scripts/bootstrap.sh).
"""

from __future__ import annotations

import inspect
import json
import os
import re
import subprocess
import time
import types
import urllib.request
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ledger.chain.deployment import ensure_deployed
from ledger.core.config import Settings, load_settings
from ledger.devstack.nodes import AnvilNode, IpfsNode, free_port, free_ports
from ledger.storage.ipfs import IpfsStore

TESTS = Path(__file__).resolve().parent
CONTRACT_TESTS = TESTS / "contracts"

#: fixtures that are (or start) a node; whatever depends on them is a node test too
NODE_FIXTURES = frozenset({"anvil_node", "ipfs_node", "isolated_chain"})

#: code that starts a node: the node classes, or the npm binaries spawned by hand
_STARTS_A_NODE = re.compile(r"\b(?:AnvilNode|IpfsNode|LocalStack)\(|[\"'/](?:anvil|jsipfs)[\"']")
#: a child process's arguments that name the node classes (python -c code that may start one)
_NAMES_A_NODE = re.compile(r"\b(?:AnvilNode|IpfsNode|LocalStack)\b")


def pytest_configure(config: pytest.Config) -> None:
    # ipfshttpclient 0.7 passes urllib3 a deprecated argument; ledger.ipfs filters the warning, but
    # pytest resets filters per test
    config.addinivalue_line("filterwarnings", "ignore:The 'strict' parameter is no longer needed:FutureWarning")
    # the markers (unit, node, moves_chain_time) are registered in pyproject.toml


# ---------------------------------------------------------------------------------------------
# tiers
# ---------------------------------------------------------------------------------------------


def _own_code(obj: Any) -> bool:
    """A function or class of the test suite (not the product, not a library)."""
    try:
        source_file = inspect.getsourcefile(obj)
    except TypeError:
        return False
    return source_file is not None and Path(source_file).resolve().is_relative_to(TESTS)


def _referenced(code: types.CodeType) -> Iterator[str]:
    yield from code.co_names
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _referenced(const)


def _starts_a_node(obj: Any, seen: set[int]) -> bool:
    """Whether ``obj``'s source, or that of the suite's functions and classes it names, starts a node."""
    obj = inspect.unwrap(obj)
    if id(obj) in seen or not _own_code(obj):
        return False
    seen.add(id(obj))
    try:
        source = inspect.getsource(obj)
    except (OSError, TypeError):
        return False
    if _STARTS_A_NODE.search(source):
        return True
    if inspect.isclass(obj):
        members = [m for m in vars(obj).values() if inspect.isfunction(m)]
        return any(_starts_a_node(m, seen) for m in members)
    code = getattr(obj, "__code__", None)
    namespace = getattr(obj, "__globals__", {})
    if code is None:
        return False
    return any(_starts_a_node(namespace[name], seen) for name in set(_referenced(code)) if name in namespace)


def _needs_a_node(item: pytest.Item) -> bool:
    if item.get_closest_marker("node") is not None or item.path.is_relative_to(CONTRACT_TESTS):
        return True  # the contract tests run on the anvil brownie starts
    names = set(getattr(item, "fixturenames", ()))
    if names & NODE_FIXTURES:
        return True
    seen: set[int] = set()
    function = getattr(item, "function", None)
    if function is not None and _starts_a_node(function, seen):
        return True
    info = getattr(item, "_fixtureinfo", None)
    definitions: dict[str, Sequence[Any]] = getattr(info, "name2fixturedefs", {}) if info is not None else {}
    return any(_starts_a_node(fixture.func, seen) for defs in definitions.values() for fixture in defs)


@pytest.hookimpl(tryfirst=True)  # before -m selects on the markers set here
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        item.add_marker(pytest.mark.node if _needs_a_node(item) else pytest.mark.unit)


class _NodeStartRefused(Exception):
    pass


def _refuse(what: str) -> None:
    raise _NodeStartRefused(
        f"a unit test started {what}: mark it `node` (pytest.mark.node) or use a node fixture"
    )


class _GuardedPopen(subprocess.Popen):  # type: ignore[type-arg]
    """subprocess.Popen that refuses to run anvil, js-ipfs or Python code that starts them."""

    def __init__(self, args: Any, *rest: Any, **kwargs: Any) -> None:
        argv = [os.fspath(a) for a in args] if isinstance(args, (list, tuple)) else [os.fspath(args)]
        if argv and Path(argv[0]).name in {"anvil", "jsipfs"}:
            _refuse(Path(argv[0]).name)
        if any(_NAMES_A_NODE.search(a) for a in argv):
            _refuse("a process that starts a node")
        super().__init__(args, *rest, **kwargs)


@contextmanager
def _no_node_starts() -> Iterator[None]:
    def refuse_anvil(self: AnvilNode) -> AnvilNode:
        _refuse("anvil")
        return self

    def refuse_ipfs(self: IpfsNode) -> IpfsNode:
        _refuse("js-ipfs")
        return self

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(AnvilNode, "start", refuse_anvil)
        patch.setattr(IpfsNode, "start", refuse_ipfs)
        patch.setattr(subprocess, "Popen", _GuardedPopen)
        yield


def _guard(item: pytest.Item) -> AbstractContextManager[None]:
    return _no_node_starts() if item.get_closest_marker("unit") is not None else nullcontext()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, None, None]:
    with _guard(item):
        yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    with _guard(item):
        yield


# ---------------------------------------------------------------------------------------------
# nodes
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def nodes_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One directory for every node of the session (state files, repos, logs, pid files)."""
    return tmp_path_factory.mktemp("nodes")


#: the session anvil once started, for the clock check below
_session_anvil: list[AnvilNode] = []


@pytest.fixture(scope="session")
def anvil_node(nodes_dir: Path) -> Iterator[AnvilNode]:
    """A real anvil (chain id 31337, base fee 0) with a state file, on a free port."""
    node = AnvilNode(nodes_dir / "anvil", free_port(), nodes_dir / "anvil" / "state.json")
    node.start()
    _session_anvil.append(node)
    try:
        yield node
    finally:
        _session_anvil.clear()
        node.stop()


#: anvil stamps blocks with the wall clock (several blocks may share a second), so a session chain
#: ahead of it by more than this was moved by a test
_CLOCK_SLACK = 60
_clock_moved_reported: list[str] = []


@pytest.fixture(autouse=True)
def _session_clock_unmoved(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fails the test (at teardown) that moved the session anvil's clock: tests that move chain time
    run on ``isolated_chain`` (in tests/ledger: mark the module ``moves_chain_time``)."""
    yield
    if not _session_anvil or _clock_moved_reported:
        return
    latest = _block_time(_session_anvil[0].url)
    if latest is not None and latest > time.time() + _CLOCK_SLACK:
        _clock_moved_reported.append(request.node.nodeid)  # once: the clock stays moved
        pytest.fail(
            f"the session anvil's clock is {latest - time.time():.0f} s ahead of the wall clock: this test (or a"
            " fixture it set up) moved chain time on the shared chain; use isolated_chain / moves_chain_time"
        )


def _rpc(url: str, method: str, params: Sequence[Any] = (), timeout: float = 10) -> Any:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        answer = json.loads(response.read())
    if "error" in answer:
        raise RuntimeError(f"{method}: {answer['error']}")
    return answer["result"]


def _block_time(url: str) -> int | None:
    try:
        return int(_rpc(url, "eth_getBlockByNumber", ["latest", False], timeout=5)["timestamp"], 16)
    except (OSError, ValueError, KeyError, TypeError, RuntimeError):
        return None  # a stopped node is some other test's business


@pytest.fixture(scope="session")
def ipfs_node(nodes_dir: Path) -> Iterator[IpfsNode]:
    """A real js-ipfs daemon (offline, test profile) on free ports."""
    api, gateway, rpc = free_ports(3)
    node = IpfsNode(nodes_dir / "ipfs", api, gateway, rpc)
    node.start()
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture
def ipfs_store(ipfs_node: IpfsNode) -> Iterator[IpfsStore]:
    """An IpfsStore on the session's js-ipfs node with a short fetch timeout."""
    with IpfsStore(ipfs_node.api_multiaddr, timeout=3.0) as store:
        yield store


@pytest.fixture(scope="session")
def deployed_settings(
    anvil_node: AnvilNode, ipfs_node: IpfsNode, tmp_path_factory: pytest.TempPathFactory
) -> Callable[..., Settings]:
    """Settings for the session's nodes with the contracts deployed (one deployment per session:
    ``ensure_deployed`` reuses it), each suite with its own data directory named ``tag``."""

    def make(tag: str, **overrides: Any) -> Settings:
        options: dict[str, Any] = {"ipfs_timeout": 3.0, "manage_nodes": False, **overrides}
        settings = load_settings(
            env={},
            rpc_url=anvil_node.url,
            ipfs_api=ipfs_node.api_multiaddr,
            data_dir=str(tmp_path_factory.mktemp(tag)),
            **options,
        )
        ensure_deployed(settings)
        return settings

    return make


# ---------------------------------------------------------------------------------------------
# chain time
# ---------------------------------------------------------------------------------------------


@dataclass
class PrivateChain:
    """A dedicated anvil with the contracts deployed, for tests that move chain time."""

    node: AnvilNode
    settings: Settings

    @property
    def url(self) -> str:
        return self.node.url

    def rpc(self, method: str, params: Sequence[Any] = ()) -> Any:
        return _rpc(self.url, method, params)

    def now(self) -> int:
        """The latest block's timestamp."""
        return int(self.rpc("eth_getBlockByNumber", ["latest", False])["timestamp"], 16)

    def mine_at(self, timestamp: int) -> None:
        """Mine one block at ``timestamp`` (later than the latest block's)."""
        self.rpc("evm_setNextBlockTimestamp", [timestamp])
        self.rpc("evm_mine")

    @contextmanager
    def snapshot(self, *after_revert: Callable[[], None]) -> Iterator[None]:
        """Run the body in an anvil snapshot, revert it afterwards, then call ``after_revert``
        (reset the nonce managers and cached chain time of every client used in the body: they
        remember a state the revert took back)."""
        snapshot_id = self.rpc("evm_snapshot")
        try:
            yield
        finally:
            assert self.rpc("evm_revert", [snapshot_id]) is True
            for reset in after_revert:
                reset()


@pytest.fixture(scope="module")
def isolated_chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateChain]:
    """A dedicated anvil for one test module, with the contracts deployed: the module may move chain
    time (``mine_at``, ``Ledger.wait_until``) and the rest of the session never sees it.

    Why its own node rather than a snapshot of the session anvil: the session chain has long-lived
    users (the session Ledger's relayer with its nonce manager and cached chain time, the service's
    relay queue and indexer threads), and an ``evm_revert`` under them takes back transactions they
    count on (nonces too low, an index ahead of the chain). A node per module costs a couple of
    seconds; within the module, ``PrivateChain.snapshot`` (or ``chain_snapshot`` in tests/ledger)
    gives each test a revert, because everything on this chain belongs to the module.
    Settings carry no IPFS address of their own; ``dataclasses.replace`` one in when needed.
    """
    data_dir = tmp_path_factory.mktemp("isolated-chain")
    port = free_port()
    node = AnvilNode(data_dir / "anvil", port)
    node.start()
    try:
        settings = load_settings(
            env={}, rpc_url=node.url, data_dir=str(data_dir), manage_nodes=False, anvil_port=port, ipfs_timeout=3.0
        )
        ensure_deployed(settings)
        yield PrivateChain(node, settings)
    finally:
        node.stop()
