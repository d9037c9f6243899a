#!/bin/sh
# An event dropped because a service thread's inbox is full
# (FLAGCAST_INBOX_MAX) is never silent (issue 9.8): it is counted
# (flagcast_gateway_drops_total) and the thread's subscribers of the channel
# get a resync ("gateway overloaded"), so a client sees every message once
# and in order, or a resync before any jump. The inbox is made tiny and the
# thread busy (1,500 other subscribers on the channel, bursts of parallel
# publishes) so that it overflows for real.
. "$(dirname "$0")/harness.sh"
. "$GW_DIR/recovery.sh"

node_deps
start_redis
start_publisher
start_gateway FLAGCAST_THREADS=1 FLAGCAST_INBOX_MAX=1 FLAGCAST_QUEUE_MAX_EVENTS=100000 \
    FLAGCAST_QUEUE_MAX_BYTES=1073741824

"$BIN/bench-loadgen" --url "$GW/api/v1/realtime/sse?channels=busy" --publish http://127.0.0.1:1/unused \
    --connections 1500 --rounds 0 --warmup 0 --settle 0 --hold 300 >"$TMP/load.out" 2>"$TMP/load.err" &
track $!
sse_client C busy "$GW"
streams() { metric_ge 'flagcast_gateway_connections{transport="sse"}' 1501; }
wait_until 60 "1,501 SSE streams" streams
wait_until 10 "C connected" grep -q '^open' "$TMP/C.out"

n=0
round=0
while [ "$round" -lt 8 ]; do
    round=$((round + 1))
    i=0
    while [ $i -lt 300 ]; do i=$((i + 1)); echo "$i"; done |
        xargs -P 16 -I{} curl -s -o /dev/null -w '%{http_code}\n' -X POST \
            -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
            --data '{"data":{"m":{}}}' "$PUB/api/v1/channels/busy/messages" >"$TMP/codes"
    [ "$(grep -c '^2' "$TMP/codes")" = 300 ] || fail "a publish failed: $(sort "$TMP/codes" | uniq -c)"
    n=$((n + 300))
    metric_ge flagcast_gateway_drops_total 1 && break
done
drops=$(metric flagcast_gateway_drops_total)
[ "$drops" -ge 1 ] || fail "no event was dropped at the inbox in $round bursts: the test did not overflow it"
# one more, alone, so that the last offset is delivered and not only resynced
publish busy 0
n=$((n + 1))
wait_until 60 "C reached offset $n" grep -q "^message busy $n " "$TMP/C.out"
res=$(node "$GW_DIR/check_seq.js" "$TMP/C.out" busy "$n" resync) || fail "C: $res"
grep -q '^resync busy "gateway overloaded"' "$TMP/C.out" || fail "no 'gateway overloaded' resync: $(grep resync "$TMP/C.out" | head -3)"
grep -q 'service thread inbox full, event dropped' "$TMP/gateway.log" || fail "the drop was not logged"
ok "inbox overflow: $drops events dropped in $round bursts of 300, all counted and logged; C saw $res, every jump after a resync"
