#!/usr/bin/env bash
# The whole test suite: lint, types and layers; the unit tier (pytest, no node); contract tests
# (brownie on anvil); the node tiers (library, service, CLI and end-to-end tests with pytest on real
# anvil and js-ipfs started by the fixtures, the schemathesis run over the API schema).
# Installs what it needs first (idempotent).
# Usage: ./test.sh [extra pytest args]         everything
#        ./test.sh --fast [extra pytest args]  lint, types, layers and the unit tier only
set -euo pipefail
cd "$(dirname "$0")"
source scripts/bootstrap.sh

fast=0
if [ "${1:-}" = "--fast" ]; then
  fast=1
  shift
fi

PYTEST=(python -m pytest -p no:pytest-brownie tests --ignore=tests/contracts -q)

# pytest exits 5 when the selection is empty (extra args that pick tests of the other tier only)
pytest_tier() {
  local rc=0
  "${PYTEST[@]}" "$@" || rc=$?
  [ "$rc" -eq 0 ] || [ "$rc" -eq 5 ] || return "$rc"
}

echo "== lint, types and layers"
ruff check .
mypy --strict ledger api
# scripts and benchmarks are run as files (siblings import each other by module name): no package bases
mypy --strict scripts benchmarks
lint-imports --no-cache

echo "== unit tier (pytest, no node)"
pytest_tier -m unit "$@"
[ "$fast" -eq 1 ] && exit 0

echo "== contract tests (brownie, anvil)"
brownie test tests/contracts

echo "== node tiers (pytest, real anvil and js-ipfs)"
pytest_tier -m "not unit" "$@"
