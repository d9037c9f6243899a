#!/bin/sh
# Identity on the gateway (issue 4) against real redis, publisher and
# gateway, with HS256 and RS256 JWTs made here (gw/mkjwt.js, openssl) and
# an API key:
#   - tokens from Authorization: Bearer, ?token= (an API key with '%', '+'
#     and '&' in it, sent percent-encoded: decoded exactly once) and the WS
#     `auth` message;
#   - every connection of a user gets its user:<id> and role:<r> inboxes:
#     a message to A reaches each of A's SSE and WS connections and none of
#     B's; a role message reaches exactly the role's members; a flag change
#     addressed to a user (`to`) reaches that user only and no mirror;
#   - another user's inbox or a role one lacks: SSE 403 with a JSON
#     message, WS `error forbidden`; the channels claim and
#     FLAGCAST_PRIVATE_CHANNELS;
#   - bad, expired, alg-none tokens: 401 (SSE and WS upgrade);
#   - a token whose exp passes: SSE closed, WS `error token_expired` and
#     close 4401;
#   - per-user A/B: the same user gets the same variant on re-send;
#   - FLAGCAST_AUTH=required: anonymous SSE 401, WS must send `auth` within
#     FLAGCAST_AUTH_TIMEOUT (else `error unauthorized` + close 4401), a bad
#     `auth` closes 4401, a good one subscribes the inboxes;
#   - no token text in the gateway's log (debug level) or metrics.
. "$(dirname "$0")/harness.sh"

node_deps
start_redis
start_publisher

SECRET=identgw-test-secret-0123456789abcdef
jwt() { node "$GW_DIR/mkjwt.js" "$SECRET" "$@"; }
TA=$(jwt '{"sub":"alice","roles":["beta"],"exp":"+3600"}')
TB=$(jwt '{"sub":"bob","exp":"+3600"}')
TD=$(jwt '{"sub":"dave","channels":["secret.*"],"exp":"+3600"}')
TX=$(jwt '{"sub":"alice","roles":["beta"],"exp":"-100"}')          # expired
TN=$(jwt '{"sub":"alice","roles":["beta"]}' none)                    # alg none
TS=$(node "$GW_DIR/mkjwt.js" wrong-secret-wrong-secret-wrong-secret '{"sub":"alice"}')
# RS256: a key pair from openssl; and the public key used as an HS256 secret
# (algorithm confusion), which must be refused.
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$TMP/rsa.pem" 2>/dev/null &&
    openssl pkey -in "$TMP/rsa.pem" -pubout -out "$TMP/rsa.pub" || fail "openssl key pair"
TR=$(node "$GW_DIR/mkjwt.js" "$TMP/rsa.pem" '{"sub":"frank","exp":"+3600"}' RS256)
TC=$(node "$GW_DIR/mkjwt.js" "$(cat "$TMP/rsa.pub")" '{"sub":"frank","exp":"+3600"}')
# An API key with characters a query string must encode: '%', '+', '&'.
APIKEY='c%41+k&y'
APIKEY_Q='c%2541%2Bk%26y'

start_gateway FLAGCAST_JWT_SECRET=$SECRET FLAGCAST_JWT_LEEWAY=0 FLAGCAST_LOG_LEVEL=debug \
    "FLAGCAST_API_KEYS=$APIKEY=carol:beta" FLAGCAST_PRIVATE_CHANNELS='secret.*' \
    FLAGCAST_JWT_PUBKEY="$TMP/rsa.pub" \
    FLAGCAST_DRAIN_DELAY=0 FLAGCAST_DRAIN_SECONDS=0
SSE=$GW/api/v1/realtime/sse

# sse_h NAME TOKEN QUERY: an SSE client sending the token as a Bearer header.
sse_h() {
    curl -sN -H "Authorization: Bearer $2" "$SSE$3" >"$TMP/$1.sse" 2>"$TMP/$1.curlerr" &
    track $!
    eval "SSE_PID_$1=$!"
}
# ws_start NAME FD QUERY [BEARER]: a WS client fed through a fifo on fd FD.
ws_start() {
    mkfifo "$TMP/$1.in"
    BEARER=${4:-} node "$GW_DIR/ident_ws.js" "$WSURL/ws$3" <"$TMP/$1.in" >"$TMP/$1.out" 2>"$TMP/$1.err" &
    track $!
    eval "exec $2>\"$TMP/$1.in\""
}
lines() { case $1 in W*) cat "$TMP/$1.out" ;; *) sse_lines "$1" ;; esac; }
has() { lines "$1" | grep -q -- "$2"; }
hasnt() { ! lines "$1" | grep -q -- "$2"; }
count_is() { [ "$(lines "$1" | grep -c -- "$2")" = "$3" ]; }
# post_msg JSON: POST /api/v1/messages (admin).
post_msg() { api POST /api/v1/messages "$1"; }

# ---- refusals: bad tokens 401, other inboxes 403
for t in garbage "$TX" "$TN" "$TS" "$TC"; do
    code=$(curl -s -o "$TMP/r.out" -w '%{http_code}' -H "Authorization: Bearer $t" "$SSE")
    [ "$code" = 401 ] || fail "bad token answered $code"
    grep -q '"error"' "$TMP/r.out" || fail "401 without a JSON error"
done
code=$(http_code "$SSE?token=garbage")
[ "$code" = 401 ] || fail "bad ?token= answered $code"
out=$(echo | timeout 10 node "$GW_DIR/ident_ws.js" "$WSURL/ws?token=garbage")
[ "$out" = "http 401" ] || fail "WS with a bad ?token=: $out"
out=$(echo | BEARER=$TX timeout 10 node "$GW_DIR/ident_ws.js" "$WSURL/ws")
[ "$out" = "http 401" ] || fail "WS with an expired bearer token: $out"
ok "bad, expired, alg-none, wrongly signed and HS256-with-the-RSA-key tokens: 401 (SSE, WS upgrade)"

code=$(curl -s -o "$TMP/f.out" -w '%{http_code}' -H "Authorization: Bearer $TB" "$SSE?channels=user:alice")
[ "$code" = 403 ] || fail "bob asking for user:alice answered $code"
grep -q '"error":"channels: user:alice: ' "$TMP/f.out" || fail "403 body: $(cat "$TMP/f.out")"
code=$(http_code -H "Authorization: Bearer $TB" "$SSE?channels=role:beta")
[ "$code" = 403 ] || fail "bob asking for role:beta answered $code"
code=$(http_code "$SSE?channels=user:alice")
[ "$code" = 403 ] || fail "anonymous asking for user:alice answered $code"
code=$(http_code "$SSE?channels=secret.plans")
[ "$code" = 403 ] || fail "anonymous asking for a private channel answered $code"
code=$(http_code -H "Authorization: Bearer $TD" "$SSE?channels=news")
[ "$code" = 403 ] || fail "a channels claim without news still read news: $code"
ok "another user's inbox, a role not held, private channels, outside the claim: 403"

# ---- the subscribers
sse_h SA1 "$TA" '?channels=news'          # alice, header
sse "SA2" "/api/v1/realtime/sse?token=$TA"   # alice, query
sse_h SB "$TB" ''                         # bob
sse "SC" "/api/v1/realtime/sse?token=$APIKEY_Q"  # carol (API key, role beta)
sse "SN" "/api/v1/realtime/sse"           # anonymous
sse_h SD "$TD" '?channels=secret.plans'   # dave: claim grants a private channel
sse_h SR "$TR" ''                         # frank, RS256
ws_start WA1 4 '' "$TA"                   # alice, header
ws_start WA2 5 ''                         # alice, auth message
ws_start WB 6 "?token=$TB&channels=news"  # bob, query token + URL filter
echo "{\"type\":\"auth\",\"token\":\"$TA\"}" >&5
for n in SA1 SA2 SB SC SN SD SR; do wait_until 10 "$n snapshot" has $n '^snapshot'; done
wait_until 10 "WA1 connected" has WA1 '^connected'
wait_until 10 "WA2 authenticated" has WA2 '^subscribed channels=role:beta,user:alice all=false'
wait_until 10 "WB subscribed" has WB '^subscribed channels=news,user:bob all=false'
for ch in user:alice user:bob user:carol user:frank role:beta secret.plans; do
    wait_until 10 "SUBSCRIBE $ch" numsub_is $ch 1
done
ok "SSE and WS connected with header, query and auth-message tokens; inboxes subscribed"

# ---- a message to alice reaches all of alice's connections, none of bob's
post_msg '{"users":["alice"],"data":{"to":"alice"}}'
for n in SA1 SA2 WA1 WA2; do wait_until 10 "$n gets alice's message" has $n '^message user:alice .*"to":"alice"'; done
post_msg '{"users":["bob"],"data":{"to":"bob"}}'   # a marker behind it
for n in SB WB; do wait_until 10 "$n gets bob's message" has $n '^message user:bob .*"to":"bob"'; done
for n in SB WB SC SN SD SR; do hasnt $n 'user:alice' || fail "$n got alice's message"; done
post_msg '{"users":["frank"],"data":{"to":"frank"}}'
wait_until 10 "SR (RS256) gets frank's message" has SR '^message user:frank .*"to":"frank"'
for n in SA1 SA2 WA1 WA2; do hasnt $n 'user:bob' || fail "$n got bob's message"; done
ok "a message to a user reaches every connection of that user and nobody else"

post_msg '{"roles":["beta"],"data":{"to":"beta"}}'
for n in SA1 SA2 WA1 WA2 SC; do wait_until 10 "$n gets the role message" has $n '^message role:beta .*"to":"beta"'; done
post_msg '{"users":["bob"],"data":{"marker":2}}'
for n in SB WB; do wait_until 10 "$n marker" has $n '"marker":2'; done
for n in SB WB SN SD; do hasnt $n 'role:beta' || fail "$n got the role message"; done
for n in SA1 SA2 WA1 WA2 SC; do count_is $n '^message role:beta' 1 || fail "$n: role message not exactly once"; done
ok "a role message reaches exactly the role's members"

# ---- a flag change addressed to bob: bob's inbox only, mirror untouched
api POST /api/v1/flags '{"key":"preview","enabled":true,"to":{"users":["bob"]}}'
for n in SB WB; do wait_until 10 "$n gets the targeted flag event" has $n '^flag.created user:bob preview'; done
post_msg '{"users":["alice"],"data":{"marker":3}}'
post_msg '{"users":["carol"],"data":{"marker":3}}'
wait_until 10 "SA1 marker" has SA1 '"marker":3'
wait_until 10 "SC marker" has SC '"marker":3'
for n in SA1 SA2 WA1 WA2 SC SN SD; do hasnt $n 'preview' || fail "$n got bob's flag event"; done
[ "$(metric flagcast_gateway_events_malformed_total)" = 0 ] || fail "targeted flag event counted as malformed"
curl -sN -m 2 "$SSE" >"$TMP/snap.sse" 2>/dev/null
node "$GW_DIR/sse_parse.js" "$TMP/snap.sse" | grep '^snapshot' | grep -q preview &&
    fail "a targeted flag change reached the mirror"
ok "a flag change addressed to a user reaches that user only, not the mirror"

# ---- WS: another user's inbox is refused; dave reads what the claim grants
echo '{"type":"subscribe","channels":["user:alice"]}' >&6
wait_until 10 "WB forbidden" has WB '^error forbidden'
has WB '^close' && fail "WB closed after a refused subscribe"
api POST /api/v1/channels/secret.plans/messages '{"data":"s1"}'
wait_until 10 "SD gets the private channel" has SD '^message secret.plans'
hasnt SN 'secret.plans' || fail "anonymous got a private channel"
ok "WS subscribe to another user's inbox: error forbidden; channels claim grants private channels"

# ---- per-user A/B: stable on re-send
AB='{"key":"exp-1","users":["alice","bob"],"variants":{"x":1,"y":2},"weights":{"x":1,"y":1}}'
post_msg "$AB"
post_msg "$AB"
wait_until 10 "WA1 two A/B messages" count_is WA1 '^message user:alice .*"variant"' 2
wait_until 10 "WB two A/B messages" count_is WB '^message user:bob .*"variant"' 2
for n in WA1 WB; do
    v=$(lines $n | grep '"variant"' | sed 's/.*"variant":"\([a-z]*\)".*/\1/' | sort -u | wc -l)
    [ "$v" = 1 ] || fail "$n got different variants on re-send: $(lines $n | grep variant)"
done
ok "per-user A/B: the same user gets the same variant on re-send"

# ---- the auth message over the msgpack subprotocol
mkfifo "$TMP/WM.in"
node "$GW_DIR/ws_client.js" "$WSURL/ws" flagcast.msgpack <"$TMP/WM.in" >"$TMP/WM.out" 2>"$TMP/WM.err" &
track $!
exec 8>"$TMP/WM.in"
echo "{\"type\":\"auth\",\"token\":\"$TA\"}" >&8
wait_until 10 "WM authenticated (msgpack)" has WM '^subscribed channels=role:beta,user:alice all=false'
post_msg '{"users":["alice"],"data":{"mp":1}}'
wait_until 10 "WM gets alice's message" has WM '^message user:alice .*"mp":1'
ok "auth message over flagcast.msgpack"

# ---- expiry: SSE closed, WS error token_expired + close 4401
TE=$(jwt '{"sub":"erin","exp":"+8"}')   # long enough to connect under load
sse_h SE "$TE" ''
ws_start WE 7 '' "$TE"
wait_until 10 "SE snapshot" has SE '^snapshot'
wait_until 10 "WE connected" has WE '^connected'
eval "sse_e_pid=\$SSE_PID_SE"
wait_until 20 "SSE closed at expiry" sh -c "! kill -0 $sse_e_pid"
wait_until 20 "WE token_expired" has WE '^error token_expired'
wait_until 20 "WE closed 4401" has WE '^close 4401'
metric_ge flagcast_gateway_auth_expired_total 2 || fail "auth_expired metric: $(metric flagcast_gateway_auth_expired_total)"
metric_ge flagcast_gateway_auth_refused_total 8 || fail "auth_refused metric: $(metric flagcast_gateway_auth_refused_total)"
ok "an expired token closes its SSE stream and its WS (error token_expired, 4401); counted"

# ---- no token text in the log or metrics
for t in "$TA" "$TB" "$TD" "$TX" "$TN" "$TS" "$TE" "$TR" "$TC" "$APIKEY" "$APIKEY_Q"; do
    grep -qF -- "$t" "$TMP/gateway.log" && fail "a token appears in the gateway log"
    curl -s "$GW/metrics" | grep -qF -- "$t" && fail "a token appears in the metrics"
done
grep -q 'token expired' "$TMP/gateway.log" || fail "expiry not logged (debug)"
ok "no token in the gateway log or metrics"

# ---- FLAGCAST_AUTH=required
exec 4>&- 5>&- 6>&- 7>&- 8>&-
GW1_PID=$GW_PID
mv "$TMP/gateway.log" "$TMP/gateway1.log"   # it keeps writing there
start_gateway FLAGCAST_AUTH=required FLAGCAST_AUTH_TIMEOUT=3 FLAGCAST_JWT_SECRET=$SECRET \
    FLAGCAST_DRAIN_DELAY=0 FLAGCAST_DRAIN_SECONDS=0
SSE=$GW/api/v1/realtime/sse
code=$(curl -s -o "$TMP/r.out" -w '%{http_code}' "$SSE")
[ "$code" = 401 ] || fail "anonymous SSE under auth=required answered $code"
grep -q '"error":"authentication required"' "$TMP/r.out" || fail "401 body: $(cat "$TMP/r.out")"
sse_h RA "$TA" ''
wait_until 10 "RA snapshot" has RA '^snapshot'
ok "auth=required: anonymous SSE 401, with a token 200"

ws_start WR1 4 ''                     # never authenticates
ws_start WR2 5 ''                     # a bad auth message
ws_start WR3 6 ''                     # authenticates late, after trying to subscribe
echo '{"type":"auth","token":"garbage"}' >&5
# sent at once (the client queues them until open): the subscribe is refused,
# the auth that follows it in order is taken, well within the 3 s deadline
echo '{"type":"subscribe","channels":["news"]}' >&6
echo "{\"type\":\"auth\",\"token\":\"$TA\"}" >&6
wait_until 10 "WR3 told to authenticate" has WR3 '^error unauthorized'
wait_until 10 "WR1 error unauthorized" has WR1 '^error unauthorized'
wait_until 10 "WR1 closed 4401" has WR1 '^close 4401'
wait_until 10 "WR2 closed 4401" has WR2 '^close 4401'
has WR2 '^error unauthorized' || fail "WR2 closed without an error"
wait_until 10 "WR3 authenticated" has WR3 '^subscribed channels=role:beta,user:alice all=false'
wait_until 10 "user:alice subscribed" numsub_is user:alice 2   # both gateways
post_msg '{"users":["alice"],"data":{"r":1}}'
wait_until 10 "WR3 gets alice's message" has WR3 '^message user:alice .*"r":1'
wait_until 10 "RA gets alice's message" has RA '^message user:alice .*"r":1'
has WR3 '^close' && fail "WR3 was closed"
ok "auth=required WS: no auth in time or a bad one closes 4401; a good one subscribes the inboxes"

# ---- a second auth: the same user may refresh, another user may not
TA2=$(jwt '{"sub":"alice","exp":"+7200"}')    # alice without role beta now
echo "{\"type\":\"auth\",\"token\":\"$TB\"}" >&6
wait_until 10 "WR3 refused another user" has WR3 '^error forbidden'
echo "{\"type\":\"auth\",\"token\":\"$TA2\"}" >&6
wait_until 10 "WR3 refreshed" has WR3 '^subscribed channels=user:alice all=false'
post_msg '{"roles":["beta"],"data":{"r":2}}'
post_msg '{"users":["alice"],"data":{"r":3}}'
wait_until 10 "RA gets the role message" has RA '^message role:beta .*"r":2'
wait_until 10 "WR3 gets alice's message" has WR3 '^message user:alice .*"r":3'
hasnt WR3 '"r":2' || fail "WR3 still got role:beta after its roles changed"
has WR3 '^close' && fail "WR3 was closed by a refresh"
ok "a second auth refreshes the same user's token (inboxes follow the new roles), another user is refused"

# ---- both gateways stop cleanly (under SAN=1: no sanitizer report)
exec 4>&- 5>&- 6>&-
for p in $GW1_PID $GW_PID; do kill -TERM "$p"; done
for p in $GW1_PID $GW_PID; do
    wait "$p"; rc=$?
    if [ "$rc" != 0 ]; then
        grep -v 'level=debug' "$TMP/gateway1.log" "$TMP/gateway.log" >&2
        fail "gateway $p exited with $rc"
    fi
done
for f in "$TMP/gateway1.log" "$TMP/gateway.log"; do
    if grep -q -e 'Sanitizer' -e 'runtime error' "$f"; then
        cat "$f" >&2
        fail "sanitizer report in $(basename "$f")"
    fi
done
ok "gateways exit 0 on SIGTERM, no sanitizer report"
exit 0
