"""Local nodes, for real: anvil and js-ipfs start, are reused, persist across restarts, stop cleanly,
recover from a hard kill, and do not outlive the process that started them."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from ledger.core.config import Settings
from ledger.core.errors import ConfigurationError, NodeStartFailed, NodeUnavailable
from ledger.devstack.nodes import AnvilNode, IpfsNode, LocalStack, free_port, free_ports, port_in_use
from ledger.storage.ipfs import IpfsStore

DEV_ACCOUNT = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
SINK = "0x000000000000000000000000000000000000dEaD"


def rpc(url: str, method: str, params: list[Any]) -> Any:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        answer = json.loads(response.read())
    assert "error" not in answer, answer
    return answer["result"]


def wait_until_closed(port: int, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not port_in_use(port):
            return True
        time.sleep(0.05)
    return False


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60, check=False
    )


def test_free_ports_are_distinct_and_free() -> None:
    ports = free_ports(5)
    assert len(set(ports)) == 5
    assert not any(port_in_use(p) for p in ports)
    assert not port_in_use(free_port())


# ---------------------------------------------------------------------------------------------
# anvil
# ---------------------------------------------------------------------------------------------


def test_session_anvil_answers(anvil_node: AnvilNode) -> None:
    assert anvil_node.running
    assert int(rpc(anvil_node.url, "eth_chainId", []), 16) == 31337
    latest = rpc(anvil_node.url, "eth_getBlockByNumber", ["latest", False])
    assert int(latest["baseFeePerGas"], 16) == 0
    assert (anvil_node.data_dir / "anvil.log").exists()
    assert json.loads((anvil_node.data_dir / "anvil.pid").read_text())["pid"] == anvil_node.pid


def test_anvil_restart_keeps_blocks_and_balances(tmp_path: Path) -> None:
    port = free_port()
    state = tmp_path / "state.json"
    node = AnvilNode(tmp_path, port, state).start()
    assert not node.reused
    first_pid = node.pid
    again = AnvilNode(tmp_path, port, state).start()
    assert again.reused and again.pid == first_pid  # idempotent: nothing new spawned
    rpc(node.url, "eth_sendTransaction", [{"from": DEV_ACCOUNT, "to": SINK, "value": hex(12345)}])
    rpc(node.url, "evm_mine", [])
    blocks = int(rpc(node.url, "eth_blockNumber", []), 16)
    assert blocks >= 2
    assert node.stop()
    assert wait_until_closed(port)
    assert state.exists()  # written on SIGTERM
    assert not (tmp_path / "anvil.pid").exists()

    restarted = AnvilNode(tmp_path, port, state).start()
    try:
        assert not restarted.reused
        assert int(rpc(restarted.url, "eth_blockNumber", []), 16) == blocks
        assert int(rpc(restarted.url, "eth_getBalance", [SINK, "latest"]), 16) == 12345
        assert rpc(restarted.url, "eth_getBlockByNumber", ["0x1", False])["number"] == "0x1"
    finally:
        restarted.stop()


def test_anvil_stopped_by_a_second_process(tmp_path: Path) -> None:
    port = free_port()
    AnvilNode(tmp_path, port, detach=True).start()
    result = run_python(f"""
        from ledger.devstack.nodes import AnvilNode
        print(AnvilNode({str(tmp_path)!r}, {port}).stop())
    """)
    assert result.stdout.strip() == "True", result.stderr
    assert wait_until_closed(port)


def test_anvil_dies_with_the_process_that_started_it(tmp_path: Path) -> None:
    port = free_port()
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"from ledger.devstack.nodes import AnvilNode; import time; AnvilNode({str(tmp_path)!r}, {port}).start();"
            " print('up', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "up"
        assert port_in_use(port)
        child.send_signal(signal.SIGKILL)  # no atexit: only the kernel's parent-death signal helps
        child.wait(10)
        assert wait_until_closed(port), "anvil outlived the process that started it"
    finally:
        if child.poll() is None:
            child.kill()
        AnvilNode(tmp_path, port).stop()


def test_detached_anvil_outlives_its_starter(tmp_path: Path) -> None:
    port = free_port()
    result = run_python(f"""
        from ledger.devstack.nodes import AnvilNode
        AnvilNode({str(tmp_path)!r}, {port}, detach=True).start()
    """)
    assert result.returncode == 0, result.stderr
    try:
        time.sleep(0.3)
        assert AnvilNode(tmp_path, port).running
    finally:
        assert AnvilNode(tmp_path, port).stop()
    assert wait_until_closed(port)


def test_anvil_refuses_a_port_with_another_chain(tmp_path: Path) -> None:
    port = free_port()
    other = AnvilNode(tmp_path / "other", port, chain_id=1337).start()
    try:
        with pytest.raises(NodeUnavailable, match="chain with id 1337"):
            AnvilNode(tmp_path / "mine", port).start()
    finally:
        other.stop()


def test_anvil_refuses_a_port_held_by_something_else(tmp_path: Path) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        with pytest.raises((NodeStartFailed, NodeUnavailable)):
            AnvilNode(tmp_path, port, startup_timeout=3).start()


def test_stop_leaves_a_foreign_node_alone(tmp_path: Path, anvil_node: AnvilNode) -> None:
    visitor = AnvilNode(tmp_path, anvil_node.port).start()
    assert visitor.reused
    assert not visitor.stop()  # no pid file of its own: it did not start that node
    assert anvil_node.running


# ---------------------------------------------------------------------------------------------
# js-ipfs
# ---------------------------------------------------------------------------------------------


def test_session_ipfs_answers(ipfs_node: IpfsNode) -> None:
    assert ipfs_node.running
    config = json.loads((ipfs_node.repo_dir / "config").read_text())
    assert config["Addresses"]["Swarm"] == []
    assert config["Bootstrap"] == []
    assert config["Addresses"]["API"] == f"/ip4/127.0.0.1/tcp/{ipfs_node.api_port}"
    assert IpfsNode(ipfs_node.repo_dir, ipfs_node.api_port, ipfs_node.gateway_port, ipfs_node.rpc_port).start().reused


def test_ipfs_restart_keeps_data_and_recovers_from_a_hard_kill(tmp_path: Path) -> None:
    api, gateway, rpc_port = free_ports(3)
    repo = tmp_path / "repo"
    node = IpfsNode(repo, api, gateway, rpc_port).start()
    with IpfsStore(node.api_multiaddr, timeout=3) as store:
        cid = store.put(b'{"kept":"across restarts"}')
    assert node.stop()
    assert not node.running
    assert not (repo / "repo.lock").exists()

    node = IpfsNode(repo, api, gateway, rpc_port).start()
    assert not node.reused
    with IpfsStore(node.api_multiaddr, timeout=3) as store:
        assert store.get(cid) == b'{"kept":"across restarts"}'
    node.kill()  # SIGKILL: js-ipfs leaves repo.lock and api behind
    assert (repo / "repo.lock").exists()
    assert wait_until_closed(api)

    node = IpfsNode(repo, api, gateway, rpc_port).start()  # clears the stale lock
    try:
        with IpfsStore(node.api_multiaddr, timeout=3) as store:
            assert store.get(cid) == b'{"kept":"across restarts"}'
    finally:
        node.stop()
    with IpfsStore(f"/ip4/127.0.0.1/tcp/{api}/http", timeout=3) as store, pytest.raises(NodeUnavailable):
        store.get(cid)


def test_ipfs_refuses_a_port_serving_another_node(tmp_path: Path, ipfs_node: IpfsNode) -> None:
    gateway, rpc_port = free_ports(2)
    with pytest.raises(NodeUnavailable, match="another IPFS node"):
        IpfsNode(tmp_path / "other", ipfs_node.api_port, gateway, rpc_port).start()


# ---------------------------------------------------------------------------------------------
# both
# ---------------------------------------------------------------------------------------------


def test_local_stack(tmp_path: Path) -> None:
    anvil_port, api, gateway, rpc_port = free_ports(4)
    settings = Settings(
        data_dir=tmp_path,
        anvil_port=anvil_port,
        ipfs_api_port=api,
        ipfs_gateway_port=gateway,
        ipfs_rpc_port=rpc_port,
    )
    with LocalStack(settings) as stack:
        assert stack.rpc_url == f"http://127.0.0.1:{anvil_port}"
        assert stack.ipfs_api == f"/ip4/127.0.0.1/tcp/{api}/http"
        status = stack.status()
        assert status["anvil"]["running"] and status["ipfs"]["running"]
        with IpfsStore(stack.ipfs_api, timeout=3) as store:
            assert store.get(store.put(b"stack")) == b"stack"
        rpc(stack.rpc_url, "evm_mine", [])
    assert wait_until_closed(anvil_port) and wait_until_closed(api)
    assert (tmp_path / "anvil-state.json").exists()
    assert (tmp_path / "anvil.log").exists() and (tmp_path / "ipfs.log").exists()
    assert not (tmp_path / "anvil.pid").exists() and not (tmp_path / "ipfs.pid").exists()


def test_local_stack_refuses_external_nodes(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="external"):
        LocalStack(Settings(data_dir=tmp_path, manage_nodes=False))
