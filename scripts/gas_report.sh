#!/usr/bin/env bash
# Gas report of the ledger contracts: deploys them on a fresh anvil (its own free port), measures
# every operation sent directly and relayed in batches of 1, 10 and 100, and writes
# benchmarks/gas.md (compiler, optimizer, machine and date included).
#
# Usage: bash scripts/gas_report.sh [--only TEXT] [--sizes 1,10,100] [--out FILE]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/bootstrap.sh
source scripts/bootstrap.sh
exec "$ROOT/.venv/bin/python" benchmarks/gas.py "$@"
