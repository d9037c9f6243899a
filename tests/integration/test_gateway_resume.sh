#!/bin/sh
# Resuming from history: an SSE client that comes back with Last-Event-ID
# (header, or the lastEventId parameter) first gets what it missed on that
# channel, in order, then live events; a cursor from another epoch (history
# restarted) gets an explicit resync event first (never silence), a garbled
# one (no channel to tell) just starts live. A WS subscribe with "since"
# does the same per channel.
. "$(dirname "$0")/harness.sh"

node_deps
start_redis
start_publisher
start_gateway
api POST /api/v1/flags '{"key":"k1","enabled":true}'
for i in 1 2 3 4; do api POST /api/v1/channels/chat.room1/messages "{\"data\":{\"m\":$i}}"; done
EPOCH=$(redis-cli -p "$REDIS_PORT" hget flagcast:meta:chat.room1 epoch)
FEPOCH=$(redis-cli -p "$REDIS_PORT" hget flagcast:meta:flags epoch)
[ -n "$EPOCH" ] && [ -n "$FEPOCH" ] || fail "no epochs in Redis"

# ---- Last-Event-ID header: messages 3 and 4 replayed, then live 5
curl -sN -H "Last-Event-ID: chat.room1/$EPOCH/2" "$GW/api/v1/realtime/sse?channels=chat.room1" >"$TMP/H.sse" 2>/dev/null &
track $!
# ---- lastEventId parameter, flags channel: everything after offset 0
curl -sN "$GW/api/v1/realtime/sse?lastEventId=flags/$FEPOCH/0" >"$TMP/F.sse" 2>/dev/null &
track $!
# ---- an unknown epoch, and a garbled cursor: live only
curl -sN -H "Last-Event-ID: chat.room1/nosuchepoch/1" "$GW/api/v1/realtime/sse?channels=chat.room1" >"$TMP/X.sse" 2>/dev/null &
track $!
curl -sN -H "Last-Event-ID: garbage" "$GW/api/v1/realtime/sse?channels=chat.room1" >"$TMP/G.sse" 2>/dev/null &
track $!
# ---- WS since
mkfifo "$TMP/W.in"
node "$GW_DIR/ws_client.js" "$WSURL/ws" <"$TMP/W.in" >"$TMP/W.out" 2>&1 &
track $!
exec 4>"$TMP/W.in"
echo "{\"type\":\"subscribe\",\"channels\":[\"chat.room1\"],\"since\":{\"chat.room1\":{\"epoch\":\"$EPOCH\",\"offset\":3}}}" >&4

for c in H X G; do wait_until 10 "$c snapshot" sse_has $c '^snapshot'; done
wait_until 10 "F replay" sse_has F '^flag.created'
wait_until 10 "H replay" sse_has H '"m":4'
wait_until 10 "W replay" grep -q '"m":4' "$TMP/W.out"
wait_until 10 "SUBSCRIBE chat.room1" numsub_is chat.room1 1
api PUT /api/v1/flags/k1/enabled '{"enabled":false}'
api POST /api/v1/channels/chat.room1/messages '{"data":{"m":5}}'
for c in H X G; do wait_until 10 "$c live 5" sse_has $c '"m":5'; done
wait_until 10 "F live toggle" sse_has F '^flag.toggled flags k1 2'
wait_until 10 "W live 5" grep -q '"m":5' "$TMP/W.out"

sse_lines H | grep -v '^:$' >"$TMP/H.got"
expect H "$TMP/H.got" 'retry 3000
connected
snapshot -
message chat.room1 3 {"m":3}
message chat.room1 4 {"m":4}
message chat.room1 5 {"m":5}'
sse_lines X | grep -v '^:$' >"$TMP/X.got"
expect X "$TMP/X.got" 'retry 3000
connected
snapshot -
resync chat.room1 "epoch changed"
message chat.room1 5 {"m":5}'
sse_lines G | grep -v '^:$' >"$TMP/G.got"
expect G "$TMP/G.got" 'retry 3000
connected
snapshot -
message chat.room1 5 {"m":5}'
[ "$(grep -c "id: chat.room1/$EPOCH/4" "$TMP/X.sse")" = 1 ] || fail "X: the resync does not carry the position to continue from"
sse_lines F | grep -v '^:$' >"$TMP/F.got"
# a cursor history covers gets the replay, no snapshot (a snapshot newer
# than the replay after it would show old state for a moment)
expect F "$TMP/F.got" 'retry 3000
connected
flag.created flags k1 1 enabled=true
flag.toggled flags k1 2 enabled=false'
grep -v '^open' "$TMP/W.out" >"$TMP/W.got"
expect W "$TMP/W.got" 'connected
subscribed channels=chat.room1 all=false
message chat.room1 4 {"m":4}
message chat.room1 5 {"m":5}'
ok "Last-Event-ID / lastEventId / since replay the gap, then live; an old epoch gets resync; garbage starts live"
kill -0 "$GW_PID" || fail "gateway died"
exit 0
