#!/bin/sh
# Recovery (issue 5, fault 2): redis-server with AOF on (appendfsync always)
# is killed while the publisher keeps publishing (its requests fail with 503
# while Redis is away; the test retries them) and restarted on the same port
# and dir a few seconds later. The gateways reconnect, read the history since
# the last offset they delivered and deliver the gap before live: every
# client (SSE and WS, their gateway connections stay open) gets every event
# exactly once and in offset order.
. "$(dirname "$0")/harness.sh"
. "$(dirname "$0")/gw/recovery.sh"

node_deps
REDIS_PORT=$(free_port)
REDIS_URL=redis://127.0.0.1:$REDIS_PORT
mkdir -p "$TMP/rdata"
redis_up() {
    redis_exec "$REDIS_PORT" "$TMP/rdata" --appendonly yes --appendfsync always >>"$TMP/redis.log" 2>&1 &
    REDIS_PID=$!; track $REDIS_PID
    wait_until 20 "redis-server on $REDIS_PORT" redis_ping "$REDIS_PORT"
}
redis_up
start_publisher
start_gw A
A=http://127.0.0.1:$GWPORT_A
sse_client s1 feed "$A"
sse_client s2 feed "$A"
ws_client_r w1 feed "ws://127.0.0.1:$GWPORT_A"
for c in s1 s2 w1; do wait_until 20 "$c open" opened $c 1; done
wait_until 20 "gateway subscribed to feed" numsub_is feed 1

publish_range feed 1 20
for c in s1 s2 w1; do wait_until 20 "$c got 20" got $c feed 20; done
( publish_range feed 21 60 ) &
PUBJOB=$!
track $PUBJOB
wait_until 20 "publishing goes on" got s1 feed 25
kill -9 "$REDIS_PID"
wait_until 10 "publisher notices (503)" is_code 503 "$PUB/readyz"
sleep 3   # the outage: the publisher keeps retrying meanwhile
redis_up
wait "$PUBJOB" || fail "publishing failed"
wait_until 30 "gateway ready again" is_code 200 "$A/readyz"
publish_range feed 61 70
N=$(redis-cli -p "$REDIS_PORT" hget flagcast:meta:feed offset)
[ "$N" -ge 70 ] 2>/dev/null || fail "meta offset $N"
for c in s1 s2 w1; do wait_until 30 "$c got $N" got $c feed "$N"; done
for c in s1 s2 w1; do check $c feed "$N"; done
[ "$(grep -c '^open' "$TMP/s1.out")" = 1 ] || fail "s1 had to reconnect: the gateway should have kept it"
kill -0 "$GWPID_A" || fail "gateway died"
stop_gws A
ok "Redis (AOF) killed and restarted under publishing: every client got 1..$N once, in order"
exit 0
