#!/bin/sh
# The gateway's HTTP / SSE / WS edges (issue 9): health that tells the
# truth, no silent widening of a subscription (unknown SSE parameters and WS
# fields are errors naming them), unknown WS subprotocols answered 400,
# CORS for credentialed EventSource, an oversize request head answered 431,
# %00 answered 400, JWTs without exp refused, unmasked client frames closed
# 1002. Real redis-server, publisher and gateway; curl, node ws clients.
. "$(dirname "$0")/harness.sh"

node_deps
start_redis
start_publisher
start_gateway

# get URL [curl args]: sets BODY (trailing newline dropped) and CODE.
get() {
    _u=$1; shift
    CODE=$(curl -s -o "$TMP/body" -w '%{http_code}' "$@" "$_u")
    BODY=$(cat "$TMP/body")
}

# ---- health: Flagent's path too; unhealthy (503 + reason) without Redis
for p in /api/v1/realtime/sse/health /realtime/sse/health; do
    get "$GW$p"
    [ "$CODE $BODY" = '200 {"status":"healthy","activeConnections":0,"protocol":"SSE"}' ] ||
        fail "health $p answered: $CODE $BODY"
done
NOREDIS_PORT=$(free_port)
GW2_PORT=$(free_port)
daemon_exec gateway "$GW2_PORT" "redis://127.0.0.1:$NOREDIS_PORT" FLAGCAST_DRAIN_SECONDS=0 \
    >"$TMP/gateway2.log" 2>&1 &
GW2_PID=$!; track $GW2_PID
wait_until 10 "gateway without Redis alive" is_code 200 "http://127.0.0.1:$GW2_PORT/healthz"
get "http://127.0.0.1:$GW2_PORT/realtime/sse/health"
[ "$CODE $BODY" = '503 {"status":"unhealthy","reason":"starting: flags not loaded yet","activeConnections":0,"protocol":"SSE"}' ] ||
    fail "health without Redis answered: $CODE $BODY"
kill "$GW2_PID"
# Redis lost after the start: unhealthy "redis unavailable"
redis-cli -p "$REDIS_PORT" client kill type pubsub >/dev/null
redis-cli -p "$REDIS_PORT" config set requirepass x >/dev/null
redis-cli -p "$REDIS_PORT" -a x --no-auth-warning client kill type pubsub >/dev/null
redis-cli -p "$REDIS_PORT" -a x --no-auth-warning client kill type normal >/dev/null
unhealthy_redis() {
    [ "$(curl -s "$GW/api/v1/realtime/sse/health")" = \
      '{"status":"unhealthy","reason":"redis unavailable","activeConnections":0,"protocol":"SSE"}' ]
}
wait_until 20 "health says redis unavailable" unhealthy_redis
is_code 503 "$GW/api/v1/realtime/sse/health" || fail "unhealthy health is not 503"
redis-cli -p "$REDIS_PORT" -a x --no-auth-warning config set requirepass '' >/dev/null
wait_until 30 "healthy again" is_code 200 "$GW/api/v1/realtime/sse/health"
ok "health: both paths, 503 with a reason while starting or without Redis"

# ---- nothing widens silently: unknown SSE parameters are a 400 naming them
get "$GW/api/v1/realtime/sse?flagkey=k1"
[ "$CODE" = 400 ] || fail "?flagkey=k1 answered $CODE: $BODY"
case "$BODY" in
    *'unknown parameter \"flagkey\" (known: flagKey, flagKeys (flags), flagID'*'ignored: _)'*) ;;
    *) fail "?flagkey=k1 body: $BODY" ;;
esac
get "$GW/realtime/sse?flagKey=k1&foo=1&bar"
[ "$CODE" = 400 ] && echo "$BODY" | grep -q 'unknown parameter \\"foo\\", \\"bar\\"' ||
    fail "two unknown parameters: $CODE $BODY"
api POST /api/v1/flags '{"key":"k1","description":"one"}'
api POST /api/v1/flags '{"key":"k2","description":"two"}'
curl -sN --max-time 3 "$GW/api/v1/realtime/sse?flags=k2&_=1700000000" >"$TMP/alias.sse" 2>/dev/null
node "$GW_DIR/sse_parse.js" "$TMP/alias.sse" | grep '^snapshot' >"$TMP/alias.snap"
grep -q 'k2' "$TMP/alias.snap" && ! grep -q 'k1' "$TMP/alias.snap" ||
    fail "?flags=k2&_=... snapshot: $(cat "$TMP/alias.snap")"
ok "SSE: unknown parameters 400 naming them; flags= alias and the _ cache-buster accepted"

# ... and unknown WS fields are error bad_message naming the field
ws_run() { # ws_run OUT [SUBPROTOCOL] < lines: a WS client for ~2 s
    (cat; sleep 2) | RAW=1 timeout 15 node "$GW_DIR/ws_client.js" "$WSURL/ws" ${2:-} >"$TMP/$1.ws" 2>&1
}
printf '%s\n' '{"type":"subscribe","flagKey":["k1"]}' '{"type":"subscribe","flagKeys":["k1"]}' | ws_run U
grep -q '^error bad_message' "$TMP/U.ws" || fail "unknown WS field: $(cat "$TMP/U.ws")"
grep -q '^raw {"type":"error","code":"bad_message","message":"unknown field \\"flagKey\\" in subscribe (known: id, flags, flagKeys,' "$TMP/U.ws" ||
    fail "the error does not name the field: $(cat "$TMP/U.ws")"
grep -q '^raw {"type":"subscribed",.*"flags":\["k1"\]' "$TMP/U.ws" ||
    fail "flagKeys alias not subscribed: $(cat "$TMP/U.ws")"
ok "WS: unknown field is error bad_message naming it; flagKeys accepted"

# ---- an unknown WS subprotocol is answered 400 naming the supported ones
code=$(curl -s -o "$TMP/sp.out" -w '%{http_code}' --max-time 5 -H 'Connection: Upgrade' \
    -H 'Upgrade: websocket' -H 'Sec-WebSocket-Version: 13' \
    -H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' -H 'Sec-WebSocket-Protocol: graphql-ws' "$GW/ws")
[ "$code" = 400 ] || fail "unknown subprotocol answered $code"
grep -q 'unsupported WebSocket subprotocol graphql-ws (supported: flagcast.json, flagcast.msgpack)' "$TMP/sp.out" ||
    fail "400 body: $(cat "$TMP/sp.out")"
grep -q 'websocket upgrade refused.*asked="graphql-ws"' "$TMP/gateway.log" || fail "no log line for it"
echo | ws_run SP mqtt
grep -q '^http 400' "$TMP/SP.ws" || fail "ws client with subprotocol mqtt: $(cat "$TMP/SP.ws")"
echo | ws_run SP2 flagcast.msgpack
grep -q '^open flagcast.msgpack' "$TMP/SP2.ws" || fail "flagcast.msgpack: $(cat "$TMP/SP2.ws")"
ok "WS: unknown subprotocol 400 (logged), known ones served"

# ---- CORS: the origin is echoed with credentials (EventSource withCredentials
# refuses "*"), the headers clients read are exposed, preflight allows them
curl -s -D "$TMP/cors.h" -o /dev/null --max-time 3 -H 'Origin: https://app.example' \
    "$GW/api/v1/realtime/sse?flagKey=k1"
grep -qi '^access-control-allow-origin: https://app.example' "$TMP/cors.h" || fail "origin not echoed: $(cat "$TMP/cors.h")"
grep -qi '^access-control-allow-credentials: true' "$TMP/cors.h" || fail "no allow-credentials"
grep -qi '^vary: Origin' "$TMP/cors.h" || fail "no Vary: Origin"
grep -qi '^access-control-expose-headers: X-Flagcast-Refused, Retry-After' "$TMP/cors.h" || fail "no expose-headers"
grep -qi '^access-control-allow-origin: \*' "$TMP/cors.h" && fail "literal * with credentials"
curl -s -D "$TMP/pre.h" -o /dev/null -X OPTIONS -H 'Origin: https://app.example' \
    -H 'Access-Control-Request-Method: GET' -H 'Access-Control-Request-Headers: authorization' \
    "$GW/api/v1/realtime/sse"
grep -q '^HTTP/1.1 204' "$TMP/pre.h" || fail "preflight: $(cat "$TMP/pre.h")"
grep -qi '^access-control-allow-headers: .*Authorization' "$TMP/pre.h" || fail "preflight allow-headers"
grep -qi '^access-control-allow-credentials: true' "$TMP/pre.h" || fail "preflight allow-credentials"
curl -s -D "$TMP/cors2.h" -o /dev/null -H "$(printf 'Origin: https://a.example\tx')" "$GW/healthz"
grep -qi '^access-control-allow-origin' "$TMP/cors2.h" && fail "a malformed origin was echoed"
ok "CORS: origin echoed with credentials and exposed headers; preflight"

# ---- request heads lws cannot take get an answer, never an empty reply
# A token up to the documented 8 KiB limit fits the head (it is judged, 401)
tok=$(head -c 8000 /dev/zero | tr '\0' a)
get "$GW/api/v1/realtime/sse?channels=x" -H "Authorization: Bearer $tok"
[ "$CODE $BODY" = '401 {"error":"malformed token"}' ] || fail "8000-byte token: $CODE $BODY"
# A head over FLAGCAST_MAX_HEADER_BYTES (16384): 431, SSE and WS alike
big=$(head -c 20000 /dev/zero | tr '\0' b)
get "$GW/api/v1/realtime/sse" -H "X-Big: $big"
[ "$CODE $BODY" = '431 {"error":"request head over 16384 bytes (FLAGCAST_MAX_HEADER_BYTES)"}' ] ||
    fail "20 KB head: $CODE $BODY"
get "$GW/ws" -H "X-Big: $big" -H 'Connection: Upgrade' -H 'Upgrade: websocket' \
    -H 'Sec-WebSocket-Version: 13' -H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=='
[ "$CODE" = 431 ] || fail "20 KB WS upgrade head: $CODE $BODY"
# %00 (or a control byte) in the target: 400 naming it
for u in "/api/v1/realtime/sse?channels=a%00b" "/api/v1/realtime/sse?token=%00" "/ws%00"; do
    get "$GW$u"
    [ "$CODE $BODY" = '400 {"error":"bad request: request target holds %00 or a control character"}' ] ||
        fail "$u: $CODE $BODY"
done
# A head that arrives in pieces is waited for and served
piece=$(python3 - "$GW_PORT" <<'PY'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
for part in (b"GET /readyz HTTP/1.1\r\n", b"Host: x\r\n", b"\r\n"):
    s.sendall(part); time.sleep(0.4)
s.settimeout(5)
print(s.recv(100).split(b"\r\n")[0].decode())
PY
)
[ "$piece" = "HTTP/1.1 200 OK" ] || fail "a head sent in pieces: $piece"
# ... and streams are served as before
sse heads "/api/v1/realtime/sse?channels=after"
wait_until 10 "an SSE stream after the refusals" file_has "$TMP/heads.sse" 'event: connection'
ok "request heads: 8 KB token judged, 20 KB head 431, %00 400, a head in pieces served"
