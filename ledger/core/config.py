"""Configuration: defaults for the local stack, overridden by a TOML file and then by environment
variables (``MEDLEDGER_<FIELD>`` in upper case).

The file is ``$MEDLEDGER_CONFIG`` or ``<data_dir>/medledger.toml`` if it exists. Pointing the
ledger at a consortium chain and a Kubo node is a configuration change only, for example::

    rpc_url = "https://besu.example.org:8545"
    chain_id = 2025
    confirmations = 2
    ipfs_api = "/dns/kubo.example.org/tcp/5001/http"
    manage_nodes = false
    relayer_key_file = "/etc/medledger/relayer.json"   # encrypted keystore (password in env)

Some settings derive from others and follow them unless set themselves: ``rpc_url`` is the local
anvil on ``anvil_port``, ``ipfs_api`` the local js-ipfs API on ``ipfs_api_port`` and ``api_url`` the
service on ``api_host``:``api_port``. So ``MEDLEDGER_ANVIL_PORT=8600`` alone moves the node and the
URL the library calls together, while an explicit ``rpc_url`` (a remote chain) still wins.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ledger.core.errors import ConfigurationError

PROJECT_ROOT = Path(__file__).resolve().parents[2]

# anvil's well-known development accounts (mnemonic "test test ... junk"). Used only when the
# chain id is anvil's 31337 and no key is configured; refused on any other chain.
ANVIL_KEYS: tuple[str, ...] = ("0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",)


@dataclass(frozen=True)
class Settings:
    """Every setting the library, API and CLI read."""

    #: where nodes keep state (anvil state file, IPFS repo), the deployment record and the index
    data_dir: Path = field(default_factory=lambda: PROJECT_ROOT / ".data")
    #: chain JSON-RPC endpoint; empty: the local anvil on ``anvil_port``
    rpc_url: str = ""
    #: expected chain id (anvil: 31337); the client refuses a node that reports another
    chain_id: int = 31337
    #: blocks to wait after a transaction's block before treating it (and its events) as final
    confirmations: int = 0
    #: deployment record; default <data_dir>/deployment-<chain_id>.json
    deployment_file: Path | None = None
    #: build artifacts of the contracts (brownie compile)
    artifacts_dir: Path = field(default_factory=lambda: PROJECT_ROOT / "build" / "contracts")
    #: IPFS HTTP RPC API as a multiaddr (js-ipfs listens on 5002 by default, Kubo on 5001); empty:
    #: the local js-ipfs on ``ipfs_api_port``
    ipfs_api: str = ""
    #: seconds to wait for an IPFS fetch before reporting the document missing
    ipfs_timeout: float = 10.0
    #: start anvil and js-ipfs locally (false when pointing at external nodes)
    manage_nodes: bool = True
    #: local node ports
    anvil_port: int = 8545
    ipfs_api_port: int = 5002
    ipfs_gateway_port: int = 9090
    ipfs_rpc_port: int = 5003
    #: the relayer's (and deployer's) key: a hex private key, or an encrypted keystore file whose
    #: password is in MEDLEDGER_RELAYER_KEY_PASSWORD. Unset on anvil: anvil's first account.
    relayer_key: str | None = None
    relayer_key_file: Path | None = None
    #: the API service: where it listens, and the URL clients reach it at (empty: ``api_host``:``api_port``)
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    api_url: str = ""
    #: relayer batching: flush at this many queued requests or after this many seconds
    batch_size: int = 100
    batch_delay: float = 0.2

    #: the settings above that were derived, with the value derived: ``dataclasses.replace`` copies
    #: it, so a copy with a new port derives again unless the copy also sets the URL itself
    _derived: tuple[tuple[str, str], ...] = field(default=(), repr=False, compare=False)

    def __post_init__(self) -> None:
        # an unset URL follows its port, so a port change cannot leave the URL on the old one
        derived = {
            "rpc_url": f"http://127.0.0.1:{self.anvil_port}",
            "ipfs_api": f"/ip4/127.0.0.1/tcp/{self.ipfs_api_port}/http",
            "api_url": f"http://{_reachable_host(self.api_host)}:{self.api_port}",
        }
        before = dict(self._derived)
        now: list[tuple[str, str]] = []
        for name, value in derived.items():
            current = getattr(self, name)
            if not current or before.get(name) == current:
                object.__setattr__(self, name, value)
                now.append((name, value))
        object.__setattr__(self, "_derived", tuple(now))

    @property
    def deployment_path(self) -> Path:
        return self.deployment_file or self.data_dir / f"deployment-{self.chain_id}.json"

    @property
    def index_path(self) -> Path:
        return self.data_dir / f"index-{self.chain_id}.sqlite3"

    @property
    def is_local_anvil(self) -> bool:
        return self.chain_id == 31337

    def relayer_private_key(self) -> str:
        """The relayer's private key, from the configured key or keystore; anvil's first
        development account on a local anvil when nothing is configured."""
        if self.relayer_key:
            return self.relayer_key
        if self.relayer_key_file:
            # eth_account takes ~0.4 s to import and only a keystore needs it; config loads on every CLI start
            from eth_account import Account

            password = os.environ.get("MEDLEDGER_RELAYER_KEY_PASSWORD")
            if password is None:
                raise ConfigurationError(
                    f"keystore {self.relayer_key_file} needs a password",
                    hint="set MEDLEDGER_RELAYER_KEY_PASSWORD",
                )
            try:
                data = self.relayer_key_file.read_text()
                key: bytes = Account.decrypt(data, password)
            except (OSError, ValueError) as exc:
                raise ConfigurationError(f"cannot open keystore {self.relayer_key_file}: {exc}") from exc
            return "0x" + key.hex()
        if self.is_local_anvil:
            return ANVIL_KEYS[0]
        raise ConfigurationError(
            f"no relayer key configured for chain {self.chain_id}",
            hint="set MEDLEDGER_RELAYER_KEY or MEDLEDGER_RELAYER_KEY_FILE",
        )


def _reachable_host(host: str) -> str:
    """The host a client connects to for a service listening on ``host``."""
    if host in ("", "0.0.0.0", "::"):  # listening on every interface: reach it on loopback
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def _coerce(name: str, raw: Any, current: Any) -> Any:
    kind = type(current)
    if name in ("deployment_file", "relayer_key_file", "data_dir", "artifacts_dir"):
        return None if raw in (None, "") else Path(str(raw)).expanduser()
    if name == "relayer_key":
        return None if raw in (None, "") else str(raw)
    try:
        if kind is bool:
            if isinstance(raw, bool):
                return raw
            return str(raw).strip().lower() in ("1", "true", "yes", "on")
        if kind is int:
            return int(raw)
        if kind is float:
            return float(raw)
    except ValueError as exc:
        raise ConfigurationError(f"setting {name}: {raw!r} is not a valid {kind.__name__}") from exc
    return str(raw)


def load_settings(env: dict[str, str] | None = None, **overrides: Any) -> Settings:
    """Defaults, then the TOML file, then ``MEDLEDGER_*`` variables, then ``overrides``."""
    env = dict(os.environ if env is None else env)
    base = Settings()
    values: dict[str, Any] = {}
    data_dir = Path(env.get("MEDLEDGER_DATA_DIR", str(base.data_dir))).expanduser()
    config_file = Path(env["MEDLEDGER_CONFIG"]) if "MEDLEDGER_CONFIG" in env else data_dir / "medledger.toml"
    known = {f.name for f in fields(Settings) if not f.name.startswith("_")}
    if config_file.exists():
        try:
            loaded = tomllib.loads(config_file.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigurationError(f"cannot read {config_file}: {exc}") from exc
        unknown = set(loaded) - known
        if unknown:
            raise ConfigurationError(f"unknown settings in {config_file}: {', '.join(sorted(unknown))}")
        values.update(loaded)
    for name in known:
        key = f"MEDLEDGER_{name.upper()}"
        if key in env:
            values[name] = env[key]
    values.update(overrides)
    coerced = {k: _coerce(k, v, getattr(base, k)) for k, v in values.items()}
    return Settings(**coerced)
