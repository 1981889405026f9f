"""Settings: defaults, then the TOML file, then MEDLEDGER_* variables, then explicit overrides."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from ledger.core.config import Settings, load_settings
from ledger.core.errors import ConfigurationError


def test_precedence_file_env_overrides(tmp_path: Path) -> None:
    (tmp_path / "medledger.toml").write_text('rpc_url = "http://file:1"\nchain_id = 2025\nconfirmations = 2\n')
    env = {"MEDLEDGER_DATA_DIR": str(tmp_path), "MEDLEDGER_CONFIRMATIONS": "3"}
    s = load_settings(env=env)
    assert (s.rpc_url, s.chain_id, s.confirmations) == ("http://file:1", 2025, 3)
    assert s.deployment_path == tmp_path / "deployment-2025.json"
    assert load_settings(env=env, confirmations=5).confirmations == 5


def test_unknown_setting_and_bad_value_are_refused(tmp_path: Path) -> None:
    (tmp_path / "medledger.toml").write_text("rpc_uri = 'typo'\n")
    with pytest.raises(ConfigurationError, match="unknown settings"):
        load_settings(env={"MEDLEDGER_DATA_DIR": str(tmp_path)})
    with pytest.raises(ConfigurationError, match="not a valid int"):
        load_settings(env={"MEDLEDGER_DATA_DIR": str(tmp_path / "none"), "MEDLEDGER_CHAIN_ID": "abc"})


def test_relayer_key_needs_configuration_off_anvil(tmp_path: Path) -> None:
    s = load_settings(env={"MEDLEDGER_DATA_DIR": str(tmp_path)}, chain_id=2025)
    with pytest.raises(ConfigurationError, match="no relayer key"):
        s.relayer_private_key()
    assert load_settings(env={"MEDLEDGER_DATA_DIR": str(tmp_path)}).relayer_private_key().startswith("0xac09")


def test_relayer_keystore_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from eth_account import Account

    acct = Account.create()
    path = tmp_path / "relayer.json"
    path.write_text(json.dumps(Account.encrypt(acct.key, "pw", iterations=2)))
    s = load_settings(env={"MEDLEDGER_DATA_DIR": str(tmp_path)}, chain_id=2025, relayer_key_file=str(path))
    monkeypatch.delenv("MEDLEDGER_RELAYER_KEY_PASSWORD", raising=False)
    with pytest.raises(ConfigurationError, match="password"):
        s.relayer_private_key()
    monkeypatch.setenv("MEDLEDGER_RELAYER_KEY_PASSWORD", "pw")
    assert Account.from_key(s.relayer_private_key()).address == acct.address


def test_rpc_url_follows_the_anvil_port(tmp_path: Path) -> None:
    env = {"MEDLEDGER_DATA_DIR": str(tmp_path), "MEDLEDGER_ANVIL_PORT": "8601"}
    assert load_settings(env=env).rpc_url == "http://127.0.0.1:8601"
    assert load_settings(env={"MEDLEDGER_DATA_DIR": str(tmp_path)}).rpc_url == "http://127.0.0.1:8545"
    # an explicit URL (a remote chain) wins over the port, from the environment or the file
    remote = load_settings(env={**env, "MEDLEDGER_RPC_URL": "https://besu.example.org:8545"})
    assert (remote.rpc_url, remote.anvil_port) == ("https://besu.example.org:8545", 8601)
    (tmp_path / "medledger.toml").write_text("anvil_port = 8602\n")
    assert load_settings(env={"MEDLEDGER_DATA_DIR": str(tmp_path)}).rpc_url == "http://127.0.0.1:8602"


def test_ipfs_api_follows_the_ipfs_api_port(tmp_path: Path) -> None:
    env = {"MEDLEDGER_DATA_DIR": str(tmp_path), "MEDLEDGER_IPFS_API_PORT": "5102"}
    assert load_settings(env=env).ipfs_api == "/ip4/127.0.0.1/tcp/5102/http"
    assert load_settings(env={"MEDLEDGER_DATA_DIR": str(tmp_path)}).ipfs_api == "/ip4/127.0.0.1/tcp/5002/http"
    kubo = "/dns/kubo.example.org/tcp/5001/http"
    assert load_settings(env=env, ipfs_api=kubo).ipfs_api == kubo


def test_api_url_follows_the_api_host_and_port(tmp_path: Path) -> None:
    env = {"MEDLEDGER_DATA_DIR": str(tmp_path), "MEDLEDGER_API_PORT": "8100"}
    s = load_settings(env=env)
    assert (s.api_port, s.api_url) == (8100, "http://127.0.0.1:8100")
    assert load_settings(env={"MEDLEDGER_DATA_DIR": str(tmp_path)}).api_url == "http://127.0.0.1:8000"
    # a service listening on every interface is reached on loopback
    assert load_settings(env={**env, "MEDLEDGER_API_HOST": "0.0.0.0"}).api_url == "http://127.0.0.1:8100"
    assert load_settings(env={**env, "MEDLEDGER_API_HOST": "::1"}).api_url == "http://[::1]:8100"
    proxied = load_settings(env={**env, "MEDLEDGER_API_URL": "https://ledger.example.org"})
    assert (proxied.api_url, proxied.api_port) == ("https://ledger.example.org", 8100)


def test_derived_urls_follow_a_copy_with_new_ports() -> None:
    s = Settings(anvil_port=8700, ipfs_api_port=5200, api_port=8200)
    assert (s.rpc_url, s.ipfs_api, s.api_url) == (
        "http://127.0.0.1:8700",
        "/ip4/127.0.0.1/tcp/5200/http",
        "http://127.0.0.1:8200",
    )
    moved = dataclasses.replace(s, anvil_port=8701, ipfs_api_port=5201, api_port=8201)
    assert (moved.rpc_url, moved.ipfs_api, moved.api_url) == (
        "http://127.0.0.1:8701",
        "/ip4/127.0.0.1/tcp/5201/http",
        "http://127.0.0.1:8201",
    )
    # a URL set in the copy, or set before it, stays
    remote = dataclasses.replace(s, rpc_url="https://besu.example.org:8545")
    assert remote.rpc_url == "https://besu.example.org:8545"
    assert dataclasses.replace(remote, anvil_port=8702).rpc_url == "https://besu.example.org:8545"
    assert moved == dataclasses.replace(moved)
