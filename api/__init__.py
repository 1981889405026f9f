"""FastAPI service over the ledger library: signed writes through a batching relayer, reads,
verification, exports and audit queries. Route handlers only translate HTTP to library calls."""
