#!/bin/sh
# A WebSocket client that resets with unread backlog (issue 9.9a): clients
# subscribe to a busy channel with a 4 KB receive buffer, let MBs back up
# (some under the queue limit, some over it), then close with data unread
# (RST). Afterwards the gateway counts no connection, uses no CPU while idle
# (a spinning service thread would burn about a core), answers /readyz and
# /metrics, serves a new client, and stops on one SIGTERM.
. "$(dirname "$0")/harness.sh"

node_deps
start_redis
start_publisher
start_gateway
RC=""
for k in 1 2 3 4 5 6; do
    python3 "$GW_DIR/rst_client.py" 127.0.0.1 "$GW_PORT" busy $((2 + k / 2)) >"$TMP/rst$k.out" 2>&1 &
    RC="$RC $!"; track $!
done
wait_until 10 "6 WS clients" metric_eq 'flagcast_gateway_connections{transport="ws"}' 6
python3 - "$PUB" "$TOKEN" <<'PY' || fail "publishing failed"
import json, sys, threading, time, urllib.request
pub, tok = sys.argv[1], sys.argv[2]
body = json.dumps({"data": {"b": "x" * 50000}}).encode()
def run():
    end = time.time() + 5
    while time.time() < end:
        req = urllib.request.Request(pub + "/api/v1/channels/busy/messages", data=body, method="POST",
              headers={"Authorization": "Bearer " + tok, "Content-Type": "application/json"})
        urllib.request.urlopen(req, timeout=5).read()
        time.sleep(0.1)
ts = [threading.Thread(target=run) for _ in range(3)]
[t.start() for t in ts]; [t.join() for t in ts]
PY
for p in $RC; do wait "$p"; done
for k in 1 2 3 4 5 6; do grep -q "closed with RST" "$TMP/rst$k.out" || fail "client $k: $(cat "$TMP/rst$k.out")"; done
wait_until 10 "no WS connection counted" metric_eq 'flagcast_gateway_connections{transport="ws"}' 0

cpu() { awk '{ print $14 + $15 }' "/proc/$GW_PID/stat"; }
c0=$(cpu); sleep 2; c1=$(cpu)
hz=$(getconf CLK_TCK)
[ $((c1 - c0)) -lt "$hz" ] || fail "gateway busy while idle: $((c1 - c0)) ticks in 2 s (CLK_TCK $hz)"
is_code 200 -m 2 "$GW/readyz" || fail "/readyz unanswered"
curl -s -m 2 "$GW/metrics" | grep -q '^flagcast_gateway_connections' || fail "/metrics unanswered"
sse N '/api/v1/realtime/sse?channels=busy'
wait_until 10 "new client connected" sse_has N '^connected'
api POST /api/v1/channels/busy/messages '{"data":{"m":"after"}}'
wait_until 10 "new client served" sse_has N '"m":"after"'
kill "$GW_PID"
i=0; while kill -0 "$GW_PID" 2>/dev/null; do
    [ $i -ge 100 ] && fail "gateway did not stop on one SIGTERM"
    sleep 0.1; i=$((i + 1))
done
ok "6 WS clients reset with backlog: none counted, idle CPU $((c1 - c0)) ticks/2 s, still serving, stops on SIGTERM"
