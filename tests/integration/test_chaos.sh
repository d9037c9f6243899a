#!/bin/sh
# The model-based delivery checker (tests/chaos/chaos.js, issue 9) for about
# a minute: real redis-server (AOF), publisher and three gateways, ~20 SSE
# and WebSocket clients, a publisher loop and a seeded schedule of faults;
# every client's events are checked against Redis's history. A fixed seed,
# so that `make test` is reproducible (CHAOS_SEED=N for another, CHAOS_SECONDS
# for another length); `make chaos SECONDS=N SEED=S` runs longer.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
command -v node >/dev/null || { echo "FAIL: node is required (scripts/deps.sh installs it)"; exit 1; }
command -v redis-server >/dev/null || { echo "FAIL: redis-server is required"; exit 1; }
GW_DIR=$ROOT/tests/integration/gw
if [ ! -d "$GW_DIR/node_modules/ws" ] || [ ! -d "$GW_DIR/node_modules/@msgpack/msgpack" ]; then
    (cd "$GW_DIR" && npm ci --no-audit --no-fund --loglevel=error >/dev/null 2>&1) ||
        { echo "FAIL: npm ci in $GW_DIR failed"; exit 1; }
fi
FLAGCAST_BIN=${FLAGCAST_BIN:-$ROOT/bin} SECONDS=${CHAOS_SECONDS:-60} SEED=${CHAOS_SEED:-20261203} \
    exec node "$ROOT/tests/chaos/chaos.js"
