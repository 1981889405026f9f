"""End-to-end tests: the service as a process, driven over HTTP."""
