"""anvil and js-ipfs together, as the settings describe them."""

from __future__ import annotations

from typing import Any

from ledger.core.config import Settings
from ledger.core.errors import ConfigurationError
from ledger.devstack.anvil import AnvilNode
from ledger.devstack.ipfs import IpfsNode


class LocalStack:
    """anvil and js-ipfs as the settings describe them: under ``settings.data_dir`` (anvil state in
    ``anvil-state.json``, IPFS repo in ``ipfs/``), on ``anvil_port`` and the ``ipfs_*_port`` s."""

    def __init__(self, settings: Settings, *, detach: bool = False) -> None:
        if not settings.manage_nodes:
            raise ConfigurationError(
                "manage_nodes is false: the chain and IPFS nodes are external",
                hint="set MEDLEDGER_MANAGE_NODES=true to run local nodes",
            )
        self.settings = settings
        data_dir = settings.data_dir
        self.anvil = AnvilNode(
            data_dir,
            settings.anvil_port,
            data_dir / "anvil-state.json",
            chain_id=settings.chain_id,
            detach=detach,
        )
        self.ipfs = IpfsNode(
            data_dir / "ipfs",
            settings.ipfs_api_port,
            settings.ipfs_gateway_port,
            settings.ipfs_rpc_port,
            detach=detach,
        )

    @property
    def rpc_url(self) -> str:
        return self.anvil.url

    @property
    def ipfs_api(self) -> str:
        return self.ipfs.api_multiaddr

    @property
    def gateway_url(self) -> str:
        return self.ipfs.gateway_url

    def start(self) -> LocalStack:
        """Start both (anvil takes a fraction of a second, js-ipfs a few seconds). Sequential on
        purpose: a node started from a short-lived thread would be tied to that thread's life."""
        self.anvil.start()
        self.ipfs.start()
        return self

    def stop(self) -> None:
        self.anvil.stop()
        self.ipfs.stop()

    def status(self) -> dict[str, Any]:
        return {
            "anvil": {"url": self.rpc_url, "running": self.anvil.running, "pid": self.anvil.pid},
            "ipfs": {"api": self.ipfs_api, "running": self.ipfs.running, "pid": self.ipfs.pid},
        }

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
