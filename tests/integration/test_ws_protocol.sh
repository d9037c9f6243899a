#!/bin/sh
# RFC 6455 framing at the WS edge (issue 9h): a masked client frame is served
# as always. An unmasked client frame should be closed with 1002; lws 4.1.6
# does not check it and the gateway cannot see the mask bit through lws's
# public API (docs/ARCHITECTURE.md, "Unmasked client frames"), so that half
# is reported as a known gap unless FLAGCAST_TEST_STRICT_MASK=1 makes it a
# failure (for when it is fixed).
. "$(dirname "$0")/harness.sh"

node_deps
start_redis
start_publisher
start_gateway

python3 "$GW_DIR/ws_unmasked.py" 127.0.0.1 "$GW_PORT" 1 >"$TMP/m.out" 2>"$TMP/m.err" ||
    fail "masked client: $(cat "$TMP/m.err")"
grep -q '"type":"pong","id":7' "$TMP/m.out" || fail "masked ping not answered: $(cat "$TMP/m.out")"
ok "masked client frame served (pong)"

python3 "$GW_DIR/ws_unmasked.py" 127.0.0.1 "$GW_PORT" 0 >"$TMP/u.out" 2>"$TMP/u.err" ||
    fail "unmasked client: $(cat "$TMP/u.err")"
# a close frame (0x88) whose code is 1002 (0x03 0xea)
if grep -q "x88.*x03\\\\xea" "$TMP/u.out"; then
    ok "unmasked client frame closed with 1002"
elif [ "${FLAGCAST_TEST_STRICT_MASK:-0}" = 1 ]; then
    fail "unmasked client frame not closed with 1002: $(cat "$TMP/u.out")"
else
    echo "KNOWN GAP (issue 9h): unmasked client frame accepted: $(cat "$TMP/u.out")"
fi
ok "WS framing checks"
