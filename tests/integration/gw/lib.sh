# lib.sh — shared setup for the gateway integration tests (POSIX sh; sourced
# by tests/integration/test_gateway*.sh).
#
# Each test gets a private temp dir, a redis-server on a free loopback port,
# the real publisher and the real gateway from $FLAGCAST_BIN, and a trap that
# kills every process it started by PID, even on failure. Waiting is always
# polling with a deadline; a missed deadline fails the test with the logs.

set -u

GW_DIR=$(cd "$(dirname "$0")/gw" && pwd)
ROOT=$(cd "$GW_DIR/../../.." && pwd)
BIN=${FLAGCAST_BIN:-$ROOT/bin}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/flagcast-gwtest.XXXXXX")
PIDS=""
TOKEN=test-admin-token

cleanup() {
    for p in $PIDS; do kill "$p" 2>/dev/null; done
    for p in $PIDS; do
        i=0
        while kill -0 "$p" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
        kill -9 "$p" 2>/dev/null
    done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

fail() {
    echo "FAIL: $*" >&2
    for f in "$TMP"/*.log; do
        [ -f "$f" ] || continue
        echo "---- $(basename "$f") (last 30 lines)" >&2
        tail -30 "$f" >&2
    done
    exit 1
}

ok() { echo "ok: $*"; }

track() { PIDS="$PIDS $1"; }

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_until DEADLINE_SECONDS DESCRIPTION COMMAND...: polls COMMAND every 0.1 s.
wait_until() {
    _d=$1; _what=$2; shift 2
    _end=$(( $(date +%s) + _d ))
    while ! "$@" >/dev/null 2>&1; do
        [ "$(date +%s)" -ge "$_end" ] && fail "timed out after ${_d}s waiting for: $_what"
        sleep 0.1
    done
}

http_code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
is_code() { _want=$1; shift; [ "$(http_code "$@")" = "$_want" ]; }

node_deps() {
    command -v node >/dev/null || fail "node is required (scripts/deps.sh installs it)"
    if [ ! -d "$GW_DIR/node_modules/ws" ] || [ ! -d "$GW_DIR/node_modules/@msgpack/msgpack" ] ||
       [ ! -d "$GW_DIR/node_modules/eventsource" ]; then
        (cd "$GW_DIR" && npm ci --no-audit --no-fund --loglevel=error >/dev/null 2>&1) ||
            fail "npm ci in $GW_DIR failed"
    fi
}

start_redis() {
    REDIS_PORT=$(free_port)
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
        --dir "$TMP" --daemonize no >"$TMP/redis.log" 2>&1 &
    REDIS_PID=$!; track $REDIS_PID
    wait_until 10 "redis-server on $REDIS_PORT" redis-cli -p "$REDIS_PORT" ping
    REDIS_URL=redis://127.0.0.1:$REDIS_PORT
}

start_publisher() {
    PUB_PORT=$(free_port)
    FLAGCAST_LISTEN=127.0.0.1:$PUB_PORT FLAGCAST_REDIS_URL=$REDIS_URL \
        FLAGCAST_ADMIN_TOKENS=$TOKEN "$BIN/flagcast-publisher" >"$TMP/publisher.log" 2>&1 &
    PUB_PID=$!; track $PUB_PID
    PUB=http://127.0.0.1:$PUB_PORT
    wait_until 10 "publisher ready" is_code 200 "$PUB/readyz"
}

# start_gateway [VAR=value ...]: extra environment for the gateway.
# FLAGCAST_DRAIN_SECONDS=0: SIGTERM stops at once (no drain delay), so that
# cleanup is quick; the paced drain has its own tests (test_scale_*.sh).
start_gateway() {
    GW_PORT=$(free_port)
    env FLAGCAST_LISTEN=127.0.0.1:$GW_PORT FLAGCAST_REDIS_URL=$REDIS_URL FLAGCAST_DRAIN_SECONDS=0 "$@" \
        "$BIN/flagcast-gateway" >"$TMP/gateway.log" 2>&1 &
    GW_PID=$!; track $GW_PID
    GW=http://127.0.0.1:$GW_PORT
    WSURL=ws://127.0.0.1:$GW_PORT
    wait_until 10 "gateway ready" is_code 200 "$GW/readyz"
}

# api METHOD PATH [JSON]: an admin API call that must succeed (2xx).
api() {
    _code=$(curl -s -o "$TMP/api.out" -w '%{http_code}' -X "$1" \
        -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
        ${3:+--data "$3"} "$PUB$2")
    case "$_code" in 2*) ;; *) fail "$1 $2 answered $_code: $(cat "$TMP/api.out")" ;; esac
}

# sse NAME QUERY-PATH: starts curl -N capturing into $TMP/NAME.sse.
sse() {
    curl -sN "$GW$2" >"$TMP/$1.sse" 2>"$TMP/$1.curlerr" &
    track $!
    eval "SSE_PID_$1=$!"
}

# sse_lines NAME: the summary lines of what NAME received so far.
sse_lines() { node "$GW_DIR/sse_parse.js" "$TMP/$1.sse"; }

# has_line FILE-PRODUCING-CMD... : helpers for wait_until
sse_has() { sse_lines "$1" | grep -q -- "$2"; }
file_has() { grep -q -- "$2" "$1"; }

metric() {
    curl -s "$GW/metrics" | awk -v n="$1" '$1 == n { print $2; found = 1 } END { if (!found) print 0 }'
}
metric_ge() { [ "$(metric "$1")" -ge "$2" ] 2>/dev/null; }
metric_eq() { [ "$(metric "$1")" = "$2" ]; }

# expect NAME ACTUAL-FILE EXPECTED-TEXT: exact comparison, diff on failure.
expect() {
    printf '%s\n' "$3" >"$TMP/$1.expected"
    if ! diff -u "$TMP/$1.expected" "$2" >"$TMP/$1.diff"; then
        cat "$TMP/$1.diff" >&2
        fail "$1: received events differ from the expected ones"
    fi
}
