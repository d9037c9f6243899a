#!/bin/sh
# Smoke check of the benchmark tools (not a benchmark: nothing here is timed).
# A private redis-server and bench-floor on free loopback ports; bench-loadgen
# holds 100 SSE connections spread over two worker processes, publishes one
# warm-up and one measured event through the floor, and must see each reach
# all 100 connections; then closes 10 and the floor must release them.
. "$(dirname "$0")/harness.sh"
FAIL_LOGS='*.log *.out'

for p in bench-loadgen bench-floor; do
    [ -x "$BIN/$p" ] || fail "$BIN/$p is not built"
done
RPORT=$(free_port)
redis_exec "$RPORT" "$TMP" >"$TMP/redis.log" 2>&1 &
track $!
wait_until 10 "redis" redis_ping "$RPORT"

FPORT=$(free_port)
"$BIN/bench-floor" --listen "127.0.0.1:$FPORT" --redis "127.0.0.1:$RPORT" 2>"$TMP/floor.log" &
FPID=$!
track $FPID
floor_up() { curl -s -o /dev/null -m 1 -X OPTIONS "http://127.0.0.1:$FPORT/"; }
wait_until 10 "floor" floor_up

"$BIN/bench-loadgen" --url "http://127.0.0.1:$FPORT/sub" --publish "http://127.0.0.1:$FPORT/pub" \
    --connections 100 --workers 2 --rounds 1 --warmup 1 --settle 100 --gap 10 \
    --round-timeout 10000 --pids "$FPID" --close 10 --close-watch 2 >"$TMP/lg.out" 2>"$TMP/lg.log" ||
    fail "bench-loadgen exited with $?"

grep -q '^label=run connections=100 connected=100 failed=0 ' "$TMP/lg.out" || fail "not all 100 connected"
grep -q '^round=0 warmup=1 delivered=100 expected=100 ' "$TMP/lg.out" || fail "warm-up event did not reach all 100"
grep -q '^round=1 delivered=100 expected=100 ' "$TMP/lg.out" || fail "event did not reach all 100"
grep -q '^result label=run conns=100 rounds=1 completion_med_ms=[0-9]' "$TMP/lg.out" || fail "no result line"
grep -q '^close conns=10 reap_ms=[0-9]' "$TMP/lg.out" || fail "the floor did not release the 10 closed connections"
grep -q '^rss_before_kb=[0-9]* rss_after_kb=[0-9]* rss_per_conn_b=' "$TMP/lg.out" || fail "no RSS reading"

# Bad input gets a clear error, not a crash.
"$BIN/bench-loadgen" --url nonsense >/dev/null 2>"$TMP/bad.log"
[ $? = 2 ] && grep -q 'expected http://HOST:PORT/PATH' "$TMP/bad.log" || fail "bad --url not refused clearly"

echo "ok: loadgen held 100 connections to the floor and saw both events reach all of them"
echo "bench smoke: 1 passed, 0 failed"
