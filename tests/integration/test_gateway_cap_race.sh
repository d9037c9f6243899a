#!/bin/sh
# FLAGCAST_MAX_CONNECTIONS holds under concurrent admission (issue 9f): with
# two threads, bursts of SSE and WS streams opened at once never get more
# than the cap admitted together, and the connection gauges never exceed it
# (the check and the increment were separate: one over the cap).
. "$(dirname "$0")/harness.sh"

CAP=3
node_deps
start_redis
start_publisher
start_gateway FLAGCAST_MAX_CONNECTIONS=$CAP FLAGCAST_THREADS=2

gauges() {
    curl -s "$GW/metrics" | awk '$1 ~ /^flagcast_gateway_connections\{transport=/ { s += $2 } END { print s + 0 }'
}
round=0
while [ $round -lt 5 ]; do
    round=$((round + 1))
    python3 "$GW_DIR/cap_burst.py" 127.0.0.1 "$GW_PORT" 40 1.5 >"$TMP/burst.out" 2>"$TMP/burst.err" &
    BP=$!; track $BP
    max=0; i=0
    while kill -0 $BP 2>/dev/null && [ $i -lt 100 ]; do
        g=$(gauges); [ "$g" -gt "$max" ] && max=$g
        i=$((i + 1)); sleep 0.05
    done
    wait $BP || fail "cap_burst failed: $(cat "$TMP/burst.err")"
    read _ adm _ ref _ oth <"$TMP/burst.out"
    [ "$adm" -le $CAP ] || fail "round $round: $adm streams admitted together, cap $CAP"
    [ "$adm" -ge 1 ] || fail "round $round: nothing admitted: $(cat "$TMP/burst.out")"
    [ "$max" -le $CAP ] || fail "round $round: connection gauge reached $max, cap $CAP"
    wait_until 10 "round $round reaped" sh -c "[ \"\$(curl -s $GW/metrics | awk '\$1 ~ /^flagcast_gateway_connections\\{transport=/ { s += \$2 } END { print s + 0 }')\" = 0 ]"
    echo "round $round: admitted $adm refused $ref other $oth, gauge max $max"
done
ok "cap $CAP never exceeded by concurrent SSE+WS bursts on 2 threads"
