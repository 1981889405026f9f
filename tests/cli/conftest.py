"""Fixtures for the CLI tests: the session's real anvil and js-ipfs, contracts deployed with the CLI
itself (`medledger deploy`), a keystore of the parties created with the CLI, a runner that invokes the
CLI in-process (typer's CliRunner), and the real console script for subprocess runs.

Settings reach the CLI only through environment variables, as they would in a shell. The CLI's own
relayer (direct mode) and the service's relayer use their own anvil development accounts, so nothing
here shares a transaction nonce with the other test suites' relayers on the same anvil.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from ledger.devstack.nodes import free_port

from .helpers import CLI_RELAYER_INDEX, PARTIES, PASSWORD, SERVICE_RELAYER_INDEX, Cli, anvil_key, console_script

if TYPE_CHECKING:
    from ledger.devstack.nodes import AnvilNode, IpfsNode


@pytest.fixture(scope="session")
def cli(anvil_node: AnvilNode, ipfs_node: IpfsNode, tmp_path_factory: pytest.TempPathFactory) -> Cli:
    """The CLI pointed at the session's nodes, with the contracts deployed by `medledger deploy`."""
    data = tmp_path_factory.mktemp("cli-data")
    env = {
        "MEDLEDGER_RPC_URL": anvil_node.url,
        "MEDLEDGER_IPFS_API": ipfs_node.api_multiaddr,
        "MEDLEDGER_DATA_DIR": str(data),
        "MEDLEDGER_MANAGE_NODES": "false",
        "MEDLEDGER_IPFS_TIMEOUT": "3",
        "MEDLEDGER_RELAYER_KEY": anvil_key(CLI_RELAYER_INDEX),
        "MEDLEDGER_KEYSTORE": str(data / "keystore"),
        "MEDLEDGER_PASSWORD": PASSWORD,
        # cheap scrypt for throwaway test keys (the default is geth's 2**18)
        "MEDLEDGER_SCRYPT_N": "1024",
        "MEDLEDGER_CONFIG": str(data / "no-config.toml"),
    }
    runner = Cli(env, data)
    deployed = runner.json("deploy")
    assert deployed["chain_id"] == 31337
    assert set(deployed["contracts"]) >= {"DatasetRegistry", "ConsentRegistry", "AccessRegistry", "UsageRegistry"}
    return runner


@pytest.fixture(scope="session")
def parties(cli: Cli, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Keys of every party in the keystore: the admin imported from the anvil development key that
    deployed the contracts, the others created by the CLI. Alias -> address."""
    secret = tmp_path_factory.mktemp("secrets") / "admin.key"
    secret.write_text(anvil_key(CLI_RELAYER_INDEX) + "\n")
    secret.chmod(0o600)
    cli.run("keys", "import", "admin", "--private-key-file", str(secret))
    secret.unlink()
    for alias in PARTIES:
        cli.run("keys", "create", alias)
    listed = cli.json("keys", "list")
    cli.addresses = {k["alias"]: k["address"] for k in listed["keys"]}
    assert set(cli.addresses) >= {"admin", *PARTIES}
    return cli.addresses


@pytest.fixture(scope="session")
def roles_granted(cli: Cli, parties: dict[str, str]) -> None:
    """The admin grants the parties their roles (once per session)."""
    for role, alias in (
        ("holder", "hospital"),
        ("reviewer", "committee"),
        ("user", "researcher"),
        ("auditor", "regulator"),
    ):
        cli.run("--key", "admin", "roles", "grant", role, alias)


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path


@pytest.fixture(scope="session")
def service(
    cli: Cli, parties: dict[str, str], roles_granted: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """`medledger serve` as a subprocess on the session's deployment, with a relayer key of its own
    (one per session: its relayer must not share nonces with another); its URL."""
    port = free_port()
    log = tmp_path_factory.mktemp("service") / "serve.log"
    env = cli.subprocess_env(
        {"MEDLEDGER_RELAYER_KEY": anvil_key(SERVICE_RELAYER_INDEX), "MEDLEDGER_BATCH_DELAY": "0.05"}
    )
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [console_script(), "serve", "--port", str(port), "--log-level", "warning"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise AssertionError(f"medledger serve exited {process.returncode}:\n{log.read_text()}")
            try:
                if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"medledger serve did not become ready:\n{log.read_text()}")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
