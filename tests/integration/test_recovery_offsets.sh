#!/bin/sh
# Live offsets checked against history (issue 9.9b-d):
#  (c) a message with a far-ahead offset that is not in history (a writer
#      outside the publisher) is dropped, logged and counted; the genuine
#      events after it still arrive;
#  (b) Redis restarted from an older snapshot with the same epoch (offsets
#      go back): the gateway notices at reconnect, resyncs its clients at
#      what Redis has (flags: a fresh snapshot), and the events that reuse
#      the offsets are delivered, not dropped as duplicates;
#  (d) after FLUSHALL the flags epoch changes: the snapshot that follows the
#      new epoch's first event never carries an older position.
. "$(dirname "$0")/harness.sh"
. "$(dirname "$0")/gw/recovery.sh"

node_deps
start_redis
start_publisher
api POST /api/v1/flags '{"key":"k1","enabled":true}'
start_gw A
GW=http://127.0.0.1:$GWPORT_A
sse_client c chat "$GW"
sse F /api/v1/realtime/sse
wait_until 20 "c open" opened c 1
wait_until 10 "F connected" sse_has F '^snapshot'
publish_range chat 1 3
wait_until 20 "c got 3" got c chat 3

# ---- (c) offset 1000, published by hand, not in history
EPOCH=$(redis-cli -p "$REDIS_PORT" hget flagcast:meta:chat epoch)
(cd "$GW_DIR" && node -e '
const { encode } = require("@msgpack/msgpack");
const hdr = Buffer.from(encode([1, "chat", process.argv[1], 1000]));
const body = Buffer.from(encode({ type: "message", ts: Date.now(), data: { m: 1000 } }));
process.stdout.write(Buffer.concat([hdr, body]).toString("base64"));
' "$EPOCH") >"$TMP/bad.b64" 2>"$TMP/node.err" || fail "encoding: $(cat "$TMP/node.err")"
python3 - "$REDIS_PORT" "$TMP/bad.b64" <<'PY' || fail "PUBLISH by hand"
import base64, socket, sys
port, path = int(sys.argv[1]), sys.argv[2]
msg = base64.b64decode(open(path).read())
args = [b"PUBLISH", b"flagcast:ch:chat", msg]
s = socket.create_connection(("127.0.0.1", port))
s.sendall(b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args))
assert s.recv(100).startswith(b":1"), "not received by the gateway"
PY
publish_range chat 4 5
wait_until 20 "c got 5" got c chat 5
check c chat 5
wait_until 10 "offset counted" metric_eq flagcast_gateway_offsets_rejected_total 1
grep -q 'msg="live event not in history dropped"' "$TMP/gw-A.log" || fail "not logged"
ok "(c) a far-ahead offset not in history is dropped; 4 and 5 still arrive"

# ---- (b) Redis back from an older snapshot, same epoch
redis-cli -p "$REDIS_PORT" save >/dev/null
publish_range chat 6 8
api PUT /api/v1/flags/k1/enabled '{"enabled":false}'   # lost with the rollback
wait_until 20 "c got 8" got c chat 8
wait_until 10 "F toggle" sse_has F '^flag.toggled flags k1'
kill -9 "$REDIS_PID"
wait "$REDIS_PID" 2>/dev/null
redis_exec "$REDIS_PORT" "$TMP" --dbfilename dump.rdb >>"$TMP/redis.log" 2>&1 &
REDIS_PID=$!; track $REDIS_PID
wait_until 10 "redis back" redis_ping "$REDIS_PORT"
[ "$(redis-cli -p "$REDIS_PORT" hget flagcast:meta:chat offset)" = 5 ] || fail "the snapshot does not hold offset 5"
wait_until 20 "rollback noticed" metric_ge flagcast_gateway_history_rollbacks_total 1
publish chat 106
publish chat 107
wait_until 20 "c got the reused offset 7" grep -q '"m":107' "$TMP/c.out"
grep -q '^resync chat "history rolled back"' "$TMP/c.out" || fail "c: no resync: $(cat "$TMP/c.out")"
# after the resync: offsets 6 and 7 again, with the new messages
sed -n '/^resync chat/,$p' "$TMP/c.out" | grep '^message' | awk '{ print $3, $4 }' >"$TMP/c.after"
expect c "$TMP/c.after" '6 {"m":106}
7 {"m":107}'
# flags: a fresh snapshot shows k1 enabled again, as Redis has it
wait_until 20 "F snapshot after rollback" sh -c "[ \$(grep -c '^event: snapshot' '$TMP/F.sse') -ge 2 ]"
ok "(b) a rollback resyncs the clients; reused offsets delivered"

# ---- (d) FLUSHALL: the new epoch's position never goes back
redis-cli -p "$REDIS_PORT" flushall >/dev/null
api POST /api/v1/flags '{"key":"k9","enabled":true}'
wait_until 20 "F: a snapshot with k9 after flushall" sse_has F '^snapshot k9$'
api PUT /api/v1/flags/k9/enabled '{"enabled":false}'
wait_until 20 "F: the toggle after it" sse_has F '^flag.toggled flags k9'
FE=$(redis-cli -p "$REDIS_PORT" hget flagcast:meta:flags epoch)
# the new epoch starts with the snapshot that announces it (no event of it
# before, none computed against the old epoch's flags), positions never go
# back, and what follows is delivered
node -e '
const fs = require("fs");
let last = -1, epoch = process.argv[2], first = null, ev = null;
for (const l of fs.readFileSync(process.argv[1], "utf8").split("\n")) {
  if (l.startsWith("event: ")) { ev = l.slice(7); continue; }
  const m = l.match(/^id: flags\/([^/ ]+)\/(\d+)$/);
  if (m && m[1] === epoch) {
    const o = parseInt(m[2], 10);
    if (o < last) { console.log(`position went back: ${last} then ${o}`); process.exit(1); }
    last = o;
  }
  if (l.startsWith("data: ") && l.includes(`"epoch":"${epoch}"`) && first === null) first = ev;
  if (l.startsWith("data: ") && ev === "snapshot" && first === null && last >= 0) first = ev;
}
if (first !== "snapshot") { console.log(`the new epoch began with ${first}`); process.exit(1); }
if (last < 0) { console.log("no id in the new epoch"); process.exit(1); }
' "$TMP/F.sse" "$FE" || fail "F: $(grep '^id:\|^event:' "$TMP/F.sse")"
ok "(d) after FLUSHALL the new epoch begins with its snapshot, ids never go back"
stop_gws A
