#!/bin/sh
# The model-based delivery checker (tests/chaos/chaos.js, issue 9) for about
# a minute: real redis-server (AOF), publisher and three gateways, ~20 SSE
# and WebSocket clients, a publisher loop and a seeded schedule of faults;
# every client's events are checked against Redis's history. A fixed seed,
# so that `make test` is reproducible (CHAOS_SEED=N for another, CHAOS_SECONDS
# for another length); `make chaos SECONDS=N SEED=S` runs longer.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# The harness's functions only (node_deps, fail): chaos.js starts its own
# processes (AOF redis, restarts from old RDBs, kill -9) and cleans them up.
H_DIR=$ROOT/tests/integration HARNESS_LIB=1
. "$H_DIR/harness.sh"
command -v redis-server >/dev/null || fail "redis-server is required"
node_deps
FLAGCAST_BIN=${FLAGCAST_BIN:-$ROOT/bin} SECONDS=${CHAOS_SECONDS:-60} SEED=${CHAOS_SEED:-20261203} \
    exec node "$ROOT/tests/chaos/chaos.js"
