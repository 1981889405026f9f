#!/usr/bin/env bash
# Start everything locally and load the demo:
#   1. installs what is missing (scripts/bootstrap.sh: .venv, npm packages, solc, compiled contracts);
#   2. starts anvil (chain, state kept in <data_dir>/anvil-state.json) and js-ipfs (<data_dir>/ipfs),
#      or reuses the ones already running; they are detached and keep running after this script;
#   3. deploys the contracts unless <data_dir>/deployment-<chain id>.json matches the chain;
#   4. starts the service (API, relayer and event indexer) on api_host:api_port;
#   5. runs the demo scenario (scripts/demo.py) unless its data is already on the chain;
#   6. prints where the API docs are and keeps the service in the foreground until Ctrl-C.
# Running it again reuses the nodes, the deployment and the demo data.
#
# Usage: ./run.sh [--no-demo] [--demo-only] [--stop-nodes] [--help]
#   --no-demo     start nodes and service, skip the demo
#   --demo-only   start what is needed, run the demo, stop the service and exit (nodes keep running)
#   --stop-nodes  stop the anvil and js-ipfs started by an earlier run, then exit
# Settings (ports, data dir, endpoints) come from ledger/config.py: MEDLEDGER_* variables or
# <data_dir>/medledger.toml.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$ROOT"

DEMO=yes
SERVE=yes
STOP_NODES=no
for arg in "$@"; do
  case "$arg" in
    --no-demo) DEMO=no ;;
    --demo-only) SERVE=no ;;
    --stop-nodes) STOP_NODES=yes ;;
    -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run.sh: unknown option $arg (see ./run.sh --help)" >&2; exit 2 ;;
  esac
done

fail() { echo "run.sh: $*" >&2; exit 1; }
started=$(date +%s)
elapsed() { echo "$(( $(date +%s) - started )) s"; }

# 1. toolchain and environment (idempotent; the first run downloads packages, a few minutes)
echo "== installing / checking the toolchain (scripts/bootstrap.sh)"
# shellcheck source=scripts/bootstrap.sh
source scripts/bootstrap.sh || fail "bootstrap failed (see the messages above)"
PY="$ROOT/.venv/bin/python"
[ -x "$PY" ] || fail "no Python environment at .venv"

if [ "$STOP_NODES" = yes ]; then
  "$PY" - <<'EOF'
from ledger.core.config import load_settings
from ledger.devstack.nodes import LocalStack

stack = LocalStack(load_settings())
for node in (stack.anvil, stack.ipfs):
    print(f"{node.name}: {'stopped' if node.stop() else 'not running (or not started by run.sh)'}")
EOF
  exit 0
fi

# 2-3. nodes and deployment; prints the endpoints to use as shell assignments
echo "== starting the local chain and IPFS node, checking the deployment"
endpoints="$("$PY" - <<'EOF'
import shlex
import sys
import time

from ledger.core.config import load_settings
from ledger.chain.deployment import ensure_deployed
from ledger.core.errors import LedgerError

settings = load_settings()
try:
    if settings.manage_nodes:
        from ledger.devstack.nodes import LocalStack

        stack = LocalStack(settings, detach=True)
        t = time.monotonic()
        stack.anvil.start()
        how = "reused" if stack.anvil.reused else f"started in {time.monotonic() - t:.1f} s"
        print(f"   anvil    {stack.rpc_url} ({how}; state {settings.data_dir / 'anvil-state.json'})", file=sys.stderr)
        t = time.monotonic()
        stack.ipfs.start()
        how = "reused" if stack.ipfs.reused else f"started in {time.monotonic() - t:.1f} s"
        print(f"   js-ipfs  {stack.ipfs.api_url} ({how}; repo {settings.data_dir / 'ipfs'})", file=sys.stderr)
        rpc_url, ipfs_api = stack.rpc_url, stack.ipfs_api
    else:
        rpc_url, ipfs_api = settings.rpc_url, settings.ipfs_api
        print(f"   external chain {rpc_url}, IPFS {ipfs_api} (manage_nodes = false)", file=sys.stderr)
    from dataclasses import replace

    settings = replace(settings, rpc_url=rpc_url, ipfs_api=ipfs_api)
    path = settings.deployment_path
    before = path.read_text() if path.exists() else None
    record = ensure_deployed(settings)
    how = "found" if before == path.read_text() else "deployed now"
    print(f"   contracts {how} on chain {record.chain_id} (record {path})", file=sys.stderr)
except LedgerError as exc:
    print(f"run.sh: {exc}", file=sys.stderr)
    sys.exit(1)
print(f"export MEDLEDGER_RPC_URL={shlex.quote(rpc_url)}")
print(f"export MEDLEDGER_IPFS_API={shlex.quote(ipfs_api)}")
print(f"API_HOST={shlex.quote(settings.api_host)}")
print(f"API_PORT={settings.api_port}")
print(f"DATA_DIR={shlex.quote(str(settings.data_dir))}")
EOF
)" || fail "could not start the nodes or deploy the contracts"
eval "$endpoints"
URL="http://$API_HOST:$API_PORT"

# 4. the service (API + relayer + indexer), unless one already answers on the port
is_medledger() {
  "$PY" - "$URL" <<'EOF'
import sys, httpx
try:
    r = httpx.get(sys.argv[1] + "/openapi.json", timeout=2)
    sys.exit(0 if r.status_code == 200 and r.json().get("info", {}).get("title") == "medledger" else 1)
except Exception:
    sys.exit(2)
EOF
}
wait_ready() {
  "$PY" - "$URL" "$1" <<'EOF'
import sys, time, httpx
url, pid = sys.argv[1], int(sys.argv[2])
import os
deadline = time.monotonic() + 90
last = "no answer"
while time.monotonic() < deadline:
    try:
        r = httpx.get(url + "/ready", timeout=3)
        if r.status_code == 200:
            sys.exit(0)
        last = r.text[:500]
    except httpx.HTTPError as exc:
        last = str(exc)
    if pid > 0:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            print(f"run.sh: the service exited during start-up", file=sys.stderr)
            sys.exit(1)
    time.sleep(0.3)
print(f"run.sh: the service is not ready after 90 s: {last}", file=sys.stderr)
sys.exit(1)
EOF
}

SERVICE_PID=0
OWN_SERVICE=no
stop_service() {
  if [ "$OWN_SERVICE" = yes ] && kill -0 "$SERVICE_PID" 2>/dev/null; then
    kill -TERM "$SERVICE_PID" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$SERVICE_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SERVICE_PID" 2>/dev/null || true
  fi
  OWN_SERVICE=no
}
trap stop_service EXIT

set +e
is_medledger
answer=$?
set -e
LOG="$DATA_DIR/api.log"
if [ "$answer" = 0 ]; then
  echo "== a medledger service already answers at $URL: using it"
  SERVE_REUSED=yes
elif ! "$PY" -c "from ledger.devstack.nodes import port_in_use; import sys; sys.exit(0 if port_in_use($API_PORT, '$API_HOST') else 1)"; then
  echo "== starting the service (API, relayer, indexer) at $URL; log $LOG"
  SERVE_REUSED=no
  mkdir -p "$DATA_DIR"
  echo "--- $(date '+%Y-%m-%d %H:%M:%S') run.sh starting the service" >> "$LOG"
  "$PY" -m uvicorn api.app:create_app --factory --host "$API_HOST" --port "$API_PORT" >> "$LOG" 2>&1 &
  SERVICE_PID=$!
  OWN_SERVICE=yes
  if ! wait_ready "$SERVICE_PID"; then
    echo "---- last lines of $LOG:" >&2
    tail -n 30 "$LOG" >&2 || true
    fail "the service did not start"
  fi
else
  fail "port $API_PORT on $API_HOST is in use by something that is not this service (set MEDLEDGER_API_PORT)"
fi
wait_ready 0 || fail "the service at $URL is not ready"
echo "   ready after $(elapsed)"

# 5. the demo (finds its own data on the chain and then only prints the summary)
if [ "$DEMO" = yes ]; then
  echo "== demo scenario (scripts/demo.py)"
  set +e
  "$PY" scripts/demo.py --url "$URL" --work-dir "$DATA_DIR/demo"
  rc=$?
  set -e
  case "$rc" in
    0) ;;
    3) echo "run.sh: warning: the demo completed with problems (listed above; service log: $LOG)" >&2 ;;
    *) fail "the demo failed (service log: $LOG)" ;;
  esac
fi

# 6. where things are
cat <<EOF

== medledger is running ($(elapsed) in total)
   API docs (Swagger UI)  $URL/docs
   API docs (ReDoc)       $URL/redoc
   readiness              $URL/ready
   chain (anvil)          $MEDLEDGER_RPC_URL
   IPFS API (js-ipfs)     $MEDLEDGER_IPFS_API
   data dir               $DATA_DIR   (service log: $LOG)
EOF

if [ "$SERVE" = no ]; then
  stop_service
  echo "   --demo-only: service stopped; anvil and js-ipfs keep running (./run.sh --stop-nodes stops them)"
  exit 0
fi
if [ "$SERVE_REUSED" = yes ]; then
  echo "   the service was already running in another process; leaving it as it is"
  exit 0
fi
echo "   Ctrl-C stops the service; anvil and js-ipfs keep running (./run.sh --stop-nodes stops them)"
trap 'echo; echo "stopping the service"; stop_service; exit 0' INT TERM
wait "$SERVICE_PID" || true
status_line="the service exited; see $LOG"
OWN_SERVICE=no
fail "$status_line"
