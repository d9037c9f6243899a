#!/bin/sh
# Refusals a client should retry are sent in a form its library retries
# (issue 9, item 5): an EventSource (npm `eventsource`, which like browsers
# gives up for good on any non-200) refused because the gateway is starting
# (flags not loaded), at its connection cap, or draining gets 200
# text/event-stream with a jittered retry: hint and an end, reconnects, and
# is served once the cause is gone; a WebSocket is closed 1013 / 1012.
# /readyz stays 503 for balancers.
. "$(dirname "$0")/harness.sh"

node_deps
es_has() { grep -q -- "$2" "$TMP/$1.es"; }
es_count() { grep -c -- "^$2\$" "$TMP/$1.es"; }
# es NAME URL UNTIL: an EventSource client in the background
es() {
    node "$GW_DIR/es_client.js" "$2" "$3" 90 >"$TMP/$1.es" 2>&1 &
    eval "ES_PID_$1=$!"; track $!
}
es_exit() { eval "wait \$ES_PID_$1"; }

# ---- starting: no Redis yet, the client keeps coming back, then is served
REDIS_PORT=$(free_port)
REDIS_URL=redis://127.0.0.1:$REDIS_PORT
GW_PORT=$(free_port)
GW=http://127.0.0.1:$GW_PORT
daemon_exec gateway "$GW_PORT" "$REDIS_URL" FLAGCAST_SSE_RETRY=200 \
    FLAGCAST_MAX_CONNECTIONS=1 FLAGCAST_THREADS=1 FLAGCAST_DRAIN_DELAY=0 FLAGCAST_DRAIN_SECONDS=60 \
    >"$TMP/gateway.log" 2>&1 &
GW_PID=$!; track $GW_PID
wait_until 10 "gateway answering" is_code 503 "$GW/readyz"
es S "$GW/api/v1/realtime/sse" snapshot
opened_twice() { [ "$(es_count S open)" -ge 2 ]; }
wait_until 30 "EventSource reconnected after a 'starting' refusal" opened_twice
es_has S 'closed for good' && fail "EventSource gave up: $(cat "$TMP/S.es")"
is_code 503 "$GW/readyz" || fail "readyz is not 503 while starting"
redis_exec "$REDIS_PORT" "$TMP" >"$TMP/redis.log" 2>&1 &
track $!
es_exit S || fail "EventSource not served once the flags loaded: $(cat "$TMP/S.es")"
grep -q '^error 0' "$TMP/S.es" || fail "no reconnecting error seen: $(cat "$TMP/S.es")"
ok "starting: EventSource retried ($(es_count S open) responses) and got its snapshot"

# ---- at the cap (1): refused, retried, served once the slot is free
wait_until 10 "gateway ready" is_code 200 "$GW/readyz"
curl -sN "$GW/api/v1/realtime/sse" >"$TMP/hold.sse" 2>/dev/null &
HOLD=$!; track $HOLD
hold_in() { node "$GW_DIR/sse_parse.js" "$TMP/hold.sse" | grep -q '^snapshot'; }
wait_until 10 "the holder has the only slot" hold_in
before=$(metric flagcast_gateway_connections_rejected_total)
es C "$GW/api/v1/realtime/sse" snapshot
retried() { [ "$(metric flagcast_gateway_connections_rejected_total)" -ge $((before + 2)) ]; }
wait_until 30 "EventSource refused twice at the cap (it retried)" retried
es_has C 'closed for good' && fail "EventSource gave up at the cap: $(cat "$TMP/C.es")"
es_has C 'event snapshot' && fail "EventSource served over the cap"
out=$(sleep 3 | timeout 10 node "$GW_DIR/ws_client.js" "ws://127.0.0.1:$GW_PORT/ws" | tr '\n' ' ')
[ "$out" = "open - close 1013 " ] || fail "WS over the cap: $out"
kill "$HOLD"
es_exit C || fail "EventSource not served once the slot was free: $(cat "$TMP/C.es")"
ok "full: EventSource retried until a slot was free; WS closed 1013"

# ---- draining: a stream that keeps the gateway alive (the 60 s window
# closes the first at once, so hold two), then a newcomer is refused with
# retry and comes back; a WS newcomer gets 1012
wait_until 10 "C's stream gone" metric_eq 'flagcast_gateway_connections{transport="sse"}' 0
kill "$GW_PID"; wait "$GW_PID"
daemon_exec gateway "$GW_PORT" "$REDIS_URL" FLAGCAST_SSE_RETRY=200 \
    FLAGCAST_THREADS=1 FLAGCAST_DRAIN_DELAY=0 FLAGCAST_DRAIN_SECONDS=60 \
    >"$TMP/gateway2.log" 2>&1 &
GW_PID=$!; track $GW_PID
wait_until 10 "gateway ready again" is_code 200 "$GW/readyz"
for n in 1 2 3; do
    curl -sN "$GW/api/v1/realtime/sse" >"$TMP/h$n.sse" 2>/dev/null &
    track $!
done
wait_until 10 "3 streams" metric_eq 'flagcast_gateway_connections{transport="sse"}' 3
kill -TERM "$GW_PID"
window_open() { grep -q 'telling clients to reconnect elsewhere' "$TMP/gateway2.log"; }
wait_until 10 "drain window opens" window_open
is_code 503 "$GW/readyz" || fail "readyz is not 503 while draining"
es D "$GW/api/v1/realtime/sse" opens=3
es_exit D || fail "EventSource did not come back after a 'draining' refusal: $(cat "$TMP/D.es")"
grep -q '^error 0' "$TMP/D.es" || fail "no reconnecting error seen: $(cat "$TMP/D.es")"
es_has D 'event snapshot' && fail "EventSource served while draining"
code=$(curl -s -D "$TMP/d.h" -o "$TMP/d.out" -w '%{http_code}' "$GW/api/v1/realtime/sse")
[ "$code" = 200 ] || fail "draining refusal answered $code"
grep -qi '^x-flagcast-refused: draining' "$TMP/d.h" || fail "refusal header: $(cat "$TMP/d.h")"
out=$(sleep 3 | timeout 10 node "$GW_DIR/ws_client.js" "ws://127.0.0.1:$GW_PORT/ws" | tr '\n' ' ')
[ "$out" = "open - close 1012 " ] || fail "WS while draining: $out"
ok "draining: EventSource refused with retry and came back ($(es_count D open) responses); WS closed 1012"
