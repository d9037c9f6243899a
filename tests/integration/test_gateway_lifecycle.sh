#!/bin/sh
# Redis going away and coming back, and SIGTERM. While Redis is away
# /readyz answers 503 (the process stays alive and keeps its clients); when
# it returns the gateway reconnects, subscribes every channel again and
# reloads the mirror, and events flow to the same clients. On SIGTERM SSE
# clients get a retry: hint and the stream ends, WS clients get close 1001,
# and the process exits 0. FLAGCAST_DRAIN_SECONDS=0: the immediate stop
# (the paced drain is test_scale_haproxy.sh's).
. "$(dirname "$0")/harness.sh"

node_deps
start_redis
start_publisher
start_gateway FLAGCAST_THREADS=2 FLAGCAST_DRAIN_SECONDS=0

sse A "/api/v1/realtime/sse?channels=flags,chat.room1"
wait_until 10 "A snapshot" sse_has A '^snapshot'
mkfifo "$TMP/W.in"
node "$GW_DIR/ws_client.js" "$WSURL/ws" <"$TMP/W.in" >"$TMP/W.out" 2>"$TMP/W.err" &
track $!
exec 4>"$TMP/W.in"
echo '{"type":"subscribe","channels":["chat.room1"]}' >&4
wait_until 10 "W subscribed" ws_has W '^subscribed'
wait_until 10 "SUBSCRIBE chat.room1" numsub_is chat.room1 1
ok "clients connected"

# ---- Redis away: not ready, still alive, clients kept
kill "$REDIS_PID"
wait_until 10 "readyz 503 while Redis is away" is_code 503 "$GW/readyz"
is_code 200 "$GW/healthz" || fail "healthz while Redis is away"
sse_gauge_is() { metric_eq 'flagcast_gateway_connections{transport="sse"}' "$1"; }
sse_gauge_is 1 || fail "SSE client dropped while Redis is away"
ok "readyz 503 while Redis is away"

# ---- Redis back on the same port: reconnect, resubscribe, reload
redis_exec "$REDIS_PORT" "$TMP" >"$TMP/redis2.log" 2>&1 &
track $!
wait_until 15 "readyz 200 after Redis returned" is_code 200 "$GW/readyz"
wait_until 10 "chat.room1 subscribed again" numsub_is chat.room1 1
metric_ge flagcast_gateway_redis_reconnects_total 1 || fail "reconnect not counted"
wait_until 15 "publisher ready again" is_code 200 "$PUB/readyz"
api POST /api/v1/flags '{"key":"k9","enabled":true}'
api POST /api/v1/channels/chat.room1/messages '{"data":{"back":true}}'
wait_until 10 "A got the flag after the outage" sse_has A '^flag.created flags k9'
wait_until 10 "A got the message after the outage" sse_has A '"back":true'
wait_until 10 "W got the message after the outage" ws_has W '"back":true'
sse A2 "/api/v1/realtime/sse"
wait_until 10 "A2 snapshot" sse_has A2 '^snapshot k9$'
ok "reconnected, resubscribed, mirror reloaded"

# ---- SIGTERM
kill -TERM "$GW_PID"
exited() { ! kill -0 "$GW_PID" 2>/dev/null; }
wait_until 10 "gateway exit after SIGTERM" exited
wait "$GW_PID"; rc=$?
[ "$rc" = 0 ] || fail "gateway exited with $rc after SIGTERM"
wait_until 5 "W closed" ws_has W '^close'
ws_has W '^close 1001' || fail "WS close code: $(grep '^close' "$TMP/W.out")"
last=$(sse_lines A | grep -v '^:$' | tail -1)
[ "$last" = "retry 3000" ] || fail "SSE stream did not end with a retry hint: $last"
grep -q 'gateway stopped' "$TMP/gateway.log" || fail "no stop log line"
ok "SIGTERM: SSE retry + close, WS 1001, exit 0"
exit 0
