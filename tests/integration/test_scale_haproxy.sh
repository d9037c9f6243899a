#!/bin/sh
# The compose topology, natively: redis-server, the publisher, three
# gateways on their own ports and Debian's haproxy running deploy/haproxy.cfg
# as shipped, except for what only Docker provides (the bind port, the three
# servers instead of the DNS server-template, no resolvers section; the test
# checks that nothing else differs). Reconnecting clients (SSE honouring
# retry: and sending Last-Event-ID, WS resubscribing with "since") connect
# through haproxy; they must spread over all three gateways and all receive
# every message. Then one gateway gets SIGTERM: its /readyz turns 503 before
# it closes anyone, haproxy takes it out, its clients are closed spread over
# the drain window (WS close 1001, SSE a jittered retry: then end), all of
# them are on the other two within the window, nobody misses a message
# (history fills what was published while they moved), and the process
# exits 0 on its own because it is empty, before its deadline.
. "$(dirname "$0")/harness.sh"

command -v haproxy >/dev/null || fail "haproxy is required (scripts/deps.sh installs it)"
node_deps
NSSE=${SCALE_SSE:-12}
NWS=${SCALE_WS:-12}
TOTAL=$((NSSE + NWS))
DELAY=2        # FLAGCAST_DRAIN_DELAY default, what deploy/haproxy.cfg is tuned for
WINDOW=4       # FLAGCAST_DRAIN_SECONDS
RETRY=500      # FLAGCAST_SSE_RETRY: jittered hints in [250, 750] ms
CH=chat.room1

start_redis
start_publisher

for n in 1 2 3; do   # GWPORT_n, GWPID_n, log gw-n.log
    start_gw $n FLAGCAST_THREADS=1 FLAGCAST_SSE_RETRY=$RETRY FLAGCAST_DRAIN_SECONDS=$WINDOW
done

# ---- haproxy with the shipped config, ports substituted
LB_PORT=$(free_port)
awk -v lb="$LB_PORT" -v p1="$GWPORT_1" -v p2="$GWPORT_2" -v p3="$GWPORT_3" '
    /^resolvers / { skip = 1; next }
    skip && /^[^ \t#]/ { skip = 0 }
    skip { next }
    /^[ \t]*bind :8080$/ { sub(/:8080$/, "127.0.0.1:" lb) }
    /^[ \t]*server-template / {
        printf "    server gw1 127.0.0.1:%s\n    server gw2 127.0.0.1:%s\n    server gw3 127.0.0.1:%s\n", p1, p2, p3
        next
    }
    { print }' "$ROOT/deploy/haproxy.cfg" >"$TMP/haproxy.cfg"
# nothing but the bind line, the servers and the resolvers section differs
diff "$ROOT/deploy/haproxy.cfg" "$TMP/haproxy.cfg" | grep '^[<>]' |
    grep -Ev '^< resolvers docker$|^<     (nameserver|parse-resolv-conf|accepted_payload_size|hold)( |$)|^< $' |
    grep -Ev '^< +bind :8080$|^> +bind 127\.0\.0\.1:[0-9]+$' |
    grep -Ev '^< +server-template gw [0-9]+ gateway:8080 |^> +server gw[123] 127\.0\.0\.1:[0-9]+$' \
    >"$TMP/cfg.diff"
[ -s "$TMP/cfg.diff" ] && fail "generated haproxy.cfg differs from deploy/haproxy.cfg beyond the ports: $(cat "$TMP/cfg.diff")"
grep -q "^ *server gw3 127.0.0.1:$GWPORT_3\$" "$TMP/haproxy.cfg" || fail "server lines not substituted"
haproxy -c -f "$TMP/haproxy.cfg" >"$TMP/haproxy-check.log" 2>&1 || fail "haproxy -c: $(cat "$TMP/haproxy-check.log")"
haproxy -db -f "$TMP/haproxy.cfg" >"$TMP/haproxy.log" 2>&1 &
HAPROXY_PID=$!; track $HAPROXY_PID
LB=http://127.0.0.1:$LB_PORT
wait_until 10 "haproxy up" is_code 200 "$LB/lb-health"
wait_until 10 "a gateway through haproxy" is_code 200 "$LB/readyz"
ok "haproxy runs deploy/haproxy.cfg (ports substituted) in front of 3 gateways"

# gw_conns N: open streams on gateway N (SSE + WS gauges), "x" if it is gone.
gw_conns() {
    eval "_p=\$GWPORT_$1"
    curl -sf "http://127.0.0.1:$_p/metrics" 2>/dev/null |
        awk '$1 ~ /^flagcast_gateway_connections\{/ { n += $2; f = 1 } END { print f ? n : "x" }'
}
gw_metric() {
    eval "_p=\$GWPORT_$1"
    curl -sf "http://127.0.0.1:$_p/metrics" | awk -v n="$2" '$1 == n { v = $2 } END { print v + 0 }'
}
spread_ok() {
    _a=$(gw_conns 1); _b=$(gw_conns 2); _c=$(gw_conns 3)
    [ "$_a" -gt 0 ] && [ "$_b" -gt 0 ] && [ "$_c" -gt 0 ] && [ $((_a + _b + _c)) -eq "$TOTAL" ]
} 2>/dev/null
# opened: clients whose stream is up (one "open" each since the last close)
C="$TMP/clients.out"
all_open() {
    [ "$(awk '$3 == "open" { o[$2] = 1 } $3 == "end" || $3 == "close" { delete o[$2] }
              END { n = 0; for (k in o) n++; print n }' "$C")" -eq "$TOTAL" ]
}

# ---- N clients through haproxy, spread over all gateways
node "$GW_DIR/scale_clients.js" "$LB" "$NSSE" "$NWS" "$CH" >"$C" 2>"$TMP/clients.err" </dev/null &
track $!
wait_until 20 "$TOTAL clients open through haproxy" all_open
wait_until 10 "clients on every gateway (sum $TOTAL)" spread_ok
ok "$TOTAL clients through haproxy: gw1=$(gw_conns 1) gw2=$(gw_conns 2) gw3=$(gw_conns 3)"

# ---- a steady stream of messages {"seq":N} from here to the end
publish_loop() {
    i=1
    while [ ! -f "$TMP/stop" ]; do
        if curl -sf -o /dev/null -X POST -H "Authorization: Bearer $TOKEN" \
               -H 'Content-Type: application/json' --data "{\"data\":{\"seq\":$i}}" \
               "$PUB/api/v1/channels/$CH/messages"; then
            echo "$i" >"$TMP/seq.tmp" && mv "$TMP/seq.tmp" "$TMP/seq"
            i=$((i + 1))
        else
            echo "publish $i failed" >>"$TMP/publish.err"
        fi
        sleep 0.2
    done
}
publish_loop &
PUBLOOP_PID=$!; track $PUBLOOP_PID
published() { [ -f "$TMP/seq" ] && [ "$(cat "$TMP/seq")" -ge "$1" ]; }
# all_have M: every client received every seq 1..M
all_have() {
    [ "$(awk -v m="$1" '$3 == "msg" && $4 <= m { if (!(($2, $4) in s)) { s[$2, $4] = 1; n[$2]++ } }
         END { k = 0; for (c in n) if (n[c] == m) k++; print k }' "$C")" -eq "$TOTAL" ]
}
wait_until 10 "3 messages published" published 3
wait_until 10 "every client has messages 1-3" all_have 3
ok "every client receives every message through haproxy"

# ---- SIGTERM gateway 1
BEFORE=$(gw_conns 1)
T0=$(date +%s%3N)
kill -TERM "$GWPID_1"
wait_until 5 "gw1 /readyz 503 after SIGTERM" is_code 503 "http://127.0.0.1:$GWPORT_1/readyz"
DRAINED=$(( $(gw_metric 1 'flagcast_gateway_drained_total{transport="sse"}') + \
            $(gw_metric 1 'flagcast_gateway_drained_total{transport="ws"}') ))
NOW_CONNS=$(gw_conns 1)
[ "$DRAINED" = 0 ] && [ "$NOW_CONNS" = "$BEFORE" ] ||
    fail "gw1 closed clients before /readyz was 503 (drained=$DRAINED, connections $NOW_CONNS of $BEFORE)"
[ "$(gw_metric 1 flagcast_gateway_draining)" = 1 ] || fail "flagcast_gateway_draining is not 1"
is_code 200 "http://127.0.0.1:$GWPORT_1/healthz" || fail "gw1 not alive while draining"
ok "gw1 /readyz 503 while it still holds all $BEFORE clients"
haproxy_down() { grep -q 'gw1 is DOWN' "$TMP/haproxy.log"; }
wait_until $((DELAY + 3)) "haproxy marks gw1 down" haproxy_down
ok "haproxy took gw1 out of rotation"

others_have_all() {
    _b=$(gw_conns 2); _c=$(gw_conns 3)
    [ $((_b + _c)) -eq "$TOTAL" ]
} 2>/dev/null
wait_until $((DELAY + WINDOW + 10)) "all clients on gw2+gw3" others_have_all
T1=$(date +%s%3N)
gw1_exited() { ! kill -0 "$GWPID_1" 2>/dev/null; }
wait_until $((DELAY + WINDOW + 10)) "gw1 exit" gw1_exited
wait "$GWPID_1"; rc=$?
T2=$(date +%s%3N)
[ "$rc" = 0 ] || fail "gw1 exited with $rc"
grep -q 'msg="gateway drained" how=empty' "$TMP/gw-1.log" ||
    fail "gw1 did not stop because it was empty: $(grep 'gateway drained' "$TMP/gw-1.log")"
ok "gw1's $BEFORE clients on gw2+gw3 after $((T1 - T0)) ms (delay ${DELAY}s + window ${WINDOW}s); gw1 exited 0, empty, after $((T2 - T0)) ms"

# ---- how they were closed: after the delay, spread out, with the right hints
awk -v t0="$T0" '$1 >= t0 && ($3 == "end" || $3 == "close")' "$C" >"$TMP/closes"
# the hint each drained SSE client got last before its stream ended
awk -v t0="$T0" '$3 == "retry" { r[$2] = $0 } $1 >= t0 && $3 == "end" && ($2 in r) { print r[$2] }' "$C" >"$TMP/retries"
n=$(wc -l <"$TMP/closes")
[ "$n" -eq "$BEFORE" ] || fail "$n clients were closed after SIGTERM, gw1 held $BEFORE: $(cat "$TMP/closes")"
grep ' close ' "$TMP/closes" | grep -v ' close 1001$' && fail "a WS client was not closed with 1001"
first=$(head -1 "$TMP/closes" | cut -d' ' -f1)
last=$(tail -1 "$TMP/closes" | cut -d' ' -f1)
[ $((first - T0)) -ge $((DELAY * 1000 - 100)) ] ||
    fail "first client closed $((first - T0)) ms after SIGTERM, before the ${DELAY}s drain delay"
# closes are paced over window - 1.5 * retry (3.25 s) at i/n: at least half of it apart
[ "$BEFORE" -lt 3 ] || [ $((last - first)) -ge 1400 ] ||
    fail "gw1's $BEFORE closes came within $((last - first)) ms: not spread over the window"
nsse=$(grep -c ' end$' "$TMP/closes")
[ "$(awk -v t0="$T0" '$1 >= t0' "$TMP/retries" | wc -l)" -eq "$nsse" ] ||
    fail "an SSE client closed without a retry: hint from the drain: $(cat "$TMP/retries")"
awk -v lo=$((RETRY / 2)) -v hi=$((RETRY * 3 / 2)) '$4 < lo || $4 > hi { bad = 1 } END { exit bad }' "$TMP/retries" ||
    fail "retry hints outside [$((RETRY / 2)), $((RETRY * 3 / 2))]: $(cut -d' ' -f4 "$TMP/retries" | tr '\n' ' ')"
[ "$nsse" -lt 3 ] || [ "$(cut -d' ' -f4 "$TMP/retries" | sort -u | wc -l)" -gt 1 ] ||
    fail "retry hints are not jittered: $(cut -d' ' -f4 "$TMP/retries" | tr '\n' ' ')"
grep -q ' status ' "$C" && fail "a client got a non-200 answer through haproxy: $(grep ' status ' "$C" | head -3)"
ok "closes began $((first - T0)) ms after SIGTERM, spread over $((last - first)) ms; $nsse SSE retry hints $(cut -d' ' -f4 "$TMP/retries" | sort -n | tr '\n' ' ')"

# ---- nobody lost a message: everything published before, during and after
M0=$(cat "$TMP/seq")
wait_until 10 "two more messages after the move" published $((M0 + 2))
touch "$TMP/stop"
wait "$PUBLOOP_PID"
M=$(cat "$TMP/seq")
[ -s "$TMP/publish.err" ] && fail "publishing failed: $(cat "$TMP/publish.err")"
wait_until 15 "every client has messages 1-$M" all_have "$M"
dups=$(awk '$3 == "msg" { if (($2, $4) in s) d++; s[$2, $4] = 1 } END { print d + 0 }' "$C")
ok "all $TOTAL clients received all $M messages (published before, during and after the drain; $dups duplicates)"
grep -q 'how=empty' "$TMP/gw-1.log" && grep 'gateway drained' "$TMP/gw-1.log" | sed 's/^/    /'
exit 0
