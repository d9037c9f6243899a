#!/bin/sh
# Recovery (issue 5, fault 4): clients that leave and come back with their
# cursor.
#   - an SSE client returns after 20 events with its last id: it gets the 20
#     from history, then live: 1..30 exactly once, in order;
#   - a client returns after its position left history (the publisher's
#     FLAGCAST_HISTORY_SIZE is tiny, 300 events later): an explicit
#     `resync` ("history exceeded"), then live — never silence;
#   - a client further behind than FLAGCAST_RESUME_MAX_EVENTS on a gateway
#     where that is 20: `resync` ("too far behind");
#   - a flags cursor from another epoch: a fresh snapshot;
#   - 200 clients resuming one channel at once share the history read: the
#     gateway's XRANGE calls (Redis INFO commandstats) stay at a handful.
. "$(dirname "$0")/harness.sh"
. "$(dirname "$0")/gw/recovery.sh"

node_deps
start_redis
start_publisher FLAGCAST_HISTORY_SIZE=10
start_gw A
start_gw B FLAGCAST_RESUME_MAX_EVENTS=20
A=http://127.0.0.1:$GWPORT_A
B=http://127.0.0.1:$GWPORT_B

# ---- leave after 10, return after 20 more
sse_client r1 room "$A"
wait_until 20 "r1 open" opened r1 1
wait_until 20 "A subscribed to room" numsub_is room 1
publish_range room 1 10
wait_until 20 "r1 got 10" got r1 room 10
kill "$CPID_r1"
wait_until 10 "A unsubscribed from room" numsub_is room 0
publish_range room 11 30
LAST_ID=$(cat "$TMP/r1.id")
case "$LAST_ID" in room/*/10) ;; *) fail "r1's last id is $LAST_ID" ;; esac
mv "$TMP/r1.out" "$TMP/r1a.out"
LAST_ID=$LAST_ID sse_client r1 room "$A"
wait_until 20 "r1 got 30 back" got r1 room 30
publish_range room 31 35
wait_until 20 "r1 got 35" got r1 room 35
cat "$TMP/r1a.out" "$TMP/r1.out" >"$TMP/r1all.out"
check r1all room 35
kill "$CPID_r1"
LAST35=$(cat "$TMP/r1.id")

# ---- 200 clients resume at once: one shared history read
wait_until 10 "A unsubscribed from room" numsub_is room 0
xranges() { redis-cli -p "$REDIS_PORT" info commandstats | awk -F'[=,:]' '/^cmdstat_xrange:/ { print $3; f = 1 } END { if (!f) print 0 }'; }
X0=$(xranges)
publish_range room 36 40
# the history is capped at ~10 (approximately: whole nodes of 100), 1..40 are all there
out=$(node "$GW_DIR/sse_many.js" "$A/api/v1/realtime/sse?channels=room" 200 "$LAST35" 40) ||
    fail "200 resuming clients: $out"
X1=$(xranges)
ok "200 clients resumed 36..40 from one cursor: $out, XRANGE calls $((X1 - X0))"
[ $((X1 - X0)) -le 5 ] || fail "200 resumes cost $((X1 - X0)) XRANGE calls"
GW=$A
metric_ge flagcast_gateway_resumes_total 201 || fail "resumes_total is $(metric flagcast_gateway_resumes_total)"
[ "$(metric flagcast_gateway_history_reads_total)" -le 6 ] || fail "history_reads_total is $(metric flagcast_gateway_history_reads_total)"

# ---- history exceeded: 300 events later the position is gone
EPOCH=$(redis-cli -p "$REDIS_PORT" hget flagcast:meta:room epoch)
publish_range room 41 340
FIRST=$(redis-cli -p "$REDIS_PORT" xrange flagcast:hist:room - + count 1 | head -1)
[ "${FIRST%-0}" -gt 41 ] 2>/dev/null || fail "history was not trimmed (first entry $FIRST)"
LAST_ID=room/$EPOCH/40 sse_client r2 room "$A"
wait_until 20 "r2 resync" grep -q '^resync room "history exceeded"' "$TMP/r2.out"
wait_until 10 "A subscribed to room" numsub_ge room 1
publish_range room 341 342
wait_until 20 "r2 got 342" got r2 room 342
[ "$(grep -c '^message room' "$TMP/r2.out")" = 2 ] || fail "r2 got more than live after the resync: $(cat "$TMP/r2.out")"
kill "$CPID_r2"

# ---- too far behind for gateway B's FLAGCAST_RESUME_MAX_EVENTS=20 (history has them)
# (a fresh channel: 50 entries fit in one stream node, so nothing is trimmed)
publish_range room2 1 50
EPOCH2=$(redis-cli -p "$REDIS_PORT" hget flagcast:meta:room2 epoch)
[ "$(redis-cli -p "$REDIS_PORT" xlen flagcast:hist:room2)" = 50 ] || fail "room2's history was trimmed"
LAST_ID=room2/$EPOCH2/5 sse_client r3 room2 "$B"
wait_until 20 "r3 resync" grep -q '^resync room2 "too far behind"' "$TMP/r3.out"
[ "$(grep -c '^message room2' "$TMP/r3.out")" = 0 ] || fail "r3 got part of the range: $(cat "$TMP/r3.out")"
# the same client 15 behind is served
LAST_ID=room2/$EPOCH2/35 sse_client r5 room2 "$B"
wait_until 20 "r5 got 50" got r5 room2 50
[ "$(grep -c '^message room2' "$TMP/r5.out")" = 15 ] || fail "r5: $(cat "$TMP/r5.out")"
# exactly FLAGCAST_RESUME_MAX_EVENTS behind: served; the full window then
# meets a live event (it is dropped, the event delivered)
LAST_ID=room2/$EPOCH2/30 sse_client r6 room2 "$B"
wait_until 20 "r6 got 50" got r6 room2 50
publish room2 51
wait_until 20 "r6 got 51" got r6 room2 51
wait_until 20 "r5 got 51" got r5 room2 51
[ "$(grep -c '^message room2' "$TMP/r6.out")" = 21 ] || fail "r6: $(cat "$TMP/r6.out")"
kill "$CPID_r3"

# ---- a flags cursor from another epoch: a fresh snapshot
api POST /api/v1/flags '{"key":"f1","enabled":true}'
LAST_ID=flags/no-such-epoch/7 sse_client r4 flags "$A"
# (one snapshot: the cursor's resync; no prelude snapshot before it)
wait_until 20 "r4 snapshot" sh -c "[ \$(grep -c '^snapshot f1' '$TMP/r4.out') -ge 1 ]"
sleep 0.3
[ "$(grep -c '^snapshot' "$TMP/r4.out")" = 1 ] || fail "r4: expected one snapshot: $(cat "$TMP/r4.out")"

kill -0 "$GWPID_A" || fail "gateway A died"
kill -0 "$GWPID_B" || fail "gateway B died"
stop_gws A B
ok "leave/return replays the gap; history exceeded and too far behind answer resync; old flags epoch gets a snapshot"
exit 0
