#!/bin/sh
# Sentinel discovery (issue 14), the cases a failover test does not reach:
#  (a) the first sentinel of the URL is down: the next one is asked; the
#      sentinels require a password (FLAGCAST_REDIS_SENTINEL_PASSWORD) and
#      the data nodes another (the URL's);
#  (b) a wrong sentinel password: never ready, the AUTH failure logged;
#  (c) a master name no sentinel knows: never ready, said so;
#  (d) a sentinel that names a replica (a fake one, in Python, as a sentinel
#      that has not seen a failover yet would): the node is refused on its
#      ROLE, and retried with backoff until it is promoted (REPLICAOF NO ONE),
#      then the publisher becomes ready and writes there.
. "$(dirname "$0")/harness.sh"
. "$(dirname "$0")/gw/recovery.sh"

M_PORT=$(free_port); R_PORT=$(free_port); S_PORT=$(free_port); DEAD=$(free_port)
FAKE_PORT=$(free_port)
mkdir -p "$TMP/m" "$TMP/r" "$TMP/s"
redis_exec "$M_PORT" "$TMP/m" --requirepass datapw >"$TMP/m.log" 2>&1 &
track $!
redis_exec "$R_PORT" "$TMP/r" --requirepass datapw --masterauth datapw \
    --replicaof 127.0.0.1 "$M_PORT" >"$TMP/r.log" 2>&1 &
track $!
cat >"$TMP/s/sentinel.conf" <<EOF
port $S_PORT
bind 127.0.0.1
dir $TMP/s
requirepass sentpw
sentinel monitor mymaster 127.0.0.1 $M_PORT 1
sentinel auth-pass mymaster datapw
sentinel down-after-milliseconds mymaster 5000
EOF
redis-server "$TMP/s/sentinel.conf" --sentinel >"$TMP/s.log" 2>&1 &
track $!
wait_until 10 "master" redis-cli -p "$M_PORT" -a datapw --no-auth-warning ping
wait_until 20 "sentinel knows the master" sh -c \
    "redis-cli -p $S_PORT -a sentpw --no-auth-warning sentinel get-master-addr-by-name mymaster | grep -q '^$M_PORT\$'"

# ---- (a) -------------------------------------------------------------------
REDIS_URL="redis+sentinel://:datapw@127.0.0.1:$DEAD,127.0.0.1:$S_PORT/mymaster"
start_gw A FLAGCAST_REDIS_SENTINEL_PASSWORD=sentpw
grep -q "conn=subscriber addr=127.0.0.1:$M_PORT db=0 master=mymaster" "$TMP/gw-A.log" ||
    fail "(a) the gateway is not on the master"
ok "(a) first sentinel down, passwords for sentinels and data nodes: gateway ready on the master"

# ---- (b) -------------------------------------------------------------------
start_gw_unready() {   # NAME URL [VAR=value...]: a gateway that must stay unready
    _n=$1; _u=$2; shift 2
    _p=$(free_port)
    env FLAGCAST_LISTEN=127.0.0.1:$_p FLAGCAST_REDIS_URL=$_u "$@" \
        "$BIN/flagcast-gateway" >"$TMP/gw-$_n.log" 2>&1 &
    track $!
    eval "GWPORT_$_n=$_p; GWPID_$_n=$!"
    wait_until 10 "gateway $_n answers" is_code 503 "http://127.0.0.1:$_p/readyz"
}
start_gw_unready B "redis+sentinel://:datapw@127.0.0.1:$S_PORT/mymaster" \
    FLAGCAST_REDIS_SENTINEL_PASSWORD=wrong
wait_until 10 "(b) AUTH failure logged" file_has "$TMP/gw-B.log" 'msg="sentinel AUTH failed"'
sleep 1
is_code 503 "http://127.0.0.1:$GWPORT_B/readyz" || fail "(b) ready with a wrong sentinel password"
ok "(b) wrong sentinel password: not ready, logged"

# ---- (c) -------------------------------------------------------------------
start_gw_unready C "redis+sentinel://:datapw@127.0.0.1:$S_PORT/nosuch" \
    FLAGCAST_REDIS_SENTINEL_PASSWORD=sentpw
wait_until 10 "(c) unknown name logged" file_has "$TMP/gw-C.log" 'does not know this master name'
ok "(c) unknown master name: not ready, logged"

# ---- (d) -------------------------------------------------------------------
# A fake sentinel: every SENTINEL get-master-addr-by-name names the replica.
cat >"$TMP/fake_sentinel.py" <<'PY'
import socket, sys, threading
port, target = int(sys.argv[1]), sys.argv[2].encode()
def serve(c):   # each read is taken as one command (rconn sends one)
    while c.recv(4096):
        c.sendall(b"*2\r\n$9\r\n127.0.0.1\r\n$%d\r\n%s\r\n" % (len(target), target))
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", port)); s.listen(16)
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
PY
python3 "$TMP/fake_sentinel.py" "$FAKE_PORT" "$R_PORT" >"$TMP/fake.log" 2>&1 &
track $!
wait_until 10 "fake sentinel" python3 -c "import socket; socket.create_connection(('127.0.0.1', $FAKE_PORT))"
REDIS_URL="redis+sentinel://:datapw@127.0.0.1:$FAKE_PORT/mymaster"
PUB_PORT=$(free_port)
FLAGCAST_LISTEN=127.0.0.1:$PUB_PORT FLAGCAST_REDIS_URL=$REDIS_URL FLAGCAST_REDIS_MIN_REPLICAS=0 \
    FLAGCAST_ADMIN_TOKENS=$TOKEN "$BIN/flagcast-publisher" >"$TMP/publisher.log" 2>&1 &
PUB_PID=$!; track $PUB_PID
PUB=http://127.0.0.1:$PUB_PORT
wait_until 10 "(d) replica refused" file_has "$TMP/publisher.log" 'msg="redis node is not a master, refused"'
grep 'not a master, refused' "$TMP/publisher.log" | head -1 | grep -q "addr=127.0.0.1:$R_PORT role=slave" ||
    fail "(d) refusal does not name the replica: $(grep 'not a master' "$TMP/publisher.log" | head -1)"
sleep 1
is_code 503 "$PUB/readyz" || fail "(d) publisher ready on a replica"
N1=$(grep -c 'not a master, refused' "$TMP/publisher.log")
[ "$N1" -ge 2 ] || fail "(d) the replica was not retried ($N1 refusals)"
redis-cli -p "$R_PORT" -a datapw --no-auth-warning replicaof no one >/dev/null
wait_until 15 "(d) publisher ready once the node is a master" is_code 200 "$PUB/readyz"
publish chat 1
[ "$(redis-cli -p "$R_PORT" -a datapw --no-auth-warning hget flagcast:meta:chat offset)" = 1 ] ||
    fail "(d) the write is not on the promoted node"
ok "(d) a replica named by a sentinel: refused $N1 times (ROLE slave), ready once promoted"
stop_gws A B C
exit 0
