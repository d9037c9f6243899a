# recovery.sh — helpers for the recovery tests (tests/integration/
# test_recovery_*.sh), sourced after harness.sh (whose start_gw starts
# their gateways): clients that reconnect with their cursor, publishing
# that retries through outages, and the exactly-once / in-order check.

# publish CHANNEL I: posts {"m":I}, retrying (publisher or Redis away: 503,
# refused) for up to 60 s. Every attempt that got no 2xx did not publish
# (the publisher answers only after the Lua call), so the offsets stay 1..N.
publish() {
    _end=$(( $(date +%s) + 60 ))
    while :; do
        _code=$(curl -s -m 5 -o "$TMP/pub.out" -w '%{http_code}' -X POST \
            -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
            --data "{\"data\":{\"m\":$2}}" "$PUB/api/v1/channels/$1/messages")
        case "$_code" in 2*) return 0 ;; esac
        [ "$(date +%s)" -ge "$_end" ] && fail "publishing $2 on $1: last answer $_code $(cat "$TMP/pub.out")"
        sleep 0.1
    done
}

# publish_range CHANNEL FROM TO
publish_range() {
    _i=$2
    while [ "$_i" -le "$3" ]; do publish "$1" "$_i"; _i=$((_i + 1)); done
}

# sse_client NAME CHANNEL URL...: sse_resume.js in the background, output in
# $TMP/NAME.out; sets CPID_NAME.
sse_client() {
    _n=$1; _ch=$2; shift 2
    _urls=""
    for _u in "$@"; do _urls="$_urls $_u/api/v1/realtime/sse?channels=$_ch"; done
    # shellcheck disable=SC2086
    node "$GW_DIR/sse_resume.js" "$TMP/$_n.id" $_urls >"$TMP/$_n.out" 2>"$TMP/$_n.err" &
    track $!
    eval "CPID_$_n=$!"
}

# ws_client_r NAME CHANNEL WSURL...: ws_resume.js likewise.
ws_client_r() {
    _n=$1; _ch=$2; shift 2
    _urls=""
    for _u in "$@"; do _urls="$_urls $_u/ws"; done
    # shellcheck disable=SC2086
    node "$GW_DIR/ws_resume.js" "$_ch" $_urls >"$TMP/$_n.out" 2>"$TMP/$_n.err" &
    track $!
    eval "CPID_$_n=$!"
}

# got NAME CHANNEL N: the client printed message N of CHANNEL.
got() { grep -q "^message $2 $3 " "$TMP/$1.out"; }
opened() { [ "$(grep -c '^open' "$TMP/$1.out")" -ge "$2" ]; }

# check NAME CHANNEL N [resync]: check_seq.js, failing the test with its word.
check() {
    _r=$(node "$GW_DIR/check_seq.js" "$TMP/$1.out" "$2" "$3" ${4:-}) ||
        fail "$1: $_r"
    ok "$1: $_r"
}


# stop_gws NAME...: SIGTERM each gateway, wait for it to exit (20 s), and
# fail on a sanitizer report (ASan/UBSan builds) or a crash in its log.
stop_gws() {
    for _n in "$@"; do
        eval "_p=\$GWPID_$_n"
        kill "$_p" 2>/dev/null
        _i=0
        while kill -0 "$_p" 2>/dev/null; do
            [ $_i -ge 200 ] && fail "gateway $_n did not exit on SIGTERM"
            sleep 0.1; _i=$((_i + 1))
        done
        if grep -qE 'Sanitizer|runtime error:' "$TMP/gw-$_n.log"; then
            fail "gateway $_n: sanitizer report in its log"
        fi
    done
}
