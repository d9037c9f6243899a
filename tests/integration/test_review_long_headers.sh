#!/bin/sh
# Requests as long as the documented limits are answered: a Last-Event-ID
# list cursor of 4,096 bytes (header or ?lastEventId=) gets its stream, and a
# bad token of 6 KB (Authorization or ?token=, SSE and the WS upgrade) gets
# a 401 with a JSON error. lws's default 4 KB header table dropped all of
# these with an empty reply (no status, no error).
. "$(dirname "$0")/gw/lib.sh"

node_deps
start_redis
start_gateway FLAGCAST_JWT_SECRET=0123456789abcdef0123456789abcdef0123

# a list cursor of exactly 4096 bytes: 16 items, the last one padded
cursor=$(python3 -c "
s=' '.join('chat.c%d/0123456789abcdef/%d' % (i, i) for i in range(15))
s += ' chat.pad/0123456789abcdef/'
print(s + '1' * (4096 - len(s)))")
[ ${#cursor} = 4096 ] || fail "cursor is ${#cursor} bytes"
qcursor=$(printf '%s' "$cursor" | sed 's/ /%20/g')

code=$(curl -s -m 2 -o "$TMP/h.sse" -w '%{http_code}' -H "Last-Event-ID: $cursor" \
    "$GW/api/v1/realtime/sse?channels=chat.a,chat.b")
[ "$code" = 200 ] || fail "4096-byte Last-Event-ID header answered $code"
grep -q '^event: snapshot' "$TMP/h.sse" || fail "no stream after a 4096-byte Last-Event-ID"
code=$(curl -s -m 2 -o "$TMP/q.sse" -w '%{http_code}' \
    "$GW/api/v1/realtime/sse?channels=chat.a,chat.b&lastEventId=$qcursor")
[ "$code" = 200 ] || fail "4096-byte ?lastEventId= answered $code"
grep -q '^event: snapshot' "$TMP/q.sse" || fail "no stream after a 4096-byte ?lastEventId="
ok "a 4,096-byte list cursor (header and query) gets its stream"

tok=$(python3 -c "print('a' * 6000)")
code=$(curl -s -m 2 -o "$TMP/a.out" -w '%{http_code}' -H "Authorization: Bearer $tok" \
    "$GW/api/v1/realtime/sse")
[ "$code" = 401 ] || fail "6 KB bearer token answered $code"
grep -q '"error"' "$TMP/a.out" || fail "401 without a JSON error: $(cat "$TMP/a.out")"
code=$(curl -s -m 2 -o "$TMP/t.out" -w '%{http_code}' "$GW/api/v1/realtime/sse?token=$tok")
[ "$code" = 401 ] || fail "6 KB ?token= answered $code"
grep -q '"error"' "$TMP/t.out" || fail "401 without a JSON error: $(cat "$TMP/t.out")"
out=$(echo | timeout 10 node "$GW_DIR/ws_client.js" "$WSURL/ws?token=$tok")
[ "$out" = "http 401" ] || fail "WS upgrade with a 6 KB ?token=: $out"
ok "a 6 KB bad token is refused 401 (SSE header and query, WS upgrade)"

kill "$GW_PID" 2>/dev/null
wait_until 10 "gateway stopped" sh -c "! kill -0 $GW_PID"
if grep -q 'ERROR: AddressSanitizer\|runtime error:\|LeakSanitizer' "$TMP/gateway.log"; then
    fail "sanitizer report in the gateway log"
fi
echo "PASS test_review_long_headers"
