#!/bin/sh
# The gateway's HTTP / SSE / WS edges (issue 9): health that tells the
# truth, no silent widening of a subscription (unknown SSE parameters and WS
# fields are errors naming them), unknown WS subprotocols answered 400,
# CORS for credentialed EventSource, an oversize request head answered 431,
# %00 answered 400, JWTs without exp refused, unmasked client frames closed
# 1002. Real redis-server, publisher and gateway; curl, node ws clients.
. "$(dirname "$0")/gw/lib.sh"

node_deps
start_redis
start_publisher
start_gateway

# get URL [curl args]: sets BODY (trailing newline dropped) and CODE.
get() {
    _u=$1; shift
    CODE=$(curl -s -o "$TMP/body" -w '%{http_code}' "$@" "$_u")
    BODY=$(cat "$TMP/body")
}

# ---- health: Flagent's path too; unhealthy (503 + reason) without Redis
for p in /api/v1/realtime/sse/health /realtime/sse/health; do
    get "$GW$p"
    [ "$CODE $BODY" = '200 {"status":"healthy","activeConnections":0,"protocol":"SSE"}' ] ||
        fail "health $p answered: $CODE $BODY"
done
NOREDIS_PORT=$(free_port)
GW2_PORT=$(free_port)
env FLAGCAST_LISTEN=127.0.0.1:$GW2_PORT FLAGCAST_REDIS_URL=redis://127.0.0.1:$NOREDIS_PORT \
    FLAGCAST_DRAIN_SECONDS=0 "$BIN/flagcast-gateway" >"$TMP/gateway2.log" 2>&1 &
GW2_PID=$!; track $GW2_PID
wait_until 10 "gateway without Redis alive" is_code 200 "http://127.0.0.1:$GW2_PORT/healthz"
get "http://127.0.0.1:$GW2_PORT/realtime/sse/health"
[ "$CODE $BODY" = '503 {"status":"unhealthy","reason":"starting: flags not loaded yet","activeConnections":0,"protocol":"SSE"}' ] ||
    fail "health without Redis answered: $CODE $BODY"
kill "$GW2_PID"
# Redis lost after the start: unhealthy "redis unavailable"
redis-cli -p "$REDIS_PORT" client kill type pubsub >/dev/null
redis-cli -p "$REDIS_PORT" config set requirepass x >/dev/null
redis-cli -p "$REDIS_PORT" -a x --no-auth-warning client kill type pubsub >/dev/null
redis-cli -p "$REDIS_PORT" -a x --no-auth-warning client kill type normal >/dev/null
unhealthy_redis() {
    [ "$(curl -s "$GW/api/v1/realtime/sse/health")" = \
      '{"status":"unhealthy","reason":"redis unavailable","activeConnections":0,"protocol":"SSE"}' ]
}
wait_until 20 "health says redis unavailable" unhealthy_redis
is_code 503 "$GW/api/v1/realtime/sse/health" || fail "unhealthy health is not 503"
redis-cli -p "$REDIS_PORT" -a x --no-auth-warning config set requirepass '' >/dev/null
wait_until 30 "healthy again" is_code 200 "$GW/api/v1/realtime/sse/health"
ok "health: both paths, 503 with a reason while starting or without Redis"
