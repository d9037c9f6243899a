#!/bin/sh
# WebSocket through npm's ws against the real publisher and gateway:
# connected, subscribe → subscribed + snapshot, the selected events in order,
# messages, ping → pong, error {code, message} for bad input while the
# connection stays up, the frame size limit, close after repeated abuse,
# the msgpack subprotocol, and WS filters given in the upgrade URL.
. "$(dirname "$0")/harness.sh"

node_deps
start_redis
start_publisher
api POST /api/v1/flags '{"key":"k1","enabled":true,"tags":["web"]}'
api POST /api/v1/flags '{"key":"k2","enabled":true,"tags":["mobile"]}'
start_gateway FLAGCAST_WS_MAX_FRAME=1024 FLAGCAST_WS_MAX_ERRORS=5

# ws_start NAME PATH [PROTOCOL]: a client fed through a fifo ($TMP/NAME.in).
ws_start() {
    mkfifo "$TMP/$1.in"
    node "$GW_DIR/ws_client.js" "$WSURL$2" ${3:-} <"$TMP/$1.in" >"$TMP/$1.out" 2>"$TMP/$1.err" &
    track $!
    eval "WS_PID_$1=$!"
    # keep the fifo open for writing on a numbered descriptor
    case $1 in
        J) exec 4>"$TMP/$1.in" ;;
        M) exec 5>"$TMP/$1.in" ;;
        X) exec 6>"$TMP/$1.in" ;;
        Q) exec 7>"$TMP/$1.in" ;;
    esac
}
ws_count() { grep -c -- "$2" "$TMP/$1.out"; }
ws_count_is() { [ "$(ws_count "$1" "$2")" = "$3" ]; }

# ---- JSON client: subscribe to k1 and chat.room1
ws_start J /ws flagcast.json
wait_until 10 "J connected" ws_has J '^connected'
echo '{"type":"subscribe","flags":["k1"],"channels":["chat.room1"]}' >&4
wait_until 5 "J snapshot" ws_has J '^snapshot'
wait_until 5 "SUBSCRIBE chat.room1" numsub_is chat.room1 1
echo '{"type":"ping","id":7}' >&4
wait_until 5 "J pong" ws_has J '^pong 7'
ok "connected, subscribed, snapshot, pong"

# ---- bad input: errors, connection stays up
echo 'RAW {not json' >&4
echo '{"type":"dance"}' >&4
echo '{"type":"subscribe","channels":["bad name"]}' >&4
echo 'BIG 2000' >&4
wait_until 5 "J four errors" ws_count_is J '^error' 4
ws_has J '^error bad_json' || fail "no bad_json error"
ws_has J '^error unknown_type' || fail "no unknown_type error"
ws_has J '^error bad_channel' || fail "no bad_channel error"
ws_has J '^error too_large' || fail "no too_large error"
ws_has J '^close' && fail "J was closed after 4 errors"
ok "error {code,message} for bad input, connection kept"

# ---- msgpack client with subscribeAll
ws_start M /api/v1/realtime/ws flagcast.msgpack
wait_until 10 "M connected" ws_has M '^connected'
echo '{"type":"subscribe","subscribeAll":true}' >&5
wait_until 5 "M snapshot" ws_has M '^snapshot'
echo '{"type":"subscribe","channels":["role:admin"]}' >&5
wait_until 5 "M forbidden" ws_has M '^error forbidden'

# ---- filters in the upgrade URL (like SSE's)
ws_start Q "/ws?tags=mobile"
wait_until 10 "Q snapshot" ws_has Q '^snapshot'

# ---- events
api PUT /api/v1/flags/k1/enabled '{"enabled":false}'
api PUT /api/v1/flags/k2/enabled '{"enabled":false}'
api POST /api/v1/channels/chat.room1/messages '{"data":{"n":1}}'
wait_until 10 "J message" ws_has J '^message chat.room1 1'
wait_until 10 "M k2 toggled" ws_has M '^flag.toggled flags k2'
wait_until 10 "Q k2 toggled" ws_has Q '^flag.toggled flags k2'

# ---- unsubscribe from the channel: no more messages, Redis UNSUBSCRIBE
echo '{"type":"unsubscribe","channels":["chat.room1"]}' >&4
wait_until 5 "J resubscribed state" ws_count_is J '^subscribed' 2
wait_until 5 "UNSUBSCRIBE chat.room1" numsub_is chat.room1 0
api POST /api/v1/channels/chat.room1/messages '{"data":{"n":2}}'
api PUT /api/v1/flags/k1/enabled '{"enabled":true}'
wait_until 10 "J k1 toggled back" ws_has J '^flag.toggled flags k1 5 enabled=true'

grep -v '^open' "$TMP/J.out" >"$TMP/J.got"
expect J "$TMP/J.got" 'connected
subscribed channels=flags,chat.room1 all=false
snapshot k1
pong 7
error bad_json
error unknown_type
error bad_channel
error too_large
flag.toggled flags k1 3 enabled=false
message chat.room1 1 {"n":1}
subscribed channels=flags all=false
flag.toggled flags k1 5 enabled=true'
ok "JSON client: exactly its events, in order"

wait_until 10 "M k1 toggled back" ws_has M '^flag.toggled flags k1 5'
grep -v '^open' "$TMP/M.out" >"$TMP/M.got"
expect M "$TMP/M.got" 'connected
subscribed channels=flags all=true
snapshot k1,k2
error forbidden
flag.toggled flags k1 3 enabled=false
flag.toggled flags k2 4 enabled=false
flag.toggled flags k1 5 enabled=true'
ok "msgpack client: binary frames, same objects"

grep -v '^open' "$TMP/Q.out" >"$TMP/Q.got"
expect Q "$TMP/Q.got" 'connected
subscribed channels=flags all=false
snapshot k2
flag.toggled flags k2 4 enabled=false'
ok "filters in the upgrade URL"

# ---- repeated abuse closes the connection (policy violation)
ws_start X /ws
wait_until 10 "X connected" ws_has X '^connected'
for i in 1 2 3 4 5 6; do echo 'RAW nope' >&6; done
wait_until 5 "X closed" ws_has X '^close'
ws_has X '^close 1008' || fail "abusive client closed with $(grep '^close' "$TMP/X.out")"
ok "abusive client closed with 1008"

# ---- a WS upgrade on another path is refused; plain GET on /ws is 426
code=$(http_code "$GW/ws")
[ "$code" = 426 ] || fail "GET /ws answered $code"
node -e '
const W=require(process.argv[1]); const w=new W(process.argv[2]);
w.on("open",()=>{console.log("opened");process.exit(1)});
w.on("error",()=>process.exit(0)); w.on("unexpected-response",()=>process.exit(0));
' "$GW_DIR/node_modules/ws" "$WSURL/nope" || fail "WS upgrade on /nope was accepted"
ok "WS only on its paths"

metric_ge flagcast_gateway_ws_client_errors_total 9 || fail "ws error metric: $(metric flagcast_gateway_ws_client_errors_total)"
kill -0 "$GW_PID" || fail "gateway died"
exit 0
