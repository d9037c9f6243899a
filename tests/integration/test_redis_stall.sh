#!/bin/sh
# Redis stalled (issue 9e): redis-server is SIGSTOPped. Its kernel still
# accepts connections, so only a reply timeout notices: the health ping on
# every connection goes unanswered, /readyz of the publisher and the gateway
# turns 503 within a few seconds, and an admin call answers 503 within the
# command timeout instead of hanging. After SIGCONT both are ready again and
# an SSE client connected before the stall gets every event published
# before, during (retried until accepted) and after it, once and in order.
. "$(dirname "$0")/harness.sh"
. "$(dirname "$0")/gw/recovery.sh"

STOPPED=""
# never leave redis stopped: CONT before harness.sh's cleanup kills it
trap '[ -n "$STOPPED" ] && kill -CONT "$REDIS_PID" 2>/dev/null; cleanup' EXIT

node_deps
start_redis
start_publisher
start_gw A
A=http://127.0.0.1:$GWPORT_A
sse_client s1 chat "$A"
wait_until 20 "s1 open" opened s1 1
wait_until 20 "gateway subscribed to chat" numsub_is chat 1
publish_range chat 1 5
wait_until 20 "s1 got 5" got s1 chat 5

kill -STOP "$REDIS_PID"; STOPPED=1
T0=$(date +%s)
# a call already on its way when Redis stalls: answered when its reply is
# overdue (FLAGCAST_REDIS_TIMEOUT_MS 2000), not left hanging
code=$(curl -s -m 6 -o "$TMP/inflight.out" -w '%{http_code}' -X POST \
    -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    --data '{"data":{"m":"inflight"}}' "$PUB/api/v1/channels/other/messages")
[ "$code" = 503 ] || fail "admin POST sent as Redis stalled answered '$code' (000: hung)"
grep -q '"redis_timeout"\|"redis_unavailable"' "$TMP/inflight.out" ||
    fail "503 without the Redis error code: $(cat "$TMP/inflight.out")"
ok "admin POST sent as Redis stalled: 503 after $(( $(date +%s) - T0 ))s $(cat "$TMP/inflight.out")"
wait_until 8 "publisher /readyz 503 while Redis is stopped" is_code 503 -m 2 "$PUB/readyz"
wait_until 8 "gateway /readyz 503 while Redis is stopped" is_code 503 -m 2 "$A/readyz"
ok "both /readyz 503 after $(( $(date +%s) - T0 ))s of stall"

code=$(curl -s -m 6 -o "$TMP/stall.out" -w '%{http_code}' -X POST \
    -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    --data '{"data":{"m":"stalled"}}' "$PUB/api/v1/channels/other/messages")
[ "$code" = 503 ] || fail "admin POST during the stall answered '$code' (000: hung)"
grep -q '"error"' "$TMP/stall.out" || fail "503 without a JSON error: $(cat "$TMP/stall.out")"
ok "admin POST during the stall: 503 $(cat "$TMP/stall.out")"

sleep 1
kill -CONT "$REDIS_PID"; STOPPED=""
wait_until 20 "publisher ready after SIGCONT" is_code 200 "$PUB/readyz"
wait_until 20 "gateway ready after SIGCONT" is_code 200 "$A/readyz"
ok "both /readyz 200 after SIGCONT"

publish_range chat 6 15
wait_until 30 "s1 got 15" got s1 chat 15
check s1 chat 15
grep -q "ping unanswered\|not received within the timeout" "$TMP/gw-A.log" ||
    fail "the gateway log does not name the timeout"
ok "redis stall: detected, refused quickly, recovered without loss"
