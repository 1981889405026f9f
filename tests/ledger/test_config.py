"""Settings: defaults, then the TOML file, then MEDLEDGER_* variables, then explicit overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger.core.config import load_settings
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
