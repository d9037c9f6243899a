#!/bin/sh
# The drain's edges on one gateway, without a balancer (the topology test is
# test_scale_haproxy.sh):
#  - SIGINT drains like SIGTERM; during FLAGCAST_DRAIN_DELAY /readyz is 503
#    but streams are still accepted (the balancer may not have noticed yet);
#    once the window opens new streams are refused (200, retry:, end); the first clients are told
#    to go (jittered retry: hint) and a second signal stops at once, closing
#    the rest;
#  - a client that does not answer its close (a WS peer that never reads)
#    cannot hold the process: it exits at the window's deadline and says so.
. "$(dirname "$0")/harness.sh"

start_redis
start_publisher

# ---- SIGINT, delay, window, second signal
start_gateway FLAGCAST_THREADS=2 FLAGCAST_DRAIN_DELAY=2 FLAGCAST_DRAIN_SECONDS=60 FLAGCAST_SSE_RETRY=2000
for c in A B C D; do sse $c "/api/v1/realtime/sse?channels=chat.room1"; done
for c in A B C D; do wait_until 10 "$c connected" sse_has $c '^connected'; done
conns() { metric 'flagcast_gateway_connections{transport="sse"}'; }
wait_until 10 "4 SSE streams" metric_eq 'flagcast_gateway_connections{transport="sse"}' 4
kill -INT "$GW_PID"
wait_until 3 "readyz 503 after SIGINT" is_code 503 "$GW/readyz"
is_code 200 "$GW/healthz" || fail "healthz while draining"
metric_eq flagcast_gateway_draining 1 || fail "draining gauge not 1"
# still accepted during the delay: the balancer may not have seen the 503 yet
sse E "/api/v1/realtime/sse?channels=chat.room1"
wait_until 3 "E accepted during the drain delay" sse_has E '^connected'
[ "$(conns)" = 5 ] || fail "a stream was closed during the drain delay ($(conns) of 5 left)"
ok "SIGINT: /readyz 503 at once, streams still accepted during the delay"

window_open() { grep -q 'telling clients to reconnect elsewhere' "$TMP/gateway.log"; }
wait_until 10 "drain window opens" window_open
code=$(curl -s -D "$TMP/late.h" -o "$TMP/late.out" -w '%{http_code}' --max-time 5 "$GW/api/v1/realtime/sse")
[ "$code" = 200 ] || fail "a new stream in the drain window got $code, want 200 (a refusal EventSource retries)"
grep -qi '^x-flagcast-refused: draining' "$TMP/late.h" || fail "refusal header: $(cat "$TMP/late.h")"
grep -q '^retry: [0-9]' "$TMP/late.out" || fail "refusal without retry: $(cat "$TMP/late.out")"
# the first of each thread's clients goes at once (i = 0 is due at the start)
drained() { [ "$(metric 'flagcast_gateway_drained_total{transport="sse"}')" -ge 1 ]; }
wait_until 5 "first client drained" drained
still=$(conns)
[ "$still" -ge 1 ] && [ "$still" -le 4 ] || fail "want some but not all streams left early in a 60 s window, have $still"
gone=""
for c in A B C D E; do
    eval "p=\$SSE_PID_$c"
    kill -0 "$p" 2>/dev/null || gone="$gone $c"
done
[ -n "$gone" ] || fail "no curl stream ended although the gateway drained one"
for c in $gone; do
    last=$(sse_lines $c | grep -v '^:$' | tail -1)
    case "$last" in
        "retry "*) r=${last#retry }
            [ "$r" -ge 1000 ] && [ "$r" -le 3000 ] || fail "$c: retry hint $r outside [1000, 3000]" ;;
        *) fail "$c: stream did not end with a retry hint: $last" ;;
    esac
done
ok "window open: new streams refused (200 + retry:), first clients told to go ($gone) with a jittered retry, $still still served"

T0=$(date +%s)
kill -TERM "$GW_PID"
exited() { ! kill -0 "$GW_PID" 2>/dev/null; }
wait_until 5 "exit after the second signal" exited
wait "$GW_PID"; rc=$?
[ "$rc" = 0 ] || fail "gateway exited with $rc after the second signal"
[ $(( $(date +%s) - T0 )) -le 5 ] || fail "second signal did not stop at once"
grep -q 'msg="gateway drained" how=signal' "$TMP/gateway.log" || fail "no how=signal drain log line"
grep -q 'msg="gateway stopped"' "$TMP/gateway.log" || fail "no stop log line"
for c in A B C D E; do
    eval "p=\$SSE_PID_$c"
    wait_until 5 "$c stream ended" eval "! kill -0 $p"
done
ok "second signal: stopped at once, every stream closed, exit 0"

# ---- a WS peer that never reads cannot hold the process past the deadline:
# its socket buffers fill with a few big messages, so its close 1001 can
# never be written (the queue limit is raised so it is not closed as slow).
mv "$TMP/gateway.log" "$TMP/gateway-1.log"
start_gateway FLAGCAST_THREADS=1 FLAGCAST_DRAIN_DELAY=0 FLAGCAST_DRAIN_SECONDS=2 \
    FLAGCAST_QUEUE_MAX_BYTES=268435456
cat >"$TMP/deaf.py" <<'EOF'
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
          b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
          b"Sec-WebSocket-Protocol: flagcast.json\r\n\r\n")
resp = b""
while b"\r\n\r\n" not in resp:
    chunk = s.recv(1)
    if not chunk:
        break
    resp += chunk
print(resp.split(b"\r\n")[0].decode(), flush=True)
msg = b'{"type":"subscribe","channels":["big"]}'
s.sendall(bytes([0x81, 0x80 | len(msg), 0, 0, 0, 0]) + msg)   # masked with a zero key
print("subscribed", flush=True)
time.sleep(3600)   # never reads again, never answers the close
EOF
python3 "$TMP/deaf.py" "$GW_PORT" >"$TMP/deaf.out" 2>&1 &
track $!
wait_until 10 "deaf WS upgraded" grep -q ' 101 ' "$TMP/deaf.out"
wait_until 10 "deaf WS counted" metric_eq 'flagcast_gateway_connections{transport="ws"}' 1
wait_until 10 "deaf WS subscribed to big" numsub_is big 1
python3 -c 'import json; print(json.dumps({"data": {"pad": "x" * 900000}}))' >"$TMP/big.json"
for i in 1 2 3 4 5 6 7 8 9 10; do
    curl -sf -o /dev/null -X POST -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
        --data-binary @"$TMP/big.json" "$PUB/api/v1/channels/big/messages" || fail "publishing big message $i"
done
wait_until 10 "10 big messages delivered or queued" metric_ge flagcast_gateway_deliveries_total 10
metric_eq 'flagcast_gateway_connections{transport="ws"}' 1 || fail "the deaf WS was closed before the drain"
T0=$(date +%s)
kill -TERM "$GW_PID"
exited() { ! kill -0 "$GW_PID" 2>/dev/null; }
wait_until 10 "exit at the deadline" exited
wait "$GW_PID"; rc=$?
[ "$rc" = 0 ] || fail "gateway exited with $rc at the drain deadline"
grep -q 'msg="gateway drained" how=deadline drained_sse=0 drained_ws=1 left=1' "$TMP/gateway.log" ||
    fail "drain log: $(grep 'gateway drained' "$TMP/gateway.log")"
ok "a peer that never reads: exit 0 at the deadline after $(( $(date +%s) - T0 )) s (how=deadline left=1)"
exit 0
