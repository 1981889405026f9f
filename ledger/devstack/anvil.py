"""anvil, the local chain.

With a state file anvil loads it on start and writes it on SIGTERM/SIGINT (and every
``state_interval`` seconds, so a crash loses little). It runs with base fee 0 so that brownie's
``development`` network can attach to it (brownie sends legacy transactions priced for a 0 base fee)
and so that gas prices never depend on chain history in tests. A port that already answers with the
expected chain id is reused.
"""

from __future__ import annotations

import os
from pathlib import Path

from ledger.core.errors import NodeStartFailed, NodeUnavailable
from ledger.devstack.ports import port_in_use
from ledger.devstack.process import ManagedNode, file_lock, node_binary, post_json

ANVIL_CHAIN_ID = 31337


class AnvilNode(ManagedNode):
    """anvil on ``127.0.0.1:port`` with chain id 31337 and base fee 0, optionally persisted to
    ``state_file``. Logs go to ``data_dir/anvil.log``, the pid file is ``data_dir/anvil.pid``."""

    process_marker = "anvil"
    name = "anvil"

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        port: int = 8545,
        state_file: str | os.PathLike[str] | None = None,
        *,
        chain_id: int = ANVIL_CHAIN_ID,
        state_interval: int | None = 5,
        preserve_historical_states: bool = False,
        silent: bool = False,
        detach: bool = False,
        startup_timeout: float = 15.0,
        binary: str | os.PathLike[str] | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        super().__init__(
            log_file=self.data_dir / "anvil.log",
            pid_file=self.data_dir / "anvil.pid",
            detach=detach,
            startup_timeout=startup_timeout,
        )
        self.port = port
        self.state_file = Path(state_file) if state_file is not None else None
        self.chain_id = chain_id
        self.state_interval = state_interval
        self.preserve_historical_states = preserve_historical_states
        self.silent = silent
        self._binary = Path(binary) if binary is not None else None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def chain_id_answer(self, timeout: float = 0.5) -> int | None:
        """The chain id the port reports, or None if nothing answers; NodeUnavailable if something
        that is not an Ethereum node answers."""
        try:
            answer = post_json(self.url, {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}, timeout)
        except ValueError as exc:
            raise NodeUnavailable(f"port {self.port} answers, but not as an Ethereum JSON-RPC node ({exc})") from exc
        if answer is None:
            return None
        try:
            return int(answer["result"], 16)
        except (KeyError, TypeError, ValueError) as exc:
            raise NodeUnavailable(f"port {self.port} answers, but not as an Ethereum JSON-RPC node") from exc

    @property
    def running(self) -> bool:
        try:
            return self.chain_id_answer() == self.chain_id
        except NodeUnavailable:
            return False

    def command(self) -> list[str]:
        binary = self._binary or node_binary("anvil")
        command = [
            str(binary),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--chain-id",
            str(self.chain_id),
            "--block-base-fee-per-gas",
            "0",
        ]
        if self.state_file is not None:
            command += ["--state", str(self.state_file)]
            if self.state_interval:
                command += ["--state-interval", str(self.state_interval)]
            if self.preserve_historical_states:
                command.append("--preserve-historical-states")
        if self.silent:
            command.append("--silent")
        return command

    def start(self) -> AnvilNode:
        """Start anvil, or reuse the one already answering with the expected chain id."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with file_lock(self.data_dir / "anvil.start.lock"):
            answer = self.chain_id_answer()
            if answer is not None:
                if answer != self.chain_id:
                    raise NodeUnavailable(
                        f"port {self.port} already serves a chain with id {answer}, not {self.chain_id}",
                        hint="choose another anvil_port or stop that node",
                    )
                self.reused = True
                return self
            if port_in_use(self.port):
                raise NodeStartFailed(f"port {self.port} is in use by something that is not an Ethereum node")
            if self.state_file is not None:
                self.state_file.parent.mkdir(parents=True, exist_ok=True)
            self.reused = False
            self._spawn(self.command(), None, self.port)
            self._wait_until(self._answers_safely, f"answering eth_chainId on port {self.port}")
        return self

    def _answers_safely(self) -> bool:
        try:
            return self.chain_id_answer(timeout=0.3) == self.chain_id
        except NodeUnavailable:
            return False

    def __enter__(self) -> AnvilNode:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
