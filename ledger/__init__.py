"""medledger: provenance and consent ledger for medical scientific data sharing.

The library does the product's work over the contracts (see README): chain client, IPFS metadata
store, Merkle roots and proofs, verification, lineage, consent coverage, event indexer and local
node management. The API (``api/``) and the CLI (``ledger.cli``) are thin layers over it.
"""

__version__ = "0.1.0"
