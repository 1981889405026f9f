#!/usr/bin/env bash
# The whole test suite: contract tests (brownie on anvil), library and service tests (pytest on
# real anvil and js-ipfs started by the fixtures), and the schemathesis run over the API schema.
# Installs what it needs first (idempotent). Usage: ./test.sh [extra pytest args]
set -euo pipefail
cd "$(dirname "$0")"
source scripts/bootstrap.sh

echo "== lint and types"
ruff check .
mypy ledger
lint-imports --no-cache

echo "== contract tests (brownie, anvil)"
brownie test tests/contracts

echo "== library and service tests (pytest, real anvil and js-ipfs)"
python -m pytest -p no:pytest-brownie tests --ignore=tests/contracts -q "$@"
