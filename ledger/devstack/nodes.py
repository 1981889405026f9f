"""Local nodes for development and tests: anvil (chain) and js-ipfs (documents), the public face of
``ledger.devstack``.

The parts: :mod:`~ledger.devstack.process` (a node as a managed process: idempotent start, pid
files, no leaked processes), :mod:`~ledger.devstack.anvil`, :mod:`~ledger.devstack.ipfs`,
:mod:`~ledger.devstack.stack` (both as the settings describe them) and
:mod:`~ledger.devstack.ports`.
"""

from ledger.devstack.anvil import AnvilNode
from ledger.devstack.ipfs import IpfsNode
from ledger.devstack.ports import free_port, free_ports, port_in_use
from ledger.devstack.stack import LocalStack

__all__ = ["AnvilNode", "IpfsNode", "LocalStack", "free_port", "free_ports", "port_in_use"]
