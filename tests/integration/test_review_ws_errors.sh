#!/bin/sh
# FLAGCAST_WS_MAX_ERRORS above 255 is honoured: a client is closed (1008)
# at exactly the configured count of bad messages. The per-connection
# counter was a uint8_t, so with a limit of 256 or more it wrapped to 0 and
# an abusive client was never closed.
. "$(dirname "$0")/harness.sh"

node_deps
start_redis
start_gateway FLAGCAST_WS_MAX_ERRORS=300

mkfifo "$TMP/J.in"
node "$GW_DIR/ws_client.js" "$WSURL/ws" flagcast.json <"$TMP/J.in" >"$TMP/J.out" 2>"$TMP/J.err" &
track $!
exec 4>"$TMP/J.in"
ws_count_is() { [ "$(grep -c -- "$2" "$TMP/$1.out")" = "$3" ]; }
wait_until 10 "J connected" ws_has J '^connected'

# 299 bad messages in batches the client reads back: the connection stays
sent=0
while [ $sent -lt 299 ]; do
    n=0
    while [ $n -lt 50 ] && [ $sent -lt 299 ]; do
        echo 'RAW {not json' >&4
        n=$((n + 1)); sent=$((sent + 1))
    done
    wait_until 10 "$sent errors answered" ws_count_is J '^error bad_json' $sent
done
echo '{"type":"ping","id":1}' >&4
wait_until 10 "pong after 299 errors" ws_has J '^pong 1'
ws_has J '^close' && fail "closed before FLAGCAST_WS_MAX_ERRORS: $(tail -3 "$TMP/J.out" | tr '\n' ' ')"
ok "299 bad messages answered, connection kept (limit 300)"

# the 300th closes it with 1008 (policy violation)
echo 'RAW {not json' >&4
wait_until 10 "closed at the 300th bad message" ws_has J '^close 1008'
ok "closed 1008 at FLAGCAST_WS_MAX_ERRORS=300"

exec 4>&-
kill "$GW_PID" 2>/dev/null
wait_until 10 "gateway stopped" sh -c "! kill -0 $GW_PID"
if grep -q 'ERROR: AddressSanitizer\|runtime error:\|LeakSanitizer' "$TMP/gateway.log"; then
    fail "sanitizer report in the gateway log"
fi
echo "PASS test_review_ws_errors"
