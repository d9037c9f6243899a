# harness.sh — the integration tests' one harness (POSIX sh): how a test
# starts redis-server, the publisher, gateways and clients, how it waits
# for them to be ready, and how it cleans up. Nothing else in tests/ knows
# a daemon's command line or what "ready" means.
#
# Three ways in:
#
#   - A shell test sources it:  . "$(dirname "$0")/harness.sh"
#     It gets a private temp dir ($TMP), a trap that kills every tracked
#     PID (TERM, 5 s, KILL) and removes $TMP at exit, even on failure, and
#     start_redis / start_publisher / start_gateway, clients, probes and
#     wait_until. A missed deadline fails the test with the daemons' logs.
#
#   - The C tests execute it (tests/integration/harness.c, the C binding):
#         sh harness.sh free_port
#         sh harness.sh redis_exec PORT DIR [redis-server ARG...]
#         sh harness.sh daemon_exec publisher|gateway PORT REDIS_URL [VAR=value...]
#         sh harness.sh wait_until SECONDS WHAT PROBE [ARG...]
#     The *_exec commands become the daemon (exec: same PID), so the C
#     harness stays its parent: it reaps it, reads its exit status and
#     kills it by PID at exit (PR_SET_PDEATHSIG as well, for a test killed
#     by Check's timeout). wait_until runs a probe below (redis_ping,
#     is_code) until it passes; on a timeout it prints
#     "FAIL: timed out after Ns waiting for: WHAT" and exits 1.
#
#   - tests/compose/run.sh sources it with HARNESS_LIB=1: the functions
#     only (wait_until, free_port, node_deps, ok, track), no temp dir and
#     no trap; it brings its own fail and cleanup (containers, not PIDs).
#
# Waiting is always polling with a deadline (every $WAIT_STEP seconds).

set -u

# The folder of this file: the sourcing test's folder (tests are next to
# it), the file's own when executed; compose/run.sh sets H_DIR itself.
H_DIR=${H_DIR:-$(cd "$(dirname "$0")" && pwd)}
GW_DIR=$H_DIR/gw
ROOT=$(cd "$H_DIR/../.." && pwd)
BIN=${FLAGCAST_BIN:-$ROOT/bin}
TOKEN=test-admin-token
WAIT_STEP=${WAIT_STEP:-0.1}
PIDS=""

# ==== waiting, failing ====

# fail MESSAGE: fails the test, with the last lines of its logs ($FAIL_LOGS
# in $TMP: *.log unless the test says more).
fail() {
    echo "FAIL: $*" >&2
    set -f; set -- ${FAIL_LOGS:-*.log}; set +f   # patterns, matched in $TMP
    for _pat; do
        for f in "${TMP:-/nonexistent}"/$_pat; do
            [ -f "$f" ] || continue
            echo "---- $(basename "$f") (last 30 lines)" >&2
            tail -30 "$f" >&2
        done
    done
    exit 1
}

ok() { echo "ok: $*"; }

# wait_until DEADLINE_SECONDS DESCRIPTION COMMAND...: polls COMMAND every
# $WAIT_STEP s until it succeeds; fails the test after the deadline.
wait_until() {
    _d=$1; _what=$2; shift 2
    _end=$(( $(date +%s) + _d ))
    while ! "$@" >/dev/null 2>&1; do
        [ "$(date +%s)" -ge "$_end" ] && fail "timed out after ${_d}s waiting for: $_what"
        sleep "$WAIT_STEP"
    done
}

# ==== processes ====

track() { PIDS="$PIDS $1"; }

cleanup() {
    for p in $PIDS; do kill "$p" 2>/dev/null; done
    for p in $PIDS; do
        i=0
        while kill -0 "$p" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
        kill -9 "$p" 2>/dev/null
    done
    rm -rf "$TMP"
}

# free_port [ADDRESS]: a TCP port free right now on ADDRESS (127.0.0.1).
free_port() {
    python3 -S -c 'import socket,sys; s=socket.socket(); s.bind((sys.argv[1],0)); print(s.getsockname()[1])' \
        "${1-127.0.0.1}"
}

# redis_exec PORT DIR [redis-server ARG...]: becomes a redis-server on
# 127.0.0.1:PORT, data in DIR, no persistence (ARGs come last and win, e.g.
# --appendonly yes). Run it in the background: redis_exec ... >log 2>&1 &
redis_exec() {
    _p=$1; _dir=$2; shift 2
    exec redis-server --port "$_p" --bind 127.0.0.1 --save '' --appendonly no \
        --dir "$_dir" --daemonize no "$@"
}

# daemon_exec publisher|gateway PORT REDIS_URL [VAR=value ...]: becomes
# $BIN/flagcast-NAME listening on 127.0.0.1:PORT against REDIS_URL, with
# the extra environment (which may override both).
daemon_exec() {
    _name=$1; _p=$2; _url=$3; shift 3
    exec env FLAGCAST_LISTEN=127.0.0.1:$_p FLAGCAST_REDIS_URL=$_url "$@" "$BIN/flagcast-$_name"
}

# ==== probes (for wait_until) ====

# redis_ping PORT [PASSWORD]: redis-server answers PONG.
redis_ping() {
    if [ -n "${2:-}" ]; then
        redis-cli -p "$1" -a "$2" --no-auth-warning ping 2>/dev/null | grep -q PONG
    else
        redis-cli -p "$1" ping 2>/dev/null | grep -q PONG
    fi
}

http_code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
# is_code STATUS CURL-ARG...: the request answers STATUS.
is_code() { _want=$1; shift; [ "$(http_code "$@")" = "$_want" ]; }

# ==== the test stack ====

node_deps() {
    command -v node >/dev/null || fail "node is required (scripts/deps.sh installs it)"
    if [ ! -d "$GW_DIR/node_modules/ws" ] || [ ! -d "$GW_DIR/node_modules/@msgpack/msgpack" ] ||
       [ ! -d "$GW_DIR/node_modules/eventsource" ]; then
        (cd "$GW_DIR" && npm ci --no-audit --no-fund --loglevel=error >/dev/null 2>&1) ||
            fail "npm ci in $GW_DIR failed"
    fi
}

# start_redis: a redis-server on a free port; sets REDIS_PORT, REDIS_PID,
# REDIS_URL; log $TMP/redis.log.
start_redis() {
    REDIS_PORT=$(free_port)
    redis_exec "$REDIS_PORT" "$TMP" >"$TMP/redis.log" 2>&1 &
    REDIS_PID=$!; track $REDIS_PID
    wait_until 10 "redis-server on $REDIS_PORT" redis_ping "$REDIS_PORT"
    REDIS_URL=redis://127.0.0.1:$REDIS_PORT
}

# start_publisher [VAR=value ...]: the publisher on a free port, admin
# token $TOKEN; sets PUB_PORT, PUB_PID, PUB; log $TMP/publisher.log.
start_publisher() {
    PUB_PORT=$(free_port)
    daemon_exec publisher "$PUB_PORT" "$REDIS_URL" FLAGCAST_ADMIN_TOKENS=$TOKEN "$@" \
        >"$TMP/publisher.log" 2>&1 &
    PUB_PID=$!; track $PUB_PID
    PUB=http://127.0.0.1:$PUB_PORT
    wait_until 10 "publisher ready" is_code 200 "$PUB/readyz"
}

# start_gateway [VAR=value ...]: extra environment for the gateway.
# FLAGCAST_DRAIN_SECONDS=0: SIGTERM stops at once (no drain delay), so that
# cleanup is quick; the paced drain has its own tests (test_scale_*.sh).
# Sets GW_PORT, GW_PID, GW, WSURL; log $TMP/gateway.log.
start_gateway() {
    GW_PORT=$(free_port)
    daemon_exec gateway "$GW_PORT" "$REDIS_URL" FLAGCAST_DRAIN_SECONDS=0 "$@" \
        >"$TMP/gateway.log" 2>&1 &
    GW_PID=$!; track $GW_PID
    GW=http://127.0.0.1:$GW_PORT
    WSURL=ws://127.0.0.1:$GW_PORT
    wait_until 10 "gateway ready" is_code 200 "$GW/readyz"
}

# start_gw NAME [VAR=value ...]: one of several gateways, logging to
# $TMP/gw-NAME.log (no FLAGCAST_DRAIN_SECONDS=0: the recovery tests stop
# them as deployed); sets GWPORT_NAME and GWPID_NAME.
start_gw() {
    _n=$1; shift
    _p=$(free_port)
    daemon_exec gateway "$_p" "$REDIS_URL" "$@" >"$TMP/gw-$_n.log" 2>&1 &
    track $!
    eval "GWPORT_$_n=$_p; GWPID_$_n=$!"
    wait_until 20 "gateway $_n ready" is_code 200 "http://127.0.0.1:$_p/readyz"
}

# api METHOD PATH [JSON]: an admin API call that must succeed (2xx).
api() {
    _code=$(curl -s -o "$TMP/api.out" -w '%{http_code}' -X "$1" \
        -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
        ${3:+--data "$3"} "$PUB$2")
    case "$_code" in 2*) ;; *) fail "$1 $2 answered $_code: $(cat "$TMP/api.out")" ;; esac
}

# ==== clients ====

# sse NAME QUERY-PATH: starts curl -N capturing into $TMP/NAME.sse.
sse() {
    curl -sN "$GW$2" >"$TMP/$1.sse" 2>"$TMP/$1.curlerr" &
    track $!
    eval "SSE_PID_$1=$!"
}

# sse_lines NAME: the summary lines of what NAME received so far.
sse_lines() { node "$GW_DIR/sse_parse.js" "$TMP/$1.sse"; }

# sse_has NAME PATTERN / ws_has NAME PATTERN / file_has FILE PATTERN: what
# SSE client NAME received, what WS client NAME printed ($TMP/NAME.out),
# a file, holds a line matching PATTERN (for wait_until).
sse_has() { sse_lines "$1" | grep -q -- "$2"; }
ws_has() { grep -q -- "$2" "$TMP/$1.out"; }
file_has() { grep -q -- "$2" "$1"; }

# ==== what the daemons say ====

metric() {
    curl -s "$GW/metrics" | awk -v n="$1" '$1 == n { print $2; found = 1 } END { if (!found) print 0 }'
}
metric_ge() { [ "$(metric "$1")" -ge "$2" ] 2>/dev/null; }
metric_eq() { [ "$(metric "$1")" = "$2" ]; }

# numsub CHANNEL: how many subscribers Redis counts on flagcast:ch:CHANNEL
# (one per gateway that has a client of it); numsub_is / numsub_ge
# CHANNEL N compare it (for wait_until).
numsub() { redis-cli -p "$REDIS_PORT" pubsub numsub "flagcast:ch:$1" | sed -n 2p; }
numsub_is() { [ "$(numsub "$1")" = "$2" ]; }
numsub_ge() { [ "$(numsub "$1")" -ge "$2" ] 2>/dev/null; }

# expect NAME ACTUAL-FILE EXPECTED-TEXT: exact comparison, diff on failure.
expect() {
    printf '%s\n' "$3" >"$TMP/$1.expected"
    if ! diff -u "$TMP/$1.expected" "$2" >"$TMP/$1.diff"; then
        cat "$TMP/$1.diff" >&2
        fail "$1: received events differ from the expected ones"
    fi
}

# ==== how it was entered ====

case "$0" in
harness.sh|*/harness.sh)
    # Executed (by harness.c): run one of the commands listed at the top.
    [ $# -ge 1 ] || { echo "usage: harness.sh free_port|redis_exec|daemon_exec|wait_until ARG..." >&2; exit 2; }
    _cmd=$1; shift
    case "$_cmd" in
    free_port|redis_exec|daemon_exec|wait_until) "$_cmd" "$@"; exit $? ;;
    *) echo "harness.sh: unknown command $_cmd" >&2; exit 2 ;;
    esac
    ;;
esac

if [ "${HARNESS_LIB:-}" != 1 ]; then
    # Sourced by a test: its temp dir and its cleanup.
    TMP=$(mktemp -d "${TMPDIR:-/tmp}/flagcast-gwtest.XXXXXX")
    trap cleanup EXIT
    trap 'exit 1' INT TERM
fi
