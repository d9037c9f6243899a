#!/bin/sh
# Sentinel failover (issue 14): a master, two replicas and three sentinels
# on private loopback ports; the publisher and a gateway are given only
# redis+sentinel://S1,S2,S3/mymaster. An SSE and a WS client follow channel
# chat. The master is killed with kill -9; the sentinels promote a replica;
# rconn follows (+switch-master, or rediscovery on reconnect) and every
# client gets every acknowledged message once, in order, with none lost:
# the publisher answered 2xx only after WAIT 1 (FLAGCAST_REDIS_MIN_REPLICAS
# defaults to 1 under Sentinel), so each acknowledged write was on a replica
# when the master died. Prints the recovery times: kill → first publish
# acknowledged on the new master, and kill → that message at the clients.
# Then a stopped replica makes a write go unacknowledged: 503
# not_acknowledged within FLAGCAST_REDIS_WAIT_MS.
. "$(dirname "$0")/harness.sh"
. "$(dirname "$0")/gw/recovery.sh"

now_ms() { python3 -c 'import time; print(int(time.time() * 1000))'; }

# publish_w CHANNEL I: like publish (recovery.sh), but a 503 not_acknowledged
# is not retried: that change was applied and published (only its WAIT
# fell short, while the surviving replica resyncs with the new master), so
# it has an offset and clients get it. Counts them in NOTACKS.
NOTACKS=0
publish_w() {
    _end=$(( $(date +%s) + 60 ))
    while :; do
        _code=$(curl -s -m 5 -o "$TMP/pub.out" -w '%{http_code}' -X POST \
            -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
            --data "{\"data\":{\"m\":$2}}" "$PUB/api/v1/channels/$1/messages")
        case "$_code" in 2*) return 0 ;; esac
        if [ "$_code" = 503 ] && grep -q '"not_acknowledged"' "$TMP/pub.out"; then
            NOTACKS=$((NOTACKS + 1)); return 0
        fi
        [ "$(date +%s)" -ge "$_end" ] && fail "publishing $2 on $1: last answer $_code $(cat "$TMP/pub.out")"
        sleep 0.1
    done
}

node_deps
M_PORT=$(free_port); R1_PORT=$(free_port); R2_PORT=$(free_port)
for n in m r1 r2 s1 s2 s3; do mkdir -p "$TMP/$n"; done

redis_node() {   # NAME PORT [ARGS...]
    _n=$1; _p=$2; shift 2
    redis_exec "$_p" "$TMP/$_n" --repl-diskless-sync-delay 0 "$@" >"$TMP/$_n.log" 2>&1 &
    track $!
    eval "PID_$_n=$!"
    wait_until 10 "redis $_n on $_p" redis-cli -p "$_p" ping
}
redis_node m "$M_PORT"
redis_node r1 "$R1_PORT" --replicaof 127.0.0.1 "$M_PORT"
redis_node r2 "$R2_PORT" --replicaof 127.0.0.1 "$M_PORT"
# online: past the initial sync (only those answer WAIT)
online_replicas() {
    [ "$(redis-cli -p "$1" info replication | grep -c '^slave[0-9]*:.*state=online')" = "$2" ]
}
wait_until 30 "two replicas online" online_replicas "$M_PORT" 2

S_URLS=""
for n in s1 s2 s3; do
    p=$(free_port)
    cat >"$TMP/$n/sentinel.conf" <<EOF
port $p
bind 127.0.0.1
dir $TMP/$n
sentinel monitor mymaster 127.0.0.1 $M_PORT 2
sentinel down-after-milliseconds mymaster 1000
sentinel failover-timeout mymaster 2000
sentinel parallel-syncs mymaster 1
EOF
    redis-server "$TMP/$n/sentinel.conf" --sentinel >"$TMP/$n.log" 2>&1 &
    track $!
    eval "SPORT_$n=$p"
    S_URLS="$S_URLS${S_URLS:+,}127.0.0.1:$p"
done
sentinels_ready() {
    for _p in $SPORT_s1 $SPORT_s2 $SPORT_s3; do
        [ "$(redis-cli -p "$_p" sentinel replicas mymaster 2>/dev/null | grep -c '^name$')" = 2 ] || return 1
        [ "$(redis-cli -p "$_p" sentinel sentinels mymaster 2>/dev/null | grep -c '^name$')" = 2 ] || return 1
    done
}
wait_until 30 "sentinels see 2 replicas and each other" sentinels_ready

REDIS_URL="redis+sentinel://$S_URLS/mymaster"
REDIS_PORT=$M_PORT   # numsub_is asks the current master
start_publisher
grep -q 'redis_kind=redis+sentinel min_replicas=1' "$TMP/publisher.log" ||
    fail "publisher did not default to min_replicas=1 under Sentinel"
start_gw A
A=http://127.0.0.1:$GWPORT_A
sse_client s1 chat "$A"
ws_client_r w1 chat "ws://127.0.0.1:$GWPORT_A"
for c in s1 w1; do wait_until 20 "$c open" opened $c 1; done
wait_until 20 "gateway subscribed to chat on the master" numsub_is chat 1
grep -q "conn=subscriber addr=127.0.0.1:$M_PORT db=0 master=mymaster" "$TMP/gw-A.log" ||
    fail "the gateway's subscriber is not on the master the sentinels named"

i=1; while [ $i -le 10 ]; do publish_w chat $i; i=$((i + 1)); done
[ "$NOTACKS" = 0 ] || fail "$NOTACKS writes not acknowledged with both replicas online"
for c in s1 w1; do wait_until 20 "$c got 10" got $c chat 10; done

# ---- the failover -----------------------------------------------------------
T0=$(now_ms)
kill -9 "$PID_m"
publish_w chat 11          # retries (503) until the new master has it
T_PUB=$(( $(now_ms) - T0 ))
for c in s1 w1; do wait_until 30 "$c got 11" got $c chat 11; done
T_CLI=$(( $(now_ms) - T0 ))
NEW=$(redis-cli -p "$SPORT_s1" sentinel get-master-addr-by-name mymaster | sed -n 2p)
[ "$NEW" = "$R1_PORT" ] || [ "$NEW" = "$R2_PORT" ] || fail "new master port is '$NEW'"
REDIS_PORT=$NEW
T_SW=$(python3 - "$TMP/gw-A.log" "$T0" <<'PY'
import datetime, re, sys
for l in open(sys.argv[1]):
    if 'msg="sentinel: master switched"' in l:
        ts = re.search(r'ts=(\S+)Z', l).group(1)
        t = datetime.datetime.strptime(ts, '%Y-%m-%dT%H:%M:%S.%f').replace(tzinfo=datetime.timezone.utc)
        print(int(t.timestamp() * 1000) - int(sys.argv[2])); break
else:
    print('?')
PY
)
echo "recovery: kill -9 of the master -> +switch-master at the gateway ${T_SW} ms"
echo "recovery: kill -9 of the master -> first write accepted by the new master ${T_PUB} ms, -> delivered to both clients ${T_CLI} ms (down-after-milliseconds 1000)"
[ "$T_CLI" -lt 10000 ] || fail "recovery took ${T_CLI} ms (want < 10 s)"

i=12; while [ $i -le 30 ]; do publish_w chat $i; i=$((i + 1)); done
echo "writes answered 503 not_acknowledged while the other replica resynced: $NOTACKS"
for c in s1 w1; do wait_until 20 "$c got 30" got $c chat 30; done
for c in s1 w1; do check $c chat 30; done
wait_until 20 "gateway subscribed on the new master" numsub_is chat 1
grep -q "conn=subscriber addr=127.0.0.1:$NEW db=0 master=mymaster" "$TMP/gw-A.log" ||
    fail "the gateway's subscriber did not move to the new master :$NEW"
grep -q "conn=publisher addr=127.0.0.1:$NEW db=0 master=mymaster" "$TMP/publisher.log" ||
    fail "the publisher did not move to the new master :$NEW"
grep -q 'msg="sentinel: master switched"' "$TMP/gw-A.log" ||
    fail "the gateway did not see +switch-master"

# ---- a write no replica acknowledges: 503 not_acknowledged ------------------
if [ "$NEW" = "$R1_PORT" ]; then OTHER=r2; else OTHER=r1; fi
eval "OPID=\$PID_$OTHER"
wait_until 30 "the other replica follows the new master" online_replicas "$NEW" 1
kill -STOP "$OPID"
code=$(curl -s -m 10 -o "$TMP/notack.out" -w '%{http_code}' -X POST \
    -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    --data '{"data":{"m":1}}' "$PUB/api/v1/channels/other/messages")
kill -CONT "$OPID"
[ "$code" = 503 ] || fail "an unreplicated write answered $code: $(cat "$TMP/notack.out")"
grep -q '"not_acknowledged"' "$TMP/notack.out" || fail "503 body: $(cat "$TMP/notack.out")"
grep -q 'not acknowledged' "$TMP/notack.out" || fail "503 body: $(cat "$TMP/notack.out")"
curl -s "$PUB/metrics" | grep -q '^flagcast_publisher_writes_not_acknowledged_total 1$' ||
    fail "not_acknowledged metric is not 1"
publish other 2   # acknowledged again once the replica runs
ok "unreplicated write: 503 not_acknowledged ($(cat "$TMP/notack.out"))"

kill -0 "$GWPID_A" || fail "gateway died"
kill -0 "$PUB_PID" || fail "publisher died"
stop_gws A
ok "Sentinel failover: both clients got 1..30 once, in order; recovery ${T_CLI} ms"
exit 0
