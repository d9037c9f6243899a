#!/bin/sh
# Recovery (issue 5, fault 3): the gateway's Redis connections are dropped
# (CLIENT KILL TYPE pubsub, then the reader connection by id) while events
# are published. The gateway reconnects, reads the history since the last
# offset it delivered and delivers the gap before live. Every client (SSE
# and WS, connections to the gateway stay open) gets every event exactly
# once and in offset order. Also: a pub/sub message lost while the
# subscription stays up (PUBLISH skipped: the entry written to history by
# hand) is noticed at the next offset and filled from history.
. "$(dirname "$0")/harness.sh"
. "$(dirname "$0")/gw/recovery.sh"

node_deps
start_redis
start_publisher
start_gw A
A=http://127.0.0.1:$GWPORT_A
sse_client s1 chat "$A"
sse_client s2 chat "$A"
ws_client_r w1 chat "ws://127.0.0.1:$GWPORT_A"
for c in s1 s2 w1; do wait_until 20 "$c open" opened $c 1; done
wait_until 20 "gateway subscribed to chat" numsub_is chat 1

publish_range chat 1 10
for c in s1 s2 w1; do wait_until 20 "$c got 10" got $c chat 10; done

kill_gateway_conns() {
    redis-cli -p "$REDIS_PORT" client kill type pubsub >/dev/null
    for id in $(redis-cli -p "$REDIS_PORT" client list | awk '/cmd=(hgetall|xrange|hmget|hget) / { sub("id=", "", $1); print $1 }'); do
        redis-cli -p "$REDIS_PORT" client kill id "$id" >/dev/null
    done
}
kill_gateway_conns
publish_range chat 11 25
kill_gateway_conns
publish_range chat 26 40
wait_until 20 "gateway subscribed again" numsub_is chat 1
publish_range chat 41 50
for c in s1 s2 w1; do wait_until 30 "$c got 50" got $c chat 50; done

# a lost pub/sub message: offset 51 goes to history only, 52 is published
EPOCH=$(redis-cli -p "$REDIS_PORT" hget flagcast:meta:chat epoch)
OFF=$(redis-cli -p "$REDIS_PORT" hincrby flagcast:meta:chat offset 1)
[ "$OFF" = 51 ] || fail "meta offset is $OFF, not 51"
(cd "$GW_DIR" && node -e '
const { encode } = require("@msgpack/msgpack");
const hdr = Buffer.from(encode([1, "chat", process.argv[1], 51]));
const body = Buffer.from(encode({ type: "message", ts: Date.now(), data: { m: 51 } }));
process.stdout.write(Buffer.concat([hdr, body]).toString("base64"));
' "$EPOCH") >"$TMP/m51.b64" 2>"$TMP/node.err" || fail "encoding entry 51: $(cat "$TMP/node.err")"
python3 - "$REDIS_PORT" "$TMP/m51.b64" <<'PY' || fail "writing history entry 51"
import base64, socket, sys
port, path = int(sys.argv[1]), sys.argv[2]
msg = base64.b64decode(open(path).read())
args = [b"XADD", b"flagcast:hist:chat", b"51-0", b"m", msg]
cmd = b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)
s = socket.create_connection(("127.0.0.1", port))
s.sendall(cmd)
r = s.recv(100)
assert r.startswith(b"$"), r
PY
publish chat 52
for c in s1 s2 w1; do wait_until 20 "$c got 52" got $c chat 52; done
for c in s1 s2 w1; do check $c chat 52; done
grep -q 'msg="gap in live traffic, reading history"' "$TMP/gw-A.log" || fail "the gap was not noticed"
grep -q 'msg="history gap filled"' "$TMP/gw-A.log" || fail "no gap fill logged"
GW=$A
metric_ge flagcast_gateway_gap_fills_total 2 || fail "gap_fills_total is $(metric flagcast_gateway_gap_fills_total)"
metric_eq flagcast_gateway_resyncs_total 0 || fail "resyncs_total is $(metric flagcast_gateway_resyncs_total)"
kill -0 "$GWPID_A" || fail "gateway died"
stop_gws A
ok "Redis connections killed twice and a lost pub/sub message: every client got 1..52 once, in order"
exit 0
