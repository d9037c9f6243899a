#!/bin/sh
# Recovery (issue 5, fault 1): a gateway is killed with SIGKILL while its
# clients stream; they reconnect with their cursor (SSE Last-Event-ID like
# EventSource, WS subscribe "since") to a second gateway, which replays what
# they missed from history before live. Every client gets every event
# exactly once and in offset order.
. "$(dirname "$0")/harness.sh"
. "$(dirname "$0")/gw/recovery.sh"

node_deps
start_redis
start_publisher
start_gw A
start_gw B
A=http://127.0.0.1:$GWPORT_A
B=http://127.0.0.1:$GWPORT_B
# every client starts on A and goes to B when A is gone
for n in 1 2 3; do sse_client s$n news "$A" "$B"; done
ws_client_r w1 news "ws://127.0.0.1:$GWPORT_A" "ws://127.0.0.1:$GWPORT_B"
ws_client_r w2 news "ws://127.0.0.1:$GWPORT_A" "ws://127.0.0.1:$GWPORT_B"
for c in s1 s2 s3 w1 w2; do wait_until 20 "$c open" opened $c 1; done
wait_until 20 "A subscribed to news" numsub_is news 1

# stream in the background while A dies
( publish_range news 1 60 ) &
PUBJOB=$!
track $PUBJOB
for c in s1 s2 s3 w1 w2; do wait_until 20 "$c got 10" got $c news 10; done
kill -9 "$GWPID_A"
wait "$PUBJOB" || fail "publishing failed"
for c in s1 s2 s3 w1 w2; do wait_until 30 "$c reopened" opened $c 2; done
publish_range news 61 70
for c in s1 s2 s3 w1 w2; do wait_until 30 "$c got 70" got $c news 70; done
for c in s1 s2 s3 w1 w2; do check $c news 70; done
kill -0 "$GWPID_B" || fail "gateway B died"
stop_gws B
ok "gateway killed mid-stream: 5 clients resumed on the second gateway with every event once, in order"
exit 0
