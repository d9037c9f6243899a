#!/bin/sh
# SSE through curl -N against the real publisher and gateway: each client
# receives exactly the events its filters select, in order, as valid
# Flagent-shaped JSON; snapshot on connect; keep-alive comments; the health
# JSON; 400 on a bad query; CORS; refcounted Redis subscriptions; closed
# clients reaped.
. "$(dirname "$0")/harness.sh"

node_deps
start_redis
start_publisher
api POST /api/v1/flags '{"key":"k1","enabled":true,"tags":["web"]}'
api POST /api/v1/flags '{"key":"k2","enabled":true,"tags":["mobile"]}'
start_gateway FLAGCAST_SSE_KEEPALIVE=1 FLAGCAST_THREADS=2

# ---- health JSON before any client
body=$(curl -s "$GW/api/v1/realtime/sse/health")
[ "$body" = '{"status":"healthy","activeConnections":0,"protocol":"SSE"}' ] ||
    fail "health JSON: $body"
ok "health JSON"

# ---- invalid query: 400 with a message
code=$(curl -s -o "$TMP/bad.out" -w '%{http_code}' "$GW/api/v1/realtime/sse?flagID=abc")
[ "$code" = 400 ] || fail "bad flagID answered $code"
grep -q 'flagID' "$TMP/bad.out" || fail "400 body does not name the parameter: $(cat "$TMP/bad.out")"
code=$(curl -s -o /dev/null -w '%{http_code}' "$GW/api/v1/realtime/sse?channels=bad%20name")
[ "$code" = 400 ] || fail "bad channel answered $code"
code=$(curl -s -o "$TMP/priv.out" -w '%{http_code}' "$GW/api/v1/realtime/sse?channels=user:alice")
[ "$code" = 403 ] || fail "private inbox without identity answered $code"
ok "400 on invalid parameters, 403 on private inboxes"

# ---- CORS
curl -s -D "$TMP/cors.h" -o /dev/null -H 'Origin: https://app.example' "$GW/healthz"
# The default (FLAGCAST_CORS_ORIGINS=*) echoes the caller's origin with
# credentials allowed: a literal * breaks EventSource withCredentials.
grep -qi '^access-control-allow-origin: https://app.example' "$TMP/cors.h" || fail "no CORS header: $(cat "$TMP/cors.h")"
grep -qi '^access-control-allow-credentials: true' "$TMP/cors.h" || fail "no Allow-Credentials: $(cat "$TMP/cors.h")"
code=$(curl -s -o /dev/null -w '%{http_code}' -X OPTIONS -H 'Origin: https://app.example' \
    -H 'Access-Control-Request-Method: GET' "$GW/api/v1/realtime/sse")
[ "$code" = 204 ] || fail "CORS preflight answered $code"
ok "CORS"

# ---- clients
sse A "/api/v1/realtime/sse"
sse B "/realtime/sse?flagKey=k1"
sse C "/api/v1/events/stream?tags=mobile"
sse D "/api/v1/realtime/sse?channels=chat.room1"
sse E "/api/v1/realtime/sse?flagKey=k1&flagID=2"
sse F "/api/v1/realtime/sse?flagKeys=k1,k2&channels=chat.room1"
sse G "/realtime/sse?flagID=1"
for c in A B C D E F G; do
    wait_until 10 "snapshot on $c" sse_has $c '^snapshot'
done
wait_until 10 "SUBSCRIBE flagcast:ch:chat.room1" numsub_is chat.room1 1
health_is() { [ "$(curl -s "$GW/api/v1/realtime/sse/health")" = "{\"status\":\"healthy\",\"activeConnections\":$1,\"protocol\":\"SSE\"}" ]; }
wait_until 5 "7 active connections in the health JSON" health_is 7
ok "7 SSE clients connected, snapshots received"

# ---- publish through the real publisher
api PUT /api/v1/flags/k1/enabled '{"enabled":false}'
api POST /api/v1/flags '{"key":"k3","enabled":true,"tags":["web","mobile"]}'
api POST /api/v1/channels/chat.room1/messages '{"data":{"text":"hi"}}'
api POST /api/v1/channels/chat.room2/messages '{"data":{"text":"nobody"}}'
api DELETE /api/v1/flags/k2
api POST /api/v1/channels/chat.room1/messages '{"data":{"text":"end"}}'

wait_until 10 "A: k2 deleted" sse_has A '^flag.deleted flags k2'
wait_until 10 "D: end message" sse_has D '"end"'
wait_until 10 "F: end message" sse_has F '"end"'
wait_until 10 "C: k2 deleted" sse_has C '^flag.deleted flags k2'
# one more keep-alive period so that anything wrongly delivered shows up
sleep 1.2

for c in A B C D E F G; do sse_lines $c | grep -v '^:$' >"$TMP/$c.got"; done
expect A "$TMP/A.got" "retry 3000
connected
snapshot k1,k2
flag.toggled flags k1 3 enabled=false
flag.created flags k3 4 enabled=true
flag.deleted flags k2 5 enabled=true"
expect B "$TMP/B.got" "retry 3000
connected
snapshot k1
flag.toggled flags k1 3 enabled=false"
expect C "$TMP/C.got" "retry 3000
connected
snapshot k2
flag.created flags k3 4 enabled=true
flag.deleted flags k2 5 enabled=true"
expect D "$TMP/D.got" 'retry 3000
connected
snapshot -
message chat.room1 1 {"text":"hi"}
message chat.room1 2 {"text":"end"}'
expect E "$TMP/E.got" "retry 3000
connected
snapshot -"
expect F "$TMP/F.got" 'retry 3000
connected
snapshot k1,k2
flag.toggled flags k1 3 enabled=false
message chat.room1 1 {"text":"hi"}
flag.deleted flags k2 5 enabled=true
message chat.room1 2 {"text":"end"}'
expect G "$TMP/G.got" "retry 3000
connected
snapshot k1
flag.toggled flags k1 3 enabled=false"
ok "every client received exactly its events, in order, valid JSON"

# ---- keep-alive comments (FLAGCAST_SSE_KEEPALIVE=1)
ka_at_least() { [ "$(sse_lines E | grep -c '^:$')" -ge "$1" ]; }
wait_until 5 "two keep-alive comments on an idle stream" ka_at_least 2
kas=$(sse_lines E | grep -c '^:$')
ok "keep-alive comments ($kas)"

# ---- a new client gets the current state as its snapshot (from the mirror)
sse H "/api/v1/realtime/sse"
wait_until 10 "snapshot on H" sse_has H '^snapshot'
sse_lines H | grep -q '^snapshot k1,k3$' || fail "H snapshot: $(sse_lines H | grep snapshot)"
ok "snapshot reflects live changes"

# ---- closed clients are reaped promptly; the last one UNSUBSCRIBEs
for c in A B C D E F G H; do eval "kill \$SSE_PID_$c"; done
wait_until 3 "all SSE connections reaped" health_is 0
wait_until 5 "UNSUBSCRIBE flagcast:ch:chat.room1" numsub_is chat.room1 0
metric_eq 'flagcast_gateway_connections{transport="sse"}' 0 || fail "sse gauge not 0"
ok "closed clients reaped, channel unsubscribed"

kill -0 "$GW_PID" || fail "gateway died"
exit 0
