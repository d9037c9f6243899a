#!/bin/sh
# Settings and limits: --help lists every setting with its env var, a bad
# value exits 2 with a message, FLAGCAST_MAX_CONNECTIONS refuses in a form
# clients retry (SSE 200 + retry:, WS close 1013) above the cap and admits again once a client leaves; WS ping/pong
# keep-alive and idle timeout; a second gateway process on the same port.
. "$(dirname "$0")/harness.sh"

node_deps
"$BIN/flagcast-gateway" --help >"$TMP/help.txt" 2>&1 || fail "--help failed"
for v in FLAGCAST_LISTEN FLAGCAST_REDIS_URL FLAGCAST_REDIS_PREFIX FLAGCAST_AUTH \
         FLAGCAST_MAX_CONNECTIONS FLAGCAST_SSE_KEEPALIVE FLAGCAST_SSE_RETRY \
         FLAGCAST_QUEUE_MAX_EVENTS FLAGCAST_QUEUE_MAX_BYTES FLAGCAST_WS_MAX_FRAME \
         FLAGCAST_CORS_ORIGINS FLAGCAST_THREADS FLAGCAST_LOG_LEVEL FLAGCAST_MAX_HEADER_BYTES; do
    grep -q "$v" "$TMP/help.txt" || fail "--help does not list $v"
done
"$BIN/flagcast-gateway" --version >/dev/null 2>&1 || fail "--version failed"
for bad in "--listen=nope" "--redis-url=http://x" "--auth=maybe" "--sse-keepalive=0" "--threads=-1" "--log-level=loud" "--max-header-bytes=100"; do
    "$BIN/flagcast-gateway" "$bad" >"$TMP/bad.txt" 2>&1; rc=$?
    [ "$rc" = 2 ] || fail "$bad: exit $rc (want 2)"
    [ -s "$TMP/bad.txt" ] || fail "$bad: no message"
done
ok "--help lists the settings; bad values exit 2 with a message"

start_redis
# the subscriber's health ping stays inside the deployment's key prefix
start_gateway FLAGCAST_REDIS_PREFIX=acme FLAGCAST_REDIS_PING_MS=100
pinged() { redis-cli -p "$REDIS_PORT" PUBSUB CHANNELS '*rconn-ping*' | grep -qx 'acme:rconn-ping:subscriber'; }
wait_until 10 "the ping channel under the prefix" pinged
redis-cli -p "$REDIS_PORT" PUBSUB CHANNELS '*' | grep -v '^acme:' | grep -q . &&
    fail "a channel outside the prefix: $(redis-cli -p "$REDIS_PORT" PUBSUB CHANNELS '*')"
kill "$GW_PID"; wait "$GW_PID" 2>/dev/null
ok "FLAGCAST_REDIS_PREFIX=acme: every subscription, the health ping's too, is under acme:"
start_gateway FLAGCAST_MAX_CONNECTIONS=2 FLAGCAST_CORS_ORIGINS=https://a.example,https://b.example \
    FLAGCAST_WS_PING=1 FLAGCAST_WS_IDLE_TIMEOUT=3
sse A "/api/v1/realtime/sse"
sse B "/api/v1/realtime/sse"
wait_until 10 "A snapshot" sse_has A '^snapshot'
wait_until 10 "B snapshot" sse_has B '^snapshot'
# over the cap: a refusal EventSource retries (200, retry: hint, end), WS 1013
code=$(curl -s -D "$TMP/c.h" -o "$TMP/c.out" -w '%{http_code}' "$GW/api/v1/realtime/sse")
[ "$code" = 200 ] || fail "third SSE client answered $code"
grep -qi '^x-flagcast-refused: full' "$TMP/c.h" || fail "refusal header: $(cat "$TMP/c.h")"
grep -qi '^content-type: text/event-stream' "$TMP/c.h" || fail "refusal is not an event stream"
grep -q '^: refused: too many connections' "$TMP/c.out" || fail "refusal body: $(cat "$TMP/c.out")"
grep -q '^retry: [0-9]' "$TMP/c.out" || fail "refusal without retry: $(cat "$TMP/c.out")"
out=$(sleep 3 | timeout 10 node "$GW_DIR/ws_client.js" "$WSURL/ws" | tr '\n' ' ')
[ "$out" = "open - close 1013 " ] || fail "WS over the cap: $out"
metric_eq flagcast_gateway_connections_rejected_total 2 || fail "rejections not counted"
kill "$SSE_PID_A"
sse_gauge_is() { metric_eq 'flagcast_gateway_connections{transport="sse"}' "$1"; }
wait_until 5 "A reaped" sse_gauge_is 1
sse C "/api/v1/realtime/sse"
wait_until 10 "C admitted after A left" sse_has C '^snapshot'
ok "refused above FLAGCAST_MAX_CONNECTIONS (SSE 200 + retry:, WS 1013), admitted again below"

# CORS with a list: an allowed origin is echoed, another gets no header
curl -s -D "$TMP/h1" -o /dev/null -H 'Origin: https://b.example' "$GW/healthz"
grep -qi '^access-control-allow-origin: https://b.example' "$TMP/h1" || fail "allowed origin not echoed"
curl -s -D "$TMP/h2" -o /dev/null -H 'Origin: https://evil.example' "$GW/healthz"
grep -qi '^access-control-allow-origin' "$TMP/h2" && fail "CORS header for a foreign origin"
ok "CORS origin list"

# ---- WS keep-alive: a client that answers pings stays, one that does not is
# closed after FLAGCAST_WS_IDLE_TIMEOUT (one SSE slot is free again: A left,
# so first make room for two WS clients)
kill "$SSE_PID_B" "$SSE_PID_C"
wait_until 5 "B and C reaped" sse_gauge_is 0
mkfifo "$TMP/P.in" "$TMP/N.in"
node "$GW_DIR/ws_client.js" "$WSURL/ws" <"$TMP/P.in" >"$TMP/P.out" 2>&1 &
track $!
NOPONG=1 node "$GW_DIR/ws_client.js" "$WSURL/ws" <"$TMP/N.in" >"$TMP/N.out" 2>&1 &
track $!
exec 4>"$TMP/P.in" 5>"$TMP/N.in"
has() { grep -q -- "$2" "$TMP/$1.out"; }
wait_until 10 "P connected" has P '^connected'
wait_until 10 "N connected" has N '^connected'
start=$(date +%s)
wait_until 10 "silent client closed by the idle timeout" has N '^close'
took=$(( $(date +%s) - start ))
[ "$took" -ge 1 ] || fail "silent client closed too early (${took}s)"
has N '^ping' || fail "silent client was never pinged"
# The answering client outlives the silent one's deadline and keeps being
# pinged (polled, not timed: a loaded machine may be slow to send pings).
pinged_twice() { [ "$(grep -c '^ping' "$TMP/P.out")" -ge 2 ]; }
wait_until 10 "answering client pinged twice" pinged_twice
sleep 1
has P "^close" && fail "client answering pings was closed: $(cat "$TMP/P.out" | tr "\n" " ")"
ok "WS ping keep-alive; silent client closed after the idle timeout"

# ---- a second gateway process shares the port (SO_REUSEPORT)
daemon_exec gateway "$GW_PORT" "$REDIS_URL" >"$TMP/gateway2.log" 2>&1 &
GW2_PID=$!; track $GW2_PID
has_ready2() { grep -q 'gateway ready' "$TMP/gateway2.log"; }
wait_until 10 "second gateway ready on the same port" has_ready2
kill -0 "$GW2_PID" || fail "second gateway on the same port exited: $(cat "$TMP/gateway2.log")"
ok "two gateway processes on one port"

# ---- started before Redis: not ready, streams refused (no empty snapshot),
# then served once Redis is there and the flags are loaded
R2_PORT=$(free_port)
G3_PORT=$(free_port)
daemon_exec gateway "$G3_PORT" "redis://127.0.0.1:$R2_PORT" >"$TMP/gateway3.log" 2>&1 &
track $!
G3=http://127.0.0.1:$G3_PORT
wait_until 10 "third gateway answering" is_code 503 "$G3/readyz"
code=$(curl -s -D "$TMP/g3.h" -o "$TMP/g3.out" -w '%{http_code}' "$G3/api/v1/realtime/sse")
[ "$code" = 200 ] || fail "SSE before the first flags load answered $code"
grep -qi '^x-flagcast-refused: starting' "$TMP/g3.h" || fail "refusal header: $(cat "$TMP/g3.h")"
grep -q 'not loaded' "$TMP/g3.out" || fail "refusal body: $(cat "$TMP/g3.out")"
grep -q '^retry: [0-9]' "$TMP/g3.out" || fail "refusal without retry: $(cat "$TMP/g3.out")"
out=$(sleep 3 | timeout 10 node "$GW_DIR/ws_client.js" "ws://127.0.0.1:$G3_PORT/ws" | tr '\n' ' ')
[ "$out" = "open - close 1013 " ] || fail "WS before the first flags load: $out"
redis_exec "$R2_PORT" "$TMP" >"$TMP/redis3.log" 2>&1 &
track $!
wait_until 15 "third gateway ready once Redis is up" is_code 200 "$G3/readyz"
curl -sN "$G3/api/v1/realtime/sse" >"$TMP/G3.sse" 2>/dev/null &
track $!
g3_snap() { node "$GW_DIR/sse_parse.js" "$TMP/G3.sse" | grep -q '^snapshot'; }
wait_until 10 "snapshot from the third gateway" g3_snap
ok "streams wait for the first flags load (SSE 200 + retry:, WS 1013), then are served"

# ---- FLAGCAST_AUTH=required without any key configured: every token fails (401)
G4_PORT=$(free_port)
daemon_exec gateway "$G4_PORT" "redis://127.0.0.1:$R2_PORT" FLAGCAST_AUTH=required \
    >"$TMP/gateway4.log" 2>&1 &
track $!
wait_until 10 "auth=required gateway ready" is_code 200 "http://127.0.0.1:$G4_PORT/readyz"
code=$(http_code "http://127.0.0.1:$G4_PORT/api/v1/realtime/sse")
[ "$code" = 401 ] || fail "SSE with FLAGCAST_AUTH=required answered $code"
out=$(echo | timeout 10 node "$GW_DIR/ws_client.js" "ws://127.0.0.1:$G4_PORT/ws?token=abc")
[ "$out" = "http 401" ] || fail "WS with FLAGCAST_AUTH=required: $out"
ok "FLAGCAST_AUTH=required refuses streams (401) when no token can verify (tests/integration/test_ident.sh covers tokens)"
exit 0
