#!/bin/sh
# Recovery (issue 5): an SSE stream of several channels. Its `id:` is a list
# cursor with the position of each channel (written per connection ahead of
# the shared frame), so Last-Event-ID resumes every channel, not just the
# one of the last event: a gateway is killed while events on two channels
# stream, and the client that reconnects to a second gateway gets every
# event of both channels exactly once, in order.
. "$(dirname "$0")/harness.sh"
. "$(dirname "$0")/gw/recovery.sh"

node_deps
start_redis
start_publisher
start_gw A
start_gw B
A=http://127.0.0.1:$GWPORT_A
B=http://127.0.0.1:$GWPORT_B
sse_client m1 "alpha,beta" "$A" "$B"
sse_client m2 "alpha,beta" "$A" "$B"
for c in m1 m2; do wait_until 20 "$c open" opened $c 1; done
wait_until 20 "A subscribed" numsub_is beta 1

both() { publish alpha "$1"; publish beta "$1"; }
i=1
while [ $i -le 10 ]; do both $i; i=$((i + 1)); done
for c in m1 m2; do wait_until 20 "$c got beta 10" got $c beta 10; done
ID=$(cat "$TMP/m1.id")
case "$ID" in alpha/*/10\ beta/*/10) ;; *) fail "list cursor is \"$ID\"" ;; esac
# alpha runs ahead, then A dies with beta behind
( publish_range alpha 11 30; publish_range beta 11 15 ) &
PUBJOB=$!
track $PUBJOB
wait_until 20 "m1 got alpha 20" got m1 alpha 20
kill -9 "$GWPID_A"
wait "$PUBJOB" || fail "publishing failed"
publish_range beta 16 20
publish alpha 31
for c in m1 m2; do
    wait_until 30 "$c got alpha 31" got $c alpha 31
    wait_until 30 "$c got beta 20" got $c beta 20
    check $c alpha 31
    check $c beta 20
done
# ---- quiet channels: a stream's cursor covers channels that had no event
# on it yet (their position is taken when the stream starts), so a client
# that leaves and returns gets what they published meanwhile. gamma has a
# history before the client comes, delta none at all.
publish gamma 1
sse_client q1 "gamma,delta,alpha" "$B"
wait_until 20 "q1 open" opened q1 1
wait_until 20 "B subscribed to delta" numsub_is delta 1
publish alpha 32
wait_until 20 "q1 got alpha 32" got q1 alpha 32
grep -q 'gamma/[^ ]*/1' "$TMP/q1.id" || fail "q1's cursor does not cover gamma: $(cat "$TMP/q1.id")"
grep -q 'delta/-/0' "$TMP/q1.id" || fail "q1's cursor does not cover delta: $(cat "$TMP/q1.id")"
kill "$CPID_q1"
publish gamma 2
publish delta 1
publish alpha 33
mv "$TMP/q1.out" "$TMP/q1a.out"
LAST_ID=$(cat "$TMP/q1.id") sse_client q1 "gamma,delta,alpha" "$B"
wait_until 20 "q1 got gamma 2" got q1 gamma 2
wait_until 20 "q1 got delta 1" got q1 delta 1
wait_until 20 "q1 got alpha 33" got q1 alpha 33
[ "$(grep -c '^message' "$TMP/q1.out")" = 3 ] || fail "q1 after its return: $(cat "$TMP/q1.out")"
stop_gws B
ok "a stream of two channels resumed both from its list cursor on another gateway; quiet channels are in the cursor from the start"
exit 0
