#!/bin/sh
# Settings and limits: --help lists every setting with its env var, a bad
# value exits 2 with a message, FLAGCAST_MAX_CONNECTIONS answers 503 (SSE
# and WS) above the cap and admits again once a client leaves.
. "$(dirname "$0")/gw/lib.sh"

node_deps
"$BIN/flagcast-gateway" --help >"$TMP/help.txt" 2>&1 || fail "--help failed"
for v in FLAGCAST_LISTEN FLAGCAST_REDIS_URL FLAGCAST_REDIS_PREFIX FLAGCAST_AUTH \
         FLAGCAST_MAX_CONNECTIONS FLAGCAST_SSE_KEEPALIVE FLAGCAST_SSE_RETRY \
         FLAGCAST_QUEUE_MAX_EVENTS FLAGCAST_QUEUE_MAX_BYTES FLAGCAST_WS_MAX_FRAME \
         FLAGCAST_CORS_ORIGINS FLAGCAST_THREADS FLAGCAST_LOG_LEVEL; do
    grep -q "$v" "$TMP/help.txt" || fail "--help does not list $v"
done
"$BIN/flagcast-gateway" --version >/dev/null 2>&1 || fail "--version failed"
for bad in "--listen=nope" "--redis-url=http://x" "--auth=maybe" "--sse-keepalive=0" "--threads=-1" "--log-level=loud"; do
    "$BIN/flagcast-gateway" "$bad" >"$TMP/bad.txt" 2>&1; rc=$?
    [ "$rc" = 2 ] || fail "$bad: exit $rc (want 2)"
    [ -s "$TMP/bad.txt" ] || fail "$bad: no message"
done
ok "--help lists the settings; bad values exit 2 with a message"

start_redis
start_gateway FLAGCAST_MAX_CONNECTIONS=2 FLAGCAST_CORS_ORIGINS=https://a.example,https://b.example
sse A "/api/v1/realtime/sse"
sse B "/api/v1/realtime/sse"
wait_until 10 "A snapshot" sse_has A '^snapshot'
wait_until 10 "B snapshot" sse_has B '^snapshot'
code=$(curl -s -o "$TMP/c.out" -w '%{http_code}' "$GW/api/v1/realtime/sse")
[ "$code" = 503 ] || fail "third SSE client answered $code"
grep -q 'too many connections' "$TMP/c.out" || fail "503 body: $(cat "$TMP/c.out")"
out=$(echo | timeout 10 node "$GW_DIR/ws_client.js" "$WSURL/ws")
[ "$out" = "http 503" ] || fail "WS over the cap: $out"
metric_eq flagcast_gateway_connections_rejected_total 2 || fail "rejections not counted"
kill "$SSE_PID_A"
sse_gauge_is() { metric_eq 'flagcast_gateway_connections{transport="sse"}' "$1"; }
wait_until 5 "A reaped" sse_gauge_is 1
sse C "/api/v1/realtime/sse"
wait_until 10 "C admitted after A left" sse_has C '^snapshot'
ok "503 above FLAGCAST_MAX_CONNECTIONS (SSE and WS), admitted again below"

# CORS with a list: an allowed origin is echoed, another gets no header
curl -s -D "$TMP/h1" -o /dev/null -H 'Origin: https://b.example' "$GW/healthz"
grep -qi '^access-control-allow-origin: https://b.example' "$TMP/h1" || fail "allowed origin not echoed"
curl -s -D "$TMP/h2" -o /dev/null -H 'Origin: https://evil.example' "$GW/healthz"
grep -qi '^access-control-allow-origin' "$TMP/h2" && fail "CORS header for a foreign origin"
ok "CORS origin list"
exit 0
