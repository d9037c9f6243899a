#!/bin/sh
# Recovery (issue 5): a channel's history restarts under the gateway (its
# meta and stream are gone, e.g. Redis lost its data; the next publication
# starts a new epoch at offset 1). Live traffic shows the new epoch: every
# subscriber of an application channel gets an explicit resync before the
# new events (SSE `event: resync`, WS {"type":"resync"}), and flags clients
# get a fresh snapshot from a reloaded mirror. A client whose replay left a
# floor (offsets already given) under the old epoch still gets the new
# epoch's offsets 1, 2, ... (a flag that vanished with the
# old state is gone from it).
. "$(dirname "$0")/harness.sh"
. "$(dirname "$0")/gw/recovery.sh"

node_deps
start_redis
start_publisher
start_gw A
A=http://127.0.0.1:$GWPORT_A
sse_client s1 chat "$A"
ws_client_r w1 chat "ws://127.0.0.1:$GWPORT_A"
sse_client f1 flags "$A"
for c in s1 w1 f1; do wait_until 20 "$c open" opened $c 1; done
wait_until 20 "gateway subscribed to chat" numsub_is chat 1
publish_range chat 1 3
api POST /api/v1/flags '{"key":"old","enabled":true}'
for c in s1 w1; do wait_until 20 "$c got 3" got $c chat 3; done
wait_until 20 "f1 got old" grep -q '^flag.created flags old 1' "$TMP/f1.out"
E1=$(redis-cli -p "$REDIS_PORT" hget flagcast:meta:chat epoch)
# s2 resumes from 0: replayed 1..3, which stay its floor under epoch E1
LAST_ID=chat/$E1/0 sse_client s2 chat "$A"
wait_until 20 "s2 got 3" got s2 chat 3

# the history of both channels restarts
redis-cli -p "$REDIS_PORT" del flagcast:meta:chat flagcast:hist:chat \
    flagcast:meta:flags flagcast:hist:flags flagcast:flags flagcast:flag-ids >/dev/null
publish chat 4
E2=$(redis-cli -p "$REDIS_PORT" hget flagcast:meta:chat epoch)
[ -n "$E2" ] && [ "$E1" != "$E2" ] || fail "no new epoch ($E1 -> $E2)"
for c in s1 s2 w1; do wait_until 20 "$c got the new 1" grep -q '^message chat 1 {"m":4}' "$TMP/$c.out"; done
for c in s1 s2 w1; do
    grep -v '^open' "$TMP/$c.out" | grep -v '^snapshot\|^subscribed\|^connected' >"$TMP/$c.got"
    expect $c "$TMP/$c.got" 'message chat 1 {"m":1}
message chat 2 {"m":2}
message chat 3 {"m":3}
resync chat "epoch changed"
message chat 1 {"m":4}'
done
api POST /api/v1/flags '{"key":"new","enabled":true}'
wait_until 20 "f1 fresh snapshot" sh -c "tail -1 '$TMP/f1.out' | grep -qx 'snapshot new'"
[ "$(grep -c '^snapshot' "$TMP/f1.out")" = 2 ] || fail "f1: $(cat "$TMP/f1.out")"
# the SSE cursor after the resync names the new epoch
case "$(cat "$TMP/s1.id")" in "chat/$E2/1") ;; *) fail "s1's id is $(cat "$TMP/s1.id")" ;; esac
GW=$A
metric_ge flagcast_gateway_resyncs_total 2 || fail "resyncs_total is $(metric flagcast_gateway_resyncs_total)"
stop_gws A
ok "a restarted history: resync on chat (SSE and WS), a fresh snapshot without the vanished flag on flags"
exit 0
