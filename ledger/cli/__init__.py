"""The ``medledger`` command line: every party's operations and the verifications, with keys kept
in a local keystore and every write signed on this machine. See ``medledger --help``."""

from ledger.cli.app import app, main

__all__ = ["app", "main"]
