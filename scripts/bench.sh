#!/usr/bin/env bash
# The benchmarks: every scenario against the real stack (anvil, js-ipfs, the service and its
# indexer, started by the harness on free ports in a temporary directory), each beside a baseline
# measured in the same run; writes benchmarks/results.json and benchmarks/RESULTS.md.
#
# Usage: bash scripts/bench.sh [--quick] [other options of benchmarks/bench.py, see --help]
#   --quick   small sizes; finishes in under two minutes
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/bootstrap.sh
source scripts/bootstrap.sh
exec "$ROOT/.venv/bin/python" benchmarks/bench.py "$@"
