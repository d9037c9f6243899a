#!/bin/sh
# A WebSocket upgrade URL whose query is too long to read (over 8 KB of
# filters) is answered with `error bad_message` like SSE's 400, not silently
# served without the subscription it asked for (FLAGCAST_AUTH=off, where no
# token check reads the query first). A normal query still subscribes.
. "$(dirname "$0")/gw/lib.sh"

node_deps
start_redis
start_gateway FLAGCAST_AUTH=off

long=$(python3 -c "print(','.join('chat.c%d' % i for i in range(1200)))")
[ ${#long} -gt 8192 ] || fail "query only ${#long} bytes"
code=$(curl -s -m 2 -o "$TMP/s.out" -w '%{http_code}' "$GW/api/v1/realtime/sse?channels=$long")
[ "$code" = 400 ] || fail "SSE with a long query answered $code"

echo '{"type":"ping","id":1}' | timeout 10 node "$GW_DIR/ws_client.js" "$WSURL/ws?channels=$long" >"$TMP/w.out" 2>&1
grep -q '^connected' "$TMP/w.out" || fail "WS not connected: $(tr '\n' ' ' <"$TMP/w.out")"
grep -q '^error bad_message' "$TMP/w.out" || fail "no error for a WS query too long: $(tr '\n' ' ' <"$TMP/w.out")"
grep -q '^pong 1' "$TMP/w.out" || fail "connection not kept: $(tr '\n' ' ' <"$TMP/w.out")"
ok "WS upgrade with an over-long query: error bad_message, connection kept"

echo '{"type":"ping","id":2}' | timeout 10 node "$GW_DIR/ws_client.js" "$WSURL/ws?channels=chat.a" >"$TMP/n.out" 2>&1
grep -q '^subscribed channels=chat.a' "$TMP/n.out" || fail "normal query: $(tr '\n' ' ' <"$TMP/n.out")"
grep -q '^error' "$TMP/n.out" && fail "error on a normal query: $(tr '\n' ' ' <"$TMP/n.out")"
ok "a normal WS query subscribes without an error"

kill "$GW_PID" 2>/dev/null
wait_until 10 "gateway stopped" sh -c "! kill -0 $GW_PID"
if grep -q 'ERROR: AddressSanitizer\|runtime error:\|LeakSanitizer' "$TMP/gateway.log"; then
    fail "sanitizer report in the gateway log"
fi
echo "PASS test_review_ws_query"
