#!/bin/sh
# The subscribe race (issue 9.1): a message published right after the
# gateway acknowledged a stream (SSE `connection`, WS `subscribed`) on a
# channel it had not subscribed before reaches the client, every time.
# Before the fix about 1 in 15 was lost: the acknowledgement went out before
# Redis confirmed the SUBSCRIBE.
. "$(dirname "$0")/harness.sh"

node_deps
start_redis
start_publisher
start_gateway
out=$(node "$GW_DIR/race_subscribe.js" "$GW" "$PUB" "$TOKEN" 200) || fail "messages lost after the acknowledgement: $out"
ok "published right after the acknowledgement, received: $out"
kill -0 "$GW_PID" || fail "gateway died"
