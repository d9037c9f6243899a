#!/bin/sh
# Pub/sub-only reconnect (issue 9.2): `CLIENT KILL TYPE pubsub` (what Redis
# does to a subscriber past client-output-buffer-limit) on a gateway that
# has seen no live event since it started, then flag toggles and channel
# messages while it resubscribes: the connected clients get every one of
# them, once, in order, before the later live ones. Before the fix the
# gateway had no position for a channel until its first live event, so
# nothing was filled, and the flags reload hid the gap.
. "$(dirname "$0")/harness.sh"

node_deps
start_redis
start_publisher
api POST /api/v1/flags '{"key":"k1","enabled":true}'
start_gateway
sse F /api/v1/realtime/sse
sse C '/api/v1/realtime/sse?channels=chat'
wait_until 10 "F connected" sse_has F '^connected'
wait_until 10 "C connected" sse_has C '^connected'
wait_until 10 "chat subscribed" numsub_is chat 1

for round in 1 2; do
    redis-cli -p "$REDIS_PORT" client kill type pubsub >/dev/null
    for i in 1 2 3; do
        api PUT /api/v1/flags/k1/enabled "{\"enabled\":$([ $((i % 2)) = 1 ] && echo false || echo true)}"
        api POST /api/v1/channels/chat/messages "{\"data\":{\"m\":\"$round.$i\"}}"
    done
    wait_until 10 "resubscribed (round $round)" numsub_is chat 1
done
api PUT /api/v1/flags/k1/enabled '{"enabled":false}'
api POST /api/v1/channels/chat/messages '{"data":{"m":"last"}}'
wait_until 10 "F got the last toggle" sse_has F '^flag.toggled flags k1 8 '
wait_until 10 "C got the last message" sse_has C '"m":"last"'

sse_lines F | grep '^flag\.' | awk '{ print $1, $4 }' >"$TMP/F.got"
expect F "$TMP/F.got" "$(printf 'flag.toggled %s\n' 2 3 4 5 6 7 8)"
sse_lines C | grep '^message' | sed 's/.*"m":"\([^"]*\)".*/\1/' >"$TMP/C.got"
expect C "$TMP/C.got" "$(printf '%s\n' 1.1 1.2 1.3 2.1 2.2 2.3 last)"
ok "pub/sub-only reconnects twice: flags and channel events filled once, in order"
kill -0 "$GW_PID" || fail "gateway died"
