#!/usr/bin/env bash
# Idempotent setup: Python venv from requirements.lock, npm packages from package-lock.json, the
# project's solc (tools/solc.js) in .solcx/, compiled contracts in build/. Needs only Python 3.11,
# Node 20 and npm. Each step is skipped when its inputs have not changed since it last ran.
# Source it (". scripts/bootstrap.sh") to also get the environment (PATH, SOLCX_BINARY_PATH).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PY="${PYTHON:-python3}"

# One bootstrap at a time (parallel test runs, several shells): npm ci must not race itself.
exec 9>"$ROOT/.bootstrap.lock"
flock 9

stamp_ok() { [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]; }

# 1. Python environment
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
want="$(cat requirements.lock pyproject.toml | sha256sum | cut -d' ' -f1)"
if ! stamp_ok .venv/.medledger-stamp "$want"; then
  echo "[bootstrap] installing Python packages" >&2
  .venv/bin/python -m pip install -q --upgrade "pip>=24,<27" >/dev/null
  .venv/bin/python -m pip install -q -r requirements.lock
  .venv/bin/python -m pip install -q --no-deps -e .
  echo "$want" > .venv/.medledger-stamp
fi

# 1b. schemathesis (API fuzzing in the tests) needs a newer hypothesis than brownie pins: own venv
if [ ! -x .venv-schemathesis/bin/python ]; then
  "$PY" -m venv .venv-schemathesis
fi
want="$(cat requirements-schemathesis.lock | sha256sum | cut -d' ' -f1)"
if ! stamp_ok .venv-schemathesis/.medledger-stamp "$want"; then
  echo "[bootstrap] installing schemathesis" >&2
  .venv-schemathesis/bin/python -m pip install -q -r requirements-schemathesis.lock
  echo "$want" > .venv-schemathesis/.medledger-stamp
fi

# 2. npm packages (solc, anvil, OpenZeppelin, js-ipfs)
want="$(cat package-lock.json | sha256sum | cut -d' ' -f1)"
if ! stamp_ok node_modules/.medledger-stamp "$want"; then
  echo "[bootstrap] installing npm packages (first time: a few minutes)" >&2
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" > node_modules/.medledger-stamp
fi

# 3. the compiler where py-solc-x and brownie look, and the compiled contracts
export SOLCX_BINARY_PATH="$ROOT/.solcx"
export PATH="$ROOT/node_modules/.bin:$ROOT/.venv/bin:$PATH"
.venv/bin/python tools/install_solc.py >/dev/null
want="$(cat contracts/*.sol contracts/*/*.sol brownie-config.yaml package-lock.json | sha256sum | cut -d' ' -f1)"
if ! stamp_ok build/.medledger-stamp "$want"; then
  echo "[bootstrap] compiling contracts" >&2
  .venv/bin/brownie compile --all >/dev/null
  echo "$want" > build/.medledger-stamp
fi

flock -u 9
