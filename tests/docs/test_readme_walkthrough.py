"""The README's newcomer path, run verbatim.

The section between ``<!-- walkthrough:start -->`` and ``<!-- walkthrough:end -->`` is what a new
admin, holder, patient, researcher, reviewer and auditor type; this test runs its bash blocks in one
shell, in order, against a chain of its own (a fresh anvil, so the admin is anvil's first account as
the README says) and the session's js-ipfs. A README edit that breaks a command fails here.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger.core.config import PROJECT_ROOT
from ledger.devstack.nodes import AnvilNode, IpfsNode, free_port

START, END = "<!-- walkthrough:start -->", "<!-- walkthrough:end -->"


def walkthrough_script(readme: str) -> str:
    """The bash blocks of the walkthrough section, in order."""
    if START not in readme or END not in readme:
        raise AssertionError("README.md has no walkthrough section (markers missing)")
    section = readme.split(START, 1)[1].split(END, 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    assert blocks, "the walkthrough section has no bash blocks"
    return "\n".join(blocks)


def test_walkthrough_extraction_keeps_every_block_in_order() -> None:
    readme = f"intro\n```bash\nnot this\n```\n{START}\n```bash\necho one\n```\ntext\n```bash\necho two\n```\n{END}"
    assert walkthrough_script(readme) == "echo one\n\necho two\n"
    with pytest.raises(AssertionError):
        walkthrough_script("no markers")


@pytest.fixture
def own_anvil(tmp_path: Path) -> Iterator[AnvilNode]:
    """A chain for this test alone: the walkthrough's relayer (anvil's first account) shares no
    nonce with the other suites' relayers, and its clock and roles stay its own."""
    node = AnvilNode(tmp_path / "anvil", free_port(), tmp_path / "anvil" / "state.json")
    node.start()
    try:
        yield node
    finally:
        node.stop()


def test_readme_walkthrough_runs_as_written(own_anvil: AnvilNode, ipfs_node: IpfsNode, tmp_path: Path) -> None:
    script = walkthrough_script((PROJECT_ROOT / "README.md").read_text(encoding="utf-8"))
    data = tmp_path / "data"
    env = {
        **os.environ,
        "MEDLEDGER_RPC_URL": own_anvil.url,
        "MEDLEDGER_IPFS_API": ipfs_node.api_multiaddr,
        "MEDLEDGER_MANAGE_NODES": "false",
        "MEDLEDGER_DATA_DIR": str(data),
        "MEDLEDGER_CONFIG": str(tmp_path / "no-config.toml"),
        "MEDLEDGER_IPFS_TIMEOUT": "5",
        # cheap scrypt for the walk's throwaway keys (the default is geth's 2**18)
        "MEDLEDGER_SCRYPT_N": "1024",
        "TMPDIR": str(tmp_path),
    }
    # nothing from the caller's shell that the README does not set itself
    for name in ("KEY", "SERVICE", "PASSWORD", "PASSWORD_FILE", "KEYSTORE", "RELAYER_KEY", "RELAYER_KEY_FILE"):
        env.pop(f"MEDLEDGER_{name}", None)
    done = subprocess.run(
        ["bash", "-c", "set -euo pipefail\n" + script + "\necho WALKTHROUGH-COMPLETE"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6000:]
    assert "WALKTHROUGH-COMPLETE" in done.stdout
    # what each party should have seen along the way
    assert "researcher" in output or "user" in output
    assert "in force" in output
    assert "access request 1 approved" in output
    assert "verified" in output
    assert "suspended" in output
    assert "DatasetNotUsable" in output  # the use after the suspension was refused by the contract
