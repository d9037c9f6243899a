#!/bin/sh
# Slow consumers and malformed input. A client that never reads falls
# behind: flag events for the same flag conflate in its queue (it is kept),
# then events on another channel overflow its queue and it is disconnected
# with a log line naming it and the reason, while a fast client on the same
# channels receives everything. Malformed messages PUBLISHed straight into
# Redis are counted and dropped while the gateway keeps serving.
. "$(dirname "$0")/harness.sh"

node_deps
start_redis
start_publisher
api POST /api/v1/flags '{"key":"k1","enabled":true}'
start_gateway FLAGCAST_QUEUE_MAX_EVENTS=64 FLAGCAST_QUEUE_MAX_BYTES=33554432

python3 "$GW_DIR/stuck_client.py" "$GW_PORT" "/api/v1/realtime/sse?channels=bulk,flags" >"$TMP/stuck.out" 2>&1 &
track $!
sse FAST "/api/v1/realtime/sse?channels=bulk,flags"
wait_until 10 "FAST snapshot" sse_has FAST '^snapshot'
wait_until 10 "SUBSCRIBE bulk" numsub_is bulk 1
sse_gauge_is() { metric_eq 'flagcast_gateway_connections{transport="sse"}' "$1"; }
wait_until 10 "both clients streaming" sse_gauge_is 2

# ~10 MB on bulk: more than the kernel buffers of the stuck client hold
blob=$(head -c 150000 /dev/zero | tr '\0' 'x')
printf '{"data":{"blob":"%s"}}' "$blob" >"$TMP/blob.json"
i=0
while [ $i -lt 70 ]; do
    api POST /api/v1/channels/bulk/messages "@$TMP/blob.json"
    i=$((i + 1))
done
# 100 changes of one flag: they conflate in the stuck client's queue
i=0
while [ $i -lt 50 ]; do
    api PUT /api/v1/flags/k1/enabled '{"enabled":false}'
    api PUT /api/v1/flags/k1/enabled '{"enabled":true}'
    i=$((i + 1))
done
wait_until 20 "FAST got the last flag change" sse_has FAST '^flag.toggled flags k1 101 enabled=true'
metric_ge flagcast_gateway_conflations_total 1 || fail "no conflation: $(metric flagcast_gateway_conflations_total)"
metric_eq flagcast_gateway_slow_consumer_disconnects_total 0 || fail "stuck client cut off while its flags conflated"
sse_gauge_is 2 || fail "a client was dropped during conflation"
ok "flag events conflated for the stuck client ($(metric flagcast_gateway_conflations_total)), it stays"

# 80 small messages on bulk: its queue (64 events) overflows
i=0
while [ $i -lt 80 ]; do
    api POST /api/v1/channels/bulk/messages "{\"data\":{\"i\":$i}}"
    i=$((i + 1))
done
wait_until 10 "slow consumer disconnected" metric_eq flagcast_gateway_slow_consumer_disconnects_total 1
wait_until 5 "stuck client closed" sse_gauge_is 1
grep 'slow consumer disconnected' "$TMP/gateway.log" | grep -q 'conn=' ||
    fail "no log line naming the connection"
grep 'slow consumer disconnected' "$TMP/gateway.log" | grep -q 'reason=' ||
    fail "no log line with the reason"
wait_until 20 "FAST got every bulk message" sse_has FAST '^message bulk 150 {"i":79}'
n=$(sse_lines FAST | grep -c '^message bulk ')
[ "$n" = 150 ] || fail "FAST received $n of 150 bulk messages"
n=$(sse_lines FAST | grep -c '^flag.toggled flags k1 ')
[ "$n" = 100 ] || fail "FAST received $n of 100 flag changes"
sse_lines FAST | grep -q BAD && fail "FAST saw a bad event: $(sse_lines FAST | grep BAD | head -3)"
ok "stuck client disconnected with a log line; fast client received all 250 events"

# ---- malformed messages straight into Redis
before=$(metric flagcast_gateway_events_malformed_total)
redis-cli -p "$REDIS_PORT" publish flagcast:ch:flags "not msgpack" >/dev/null
redis-cli -p "$REDIS_PORT" publish flagcast:ch:bulk "" >/dev/null
printf '\224\001\244bulk' | redis-cli -p "$REDIS_PORT" -x publish flagcast:ch:bulk >/dev/null
printf '\334\377\377\377' | redis-cli -p "$REDIS_PORT" -x publish flagcast:ch:flags >/dev/null
printf '\301\301\301' | redis-cli -p "$REDIS_PORT" -x publish flagcast:ch:bulk >/dev/null
wait_until 5 "5 malformed counted" metric_eq flagcast_gateway_events_malformed_total $((before + 5))
grep -q 'malformed message dropped' "$TMP/gateway.log" || fail "no log line for malformed messages"
api POST /api/v1/channels/bulk/messages '{"data":{"after":"malformed"}}'
wait_until 10 "FAST still served" sse_has FAST '"after":"malformed"'
is_code 200 "$GW/healthz" || fail "healthz after malformed input"
sse_lines FAST | grep -q BAD && fail "a malformed message reached a client"
ok "malformed messages counted and dropped, gateway keeps serving"

kill -0 "$GW_PID" || fail "gateway died"
exit 0
