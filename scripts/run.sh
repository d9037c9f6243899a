#!/bin/sh
# run.sh — `make run`: a private redis-server, flagcast-publisher and (if
# built) flagcast-gateway on localhost, with a fresh dev admin token. Prints
# how to use them and stays in the foreground until Ctrl-C, then stops
# everything it started, by PID, and removes its temp dir.
#
# Environment: BIN (default: bin next to this script's parent), REDIS_PORT
# (default 6379, or the next free one), FLAGCAST_REDIS_PREFIX (default
# flagcast), PUBLISHER_PORT (8081), GATEWAY_PORT (8080).
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BIN:-$top/bin}
PREFIX=${FLAGCAST_REDIS_PREFIX:-flagcast}
PUBLISHER_PORT=${PUBLISHER_PORT:-8081}
GATEWAY_PORT=${GATEWAY_PORT:-8080}

die() { echo "run: $*" >&2; exit 1; }

[ -x "$BIN/flagcast-publisher" ] || die "$BIN/flagcast-publisher is missing (run make first)"
command -v redis-server >/dev/null || die "redis-server is not installed (make deps)"
command -v curl >/dev/null || die "curl is not installed (make deps)"

# A TCP port is taken if something accepts a connection on it.
port_taken() {
    curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$1/" 2>/dev/null
    [ $? -ne 7 ]
}

REDIS_PORT=${REDIS_PORT:-6379}
n=0
while port_taken "$REDIS_PORT"; do
    n=$((n + 1)); [ $n -lt 50 ] || die "no free port for redis-server near 6379"
    REDIS_PORT=$((REDIS_PORT + 1))
done
port_taken "$PUBLISHER_PORT" && die "port $PUBLISHER_PORT is in use (set PUBLISHER_PORT)"
if [ -x "$BIN/flagcast-gateway" ]; then
    port_taken "$GATEWAY_PORT" && die "port $GATEWAY_PORT is in use (set GATEWAY_PORT)"
fi

mkdir -p "$top/build"
dir=$(mktemp -d "$top/build/run.XXXXXX")
pids=""
cleanup() {
    trap - INT TERM EXIT
    for p in $pids; do kill "$p" 2>/dev/null || true; done
    for p in $pids; do wait "$p" 2>/dev/null || true; done
    rm -rf "$dir"
    echo "run: stopped"
}
trap cleanup EXIT
trap 'exit 0' INT TERM

wait_ready() { # url pid name
    i=0
    while [ $i -lt 100 ]; do
        kill -0 "$2" 2>/dev/null || { echo "run: $3 exited; its log:" >&2; cat "$dir/$3.log" >&2; exit 1; }
        [ "$(curl -s -o /dev/null -w '%{http_code}' "$1" 2>/dev/null)" = 200 ] && return 0
        sleep 0.1; i=$((i + 1))
    done
    echo "run: $3 did not become ready; its log:" >&2; cat "$dir/$3.log" >&2; exit 1
}

redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$dir" --daemonize no --loglevel warning >"$dir/redis.log" 2>&1 &
redis_pid=$!; pids="$redis_pid"
i=0
until redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; do
    i=$((i + 1)); [ $i -lt 100 ] || die "redis-server did not start: $(cat "$dir/redis.log")"
    sleep 0.05
done

token=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
export FLAGCAST_REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
export FLAGCAST_REDIS_PREFIX="$PREFIX"

FLAGCAST_LISTEN="127.0.0.1:$PUBLISHER_PORT" FLAGCAST_ADMIN_TOKENS="dev:$token" \
    "$BIN/flagcast-publisher" >"$dir/publisher.log" 2>&1 &
pub_pid=$!; pids="$pub_pid $pids"
wait_ready "http://127.0.0.1:$PUBLISHER_PORT/readyz" "$pub_pid" publisher

gw=""
if [ -x "$BIN/flagcast-gateway" ]; then
    FLAGCAST_LISTEN="127.0.0.1:$GATEWAY_PORT" "$BIN/flagcast-gateway" >"$dir/gateway.log" 2>&1 &
    gw_pid=$!; pids="$gw_pid $pids"
    wait_ready "http://127.0.0.1:$GATEWAY_PORT/healthz" "$gw_pid" gateway
    gw=1
fi

P="http://127.0.0.1:$PUBLISHER_PORT"
cat <<MSG

flagcast is running (Ctrl-C stops everything).

  redis       redis://127.0.0.1:$REDIS_PORT  (prefix $PREFIX, data in $dir)
  publisher   $P  (admin API; metrics at $P/metrics; log in $dir/publisher.log)
MSG
[ -n "$gw" ] && echo "  gateway     http://127.0.0.1:$GATEWAY_PORT  (SSE and WebSocket; log in $dir/gateway.log)"
cat <<MSG

  dev admin token: $token

Try it:

  export FLAGCAST_URL=$P FLAGCAST_TOKEN=$token
  curl -s -H "Authorization: Bearer \$FLAGCAST_TOKEN" -d '{"key":"new-ui","description":"New UI"}' $P/api/v1/flags
  curl -s -X PUT -H "Authorization: Bearer \$FLAGCAST_TOKEN" -d '{"enabled":true}' $P/api/v1/flags/new-ui/enabled
  curl -s -H "Authorization: Bearer \$FLAGCAST_TOKEN" -d '{"data":{"text":"hello"}}' $P/api/v1/channels/chat.room1/messages
  $BIN/flagcast flags list
MSG
[ -n "$gw" ] && cat <<MSG

Watch events:

  curl -N http://127.0.0.1:$GATEWAY_PORT/api/v1/realtime/sse
MSG
echo

while :; do
    for p in $pids; do
        kill -0 "$p" 2>/dev/null || { echo "run: process $p exited; stopping" >&2; exit 1; }
    done
    sleep 1
done
