#!/bin/sh
# A WebSocket `subscribed` gives the start position of each channel it
# started ("positions", the shape `since` takes), so a client that drops
# before its first event on a channel resumes from its start and misses
# nothing published while it was away (issue 9: the SSE stream has the
# id-only frame for this). A channel without history yet starts at "-"/0.
. "$(dirname "$0")/harness.sh"
. "$GW_DIR/recovery.sh"

node_deps
start_redis
start_publisher
start_gateway
publish_range busy 1 2
epoch=$(redis-cli -p "$REDIS_PORT" HGET flagcast:meta:busy epoch)
[ -n "$epoch" ] || fail "no epoch for busy"

node "$GW_DIR/ws_positions.js" "$WSURL/ws" json - quiet busy >"$TMP/first.out" || fail "first session: $(cat "$TMP/first.out")"
pos=$(sed -n 1p "$TMP/first.out")
[ "$pos" = "{\"quiet\":{\"epoch\":\"-\",\"offset\":0},\"busy\":{\"epoch\":\"$epoch\",\"offset\":2}}" ] ||
    [ "$pos" = "{\"busy\":{\"epoch\":\"$epoch\",\"offset\":2},\"quiet\":{\"epoch\":\"-\",\"offset\":0}}" ] ||
    fail "subscribed positions: $pos"
[ "$(sed -n '2,$p' "$TMP/first.out")" = "" ] || fail "first session got events: $(cat "$TMP/first.out")"

# away: three on quiet (its first ever), two more on busy
publish_range quiet 1 3
publish_range busy 3 4
node "$GW_DIR/ws_positions.js" "$WSURL/ws" json "$pos" quiet busy >"$TMP/back.out" || fail "resume: $(cat "$TMP/back.out")"
[ "$(sed -n 1p "$TMP/back.out")" = null ] || fail "a resumed subscribe gave positions: $(sed -n 1p "$TMP/back.out")"
got=$(sed -n '2,$p' "$TMP/back.out" | sort)
want=$(printf '%s\n' 'message busy 3 {"m":3}' 'message busy 4 {"m":4}' 'message quiet 1 {"m":1}' \
    'message quiet 2 {"m":2}' 'message quiet 3 {"m":3}')
[ "$got" = "$want" ] || fail "resumed from the positions, got: $got"

# msgpack carries the same map
node "$GW_DIR/ws_positions.js" "$WSURL/ws" msgpack - busy >"$TMP/mp.out" || fail "msgpack: $(cat "$TMP/mp.out")"
[ "$(sed -n 1p "$TMP/mp.out")" = "{\"busy\":{\"epoch\":\"$epoch\",\"offset\":4}}" ] ||
    fail "msgpack positions: $(cat "$TMP/mp.out")"

# a snapshot says where it stands (channel, epoch, offset, as events do):
# a client resumes flags from it
api POST /api/v1/flags '{"key":"k1"}'
api POST /api/v1/flags '{"key":"k2"}'
fe=$(redis-cli -p "$REDIS_PORT" HGET flagcast:meta:flags epoch)
node "$GW_DIR/ws_positions.js" "$WSURL/ws" json - flags >"$TMP/snap.out" || fail "snapshot session: $(cat "$TMP/snap.out")"
[ "$(sed -n 2p "$TMP/snap.out")" = "snapshot k1,k2 at flags/$fe/2" ] || fail "WS snapshot position: $(cat "$TMP/snap.out")"
node "$GW_DIR/ws_positions.js" "$WSURL/ws" msgpack - flags >"$TMP/snapmp.out" || fail "msgpack snapshot: $(cat "$TMP/snapmp.out")"
[ "$(sed -n 2p "$TMP/snapmp.out")" = "snapshot k1,k2 at flags/$fe/2" ] || fail "WS msgpack snapshot position: $(cat "$TMP/snapmp.out")"
api PUT /api/v1/flags/k1/enabled '{"enabled":true}'
node "$GW_DIR/ws_positions.js" "$WSURL/ws" json "{\"flags\":{\"epoch\":\"$fe\",\"offset\":2}}" flags >"$TMP/snapback.out" ||
    fail "flags resume: $(cat "$TMP/snapback.out")"
[ "$(sed -n '2,$p' "$TMP/snapback.out")" = "flag.toggled flags k1 3 enabled=true" ] ||
    fail "flags resume from the snapshot's position: $(cat "$TMP/snapback.out")"
ok "WS snapshot carries flags/$fe/2 (JSON and msgpack); a resume from it gets just the later toggle"
ok "WS subscribed positions: fresh channel -/0 and busy $epoch/2; a resume from them got all 5 missed; msgpack too"

# ---- a `since` for an inbox the connection already streams (started at
# `connected`) replays nothing it already sent live
SECRET=inbox-test-secret-inbox-test-secret-32
kill "$GW_PID"; wait "$GW_PID" 2>/dev/null
start_gateway FLAGCAST_JWT_SECRET=$SECRET
tok=$(node "$GW_DIR/mkjwt.js" "$SECRET" '{"sub":"alice","exp":"+600"}')
publish_range user:alice 1 2
node "$GW_DIR/ws_inbox_since.js" "$WSURL/ws?token=$tok" \
    "curl -s -o /dev/null -X POST -H 'Authorization: Bearer $TOKEN' -H 'Content-Type: application/json' --data '{\"data\":{}}' $PUB/api/v1/channels/user:alice/messages" \
    >"$TMP/inbox.out" || fail "inbox client: $(cat "$TMP/inbox.out")"
[ "$(cat "$TMP/inbox.out")" = "message user:alice 3
message user:alice 4" ] || fail "inbox since after a live message: $(cat "$TMP/inbox.out")"
ok "a since for an inbox streamed since connected: the live message is not sent again"
