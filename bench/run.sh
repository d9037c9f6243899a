#!/bin/sh
# bench/run.sh — `make bench`: the side-by-side load benchmark.
#
# Starts, on loopback ports of its own, a private redis-server, the raw-epoll
# floor (bench-floor, one process and one per core), a private nginx + Nchan
# (bench/nchan.conf, fresh for every run) and, when they are built, flagcast's
# publisher and gateway; runs the same scenario against each with
# bench-loadgen, and writes the results table into docs/PERFORMANCE.md between
# its "bench:results" markers. Every process it starts is stopped by PID when
# it ends, also on failure or Ctrl-C.
#
# Scenario (defaults; env overrides in brackets):
#   fan-out  [BENCH_CONNS=10000 SSE subscribers, BENCH_ROUNDS=5 rounds of one
#            event, after one warm-up event that must reach everyone; repeated
#            in BENCH_CYCLES=5 cycles, every server once per cycle, fresh]
#   close    [BENCH_CLOSE=1000 of them close at once; the server's fds must drop
#            by as many (reap time) and its CPU is summed over BENCH_CLOSE_WATCH=10 s]
#   idle     [BENCH_IDLE_CONNS=19000 SSE, then as many WS, on a fresh server:
#            server RSS per connection; then BENCH_IDLE_ROUNDS=3 rounds of one
#            event to all of them]
# Options:
#   --100k        also 100k idle connections (+ one fan-out) across several
#                 server processes sharing one port by SO_REUSEPORT (floor
#                 copies, nginx workers, gateway processes)
#                 [BENCH_BIG_CONNS=100000, BENCH_BIG_PROCS=6]
#   --100k-only   only that (writes only its own section of PERFORMANCE.md)
#   --only LIST   comma list of floor,floor2,nchan,flagcast (default all)
#   --no-write    print the table, leave docs/PERFORMANCE.md alone
#   --help
# Programs come from $FLAGCAST_BIN (make passes its bin dir), else ./bin.
# KEEP_TMP=1 keeps the work dir (server and load logs) after the run.
set -u

BIN=${FLAGCAST_BIN:-$(pwd)/bin}
OUT=${BENCH_OUT:-docs/PERFORMANCE.md}
CONNS=${BENCH_CONNS:-10000}
ROUNDS=${BENCH_ROUNDS:-5}
CYCLES=${BENCH_CYCLES:-5}
IDLE=${BENCH_IDLE_CONNS:-19000}
IDLE_ROUNDS=${BENCH_IDLE_ROUNDS:-3}
CLOSE=${BENCH_CLOSE:-1000}
WATCH=${BENCH_CLOSE_WATCH:-10}
BIG_CONNS=${BENCH_BIG_CONNS:-100000}
BIG_PROCS=${BENCH_BIG_PROCS:-6}
TOKEN=bench-admin-token
BIG=0
DEFAULT=1
ONLY=floor,floor2,nchan,flagcast
WRITE=1
CMDLINE="make bench${*:+ ARGS=\"$*\"}"

while [ $# -gt 0 ]; do
    case "$1" in
        --100k) BIG=1 ;;
        --100k-only) BIG=1; DEFAULT=0 ;;
        --only) shift; ONLY=${1:?--only needs a list} ;;
        --no-write) WRITE=0 ;;
        --help|-h) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) echo "bench: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
want() { case ",$ONLY," in *",$1,"*) return 0 ;; esac; return 1; }

log() { echo "bench: $*" >&2; }
die() { echo "bench: ERROR: $*" >&2; exit 1; }
# A server that does not come up fails its runs, not the whole benchmark.
start_failed() { echo "bench: ERROR: $*" >&2; START_FAILED=1; return 1; }

for p in bench-loadgen bench-floor; do
    [ -x "$BIN/$p" ] || die "$BIN/$p is missing: run 'make bench' (or make O=DIR bench)"
done
command -v redis-server >/dev/null || die "redis-server is missing (sh scripts/deps.sh installs it)"
command -v curl >/dev/null || die "curl is missing"

# ---- Nchan: Debian's nginx-light + libnginx-mod-nchan, installed if missing --
if want nchan && { [ ! -f /usr/lib/nginx/modules/ngx_nchan_module.so ] || ! command -v nginx >/dev/null; }; then
    [ "$(id -u)" = 0 ] || die "nginx-light and libnginx-mod-nchan are missing; run as root or install them"
    log "installing nginx-light libnginx-mod-nchan"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends \
        nginx-light libnginx-mod-nchan >/dev/null || die "apt-get install nginx-light libnginx-mod-nchan failed"
fi

T=$(mktemp -d /tmp/flagcast-bench.XXXXXX)
chmod 755 "$T"
PIDS=""
GPIDS=""
FAILED=""
track() { PIDS="$PIDS $1"; }

# Stops one started process and its direct children (nginx workers, floor
# copies, gateway workers), by PID: TERM, then KILL after 5 s.
stop_pid() {
    p=$1
    kids=$(pgrep -P "$p" 2>/dev/null | tr '\n' ' ')
    kill -TERM "$p" $kids 2>/dev/null
    i=0
    while kill -0 "$p" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
    kill -KILL "$p" $kids 2>/dev/null
    wait "$p" 2>/dev/null
    PIDS=$(echo "$PIDS" | tr ' ' '\n' | grep -vx "$p" | tr '\n' ' ')
}
cleanup() {
    for p in $PIDS; do stop_pid "$p"; done
    if [ "${KEEP_TMP:-0}" = 1 ]; then log "logs kept in $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A free loopback port below the ephemeral range (32768+), not used by us yet.
USED_PORTS=""
free_port() {
    while :; do
        p=$((20000 + $(od -An -N2 -tu2 /dev/urandom) % 12000))
        hex=$(printf '%04X' "$p")
        case " $USED_PORTS " in *" $p "*) continue ;; esac
        grep -qi ":$hex " /proc/net/tcp /proc/net/tcp6 2>/dev/null && continue
        USED_PORTS="$USED_PORTS $p"
        echo "$p"
        return
    done
}

# wait_http URL SECONDS: until URL answers 2xx.
wait_http() {
    i=0
    while [ $i -lt $(($2 * 10)) ]; do
        code=$(curl -s -o /dev/null -m 1 -w '%{http_code}' "$1" 2>/dev/null)
        case "$code" in 2??) return 0 ;; esac
        sleep 0.1; i=$((i + 1))
    done
    return 1
}

# pids_of PID: the process and its children, comma separated (for --pids).
pids_of() { { echo "$1"; pgrep -P "$1"; } | paste -sd, -; }

# kv FILE KEY: the last KEY=value in FILE.
kv() { grep -o "$2=[^ ]*" "$1" 2>/dev/null | tail -1 | cut -d= -f2; }

RPORT=$(free_port)
redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$T" \
    --daemonize no --maxclients 1000 >"$T/redis.log" 2>&1 &
RPID=$!; track $RPID
i=0; until redis-cli -p "$RPORT" ping >/dev/null 2>&1; do
    i=$((i + 1)); [ $i -gt 50 ] && die "redis-server did not start: $(tail -3 "$T/redis.log")"; sleep 0.1
done
log "redis on 127.0.0.1:$RPORT, work dir $T"

# ---- servers ------------------------------------------------------------------
# start_X sets SPID (the pid to stop), SUB (SSE URL), WSURL, PUB, LGEXTRA.

start_floor() {   # $1: processes
    port=$(free_port)
    "$BIN/bench-floor" --procs "$1" --listen "127.0.0.1:$port" --redis "127.0.0.1:$RPORT" \
        2>>"$T/floor.log" &
    SPID=$!; track $SPID
    SUB="http://127.0.0.1:$port/sub"; WSURL=""; PUB="http://127.0.0.1:$port/pub"; LGEXTRA=""
    i=0; until [ "$(pgrep -P $SPID | wc -l)" -ge $(($1 - 1)) ] && curl -s -o /dev/null -m 1 -X OPTIONS "http://127.0.0.1:$port/"; do
        i=$((i + 1)); [ $i -gt 50 ] && { start_failed "floor did not start: $(tail -3 "$T/floor.log")"; return 1; }; sleep 0.1
    done
}

start_nchan() {   # $1: worker processes
    port=$(free_port)
    d="$T/nginx.$port"; mkdir -p "$d"; chmod 755 "$d"
    sed -e "s#@PREFIX@#$d#g" -e "s#@PORT@#$port#g" -e "s#@REDIS_PORT@#$RPORT#g" \
        -e "s#@WORKERS@#$1#g" -e "s#@USER@#$(id -un)#g" bench/nchan.conf >"$d/nginx.conf"
    nginx -p "$d" -c "$d/nginx.conf" -e "$d/error.log" 2>>"$d/stderr.log" &
    SPID=$!; track $SPID
    SUB="http://127.0.0.1:$port/sub"; WSURL="ws://127.0.0.1:$port/sub"; PUB="http://127.0.0.1:$port/pub"
    LGEXTRA=""
    # Each worker answers 503 until it has its own Redis connection; new
    # connections are hashed over the workers (reuseport), so 40 non-503
    # answers in a row means every worker is ready.
    ok=0; i=0
    while [ $ok -lt 40 ]; do
        code=$(curl -s -o /dev/null -m 1 -w '%{http_code}' "$PUB" 2>/dev/null)
        case "$code" in 000|503) ok=0 ;; *) ok=$((ok + 1)) ;; esac
        kill -0 "$SPID" 2>/dev/null || { start_failed "nginx exited: $(tail -3 "$d/error.log" "$d/stderr.log")"; return 1; }
        i=$((i + 1)); [ $i -gt 600 ] && { start_failed "nchan not ready (last $code): $(tail -3 "$d/error.log")"; return 1; }
        [ $ok = 0 ] && sleep 0.1
    done
    [ "$(pgrep -P $SPID | wc -l)" -ge "$1" ] || { start_failed "nginx workers missing: $(tail -3 "$d/error.log")"; return 1; }
}

PUBPID=""
PUB_BROKEN=0
start_publisher() {
    [ $PUB_BROKEN = 1 ] && return 1
    [ -n "$PUBPID" ] && return 0
    PPORT=$(free_port)
    FLAGCAST_LISTEN="127.0.0.1:$PPORT" FLAGCAST_REDIS_URL="redis://127.0.0.1:$RPORT" \
    FLAGCAST_ADMIN_TOKENS=$TOKEN "$BIN/flagcast-publisher" 2>>"$T/publisher.log" &
    PUBPID=$!; track $PUBPID
    wait_http "http://127.0.0.1:$PPORT/healthz" 20 ||
        { PUB_BROKEN=1; start_failed "publisher not healthy: $(tail -3 "$T/publisher.log")"; return 1; }
}

start_flagcast() {   # $1: gateway processes, all on one port (SO_REUSEPORT)
    WSURL="ws://"   # flagcast has a WS run even when this start fails
    start_publisher || return 1
    SPID=""; GPIDS=""
    port=$(free_port)
    # One process: its default threads (one per CPU). Several: one thread each.
    thr=""; [ "$1" -gt 1 ] && thr=1
    n=0
    while [ $n -lt "$1" ]; do
        env FLAGCAST_LISTEN="127.0.0.1:$port" FLAGCAST_REDIS_URL="redis://127.0.0.1:$RPORT" \
            FLAGCAST_AUTH=off FLAGCAST_LOG_LEVEL=${BENCH_GW_LOG_LEVEL:-warn} \
            ${thr:+FLAGCAST_THREADS=$thr} "$BIN/flagcast-gateway" 2>>"$T/gateway.$port.$n.log" &
        p=$!; track $p
        GPIDS="$GPIDS $p"; [ -z "$SPID" ] && SPID=$p
        n=$((n + 1))
    done
    SUB="http://127.0.0.1:$port/api/v1/realtime/sse?channels=bench"
    WSURL="ws://127.0.0.1:$port/ws"
    # A new connection may reach any of the processes: 40 ready answers in a row.
    ok=0; i=0
    while [ $ok -lt 40 ]; do
        code=$(curl -s -o /dev/null -m 1 -w '%{http_code}' "http://127.0.0.1:$port/readyz" 2>/dev/null)
        case "$code" in 200) ok=$((ok + 1)) ;; *) ok=0 ;; esac
        kill -0 "$SPID" 2>/dev/null || { start_failed "gateway exited: $(tail -3 "$T/gateway.$port.0.log")"; return 1; }
        i=$((i + 1)); [ $i -gt 600 ] && { start_failed "gateway not ready (last $code): $(tail -3 "$T/gateway.$port.0.log")"; return 1; }
        [ $ok = 0 ] && sleep 0.1
    done
    for p in $GPIDS; do kill -0 "$p" 2>/dev/null || { start_failed "a gateway process exited: $(tail -3 "$T"/gateway.$port.*.log)"; return 1; }; done

    PUB="http://127.0.0.1:$PPORT/api/v1/channels/bench/messages"
    LGEXTRA="--token $TOKEN"
}

stop_server() {
    for p in ${GPIDS:-$SPID}; do stop_pid "$p"; done
    GPIDS=""
}

server_pids() {
    if [ -n "${GPIDS:-}" ]; then
        for p in $GPIDS; do pids_of "$p"; done | paste -sd, -
    else
        pids_of "$SPID"
    fi
}

# lg LABEL ARGS: one loadgen run; key=value results in $T/LABEL.out.
lg() {
    label=$1; shift
    log "run $label"
    "$BIN/bench-loadgen" --label "$label" --pids "$(server_pids)" "$@" >"$T/$label.out"
    rc=$?
    [ $rc = 0 ] || { log "run $label FAILED (rc $rc); see the lines above"; FAILED="$FAILED $label"; }
    return $rc
}

# fanout NAME CYCLE START_CMD: fan-out to $CONNS on a fresh server; in the
# first cycle also the close test.
fanout() {
    name=$1; fcy=$2; shift 2
    closeargs=""
    [ "$fcy" = 1 ] && [ "$CLOSE" -gt 0 ] && closeargs="--close $CLOSE --close-watch $WATCH"
    if $@; then
        lg "$name.fanout.$fcy" --url "$SUB" --publish "$PUB" $LGEXTRA --connections "$CONNS" \
            --rounds "$ROUNDS" $closeargs
    else
        FAILED="$FAILED $name.fanout.$fcy(start)"
    fi
    stop_server
}

# idle NAME START_CMD: idle SSE, then idle WS, each on a fresh server. RSS is
# read before the first publish; the rounds after it also show the fan-out at
# this size (and that every connection was really subscribed).
idle() {
    name=$1; shift
    if $@; then
        lg "$name.idle-sse" --url "$SUB" --publish "$PUB" $LGEXTRA --connections "$IDLE" \
            --rounds "$IDLE_ROUNDS"
    else
        FAILED="$FAILED $name.idle-sse(start)"
    fi
    stop_server
    if [ -n "$WSURL" ]; then
        ws_sub=""
        [ "$name" = flagcast ] && ws_sub='{"type":"subscribe","channels":["bench"]}'
        if $@; then
            lg "$name.idle-ws" --url "$WSURL" --ws ${ws_sub:+--ws-subscribe "$ws_sub"} \
                --publish "$PUB" $LGEXTRA --connections "$IDLE" --rounds "$IDLE_ROUNDS"
        else
            FAILED="$FAILED $name.idle-ws(start)"
        fi
        stop_server
    fi
}

T0=$(date +%s)
HAVE_FC=0
if want flagcast; then
    if [ -x "$BIN/flagcast-gateway" ] && [ -x "$BIN/flagcast-publisher" ]; then
        HAVE_FC=1
    else
        log "flagcast-gateway or flagcast-publisher not built: the flagcast row stays pending"
    fi
fi

# The fan-out runs go in cycles, every server once per cycle, so that load
# from elsewhere on the machine falls on all of them alike.
cycle=1
[ $DEFAULT = 1 ] || cycle=$((CYCLES + 1))
while [ $cycle -le "$CYCLES" ]; do
    want floor && fanout floor $cycle start_floor 1
    want floor2 && fanout floor2 $cycle start_floor 2
    want nchan && fanout nchan $cycle start_nchan 2
    [ $HAVE_FC = 1 ] && fanout flagcast $cycle start_flagcast 1
    cycle=$((cycle + 1))
done
if [ $DEFAULT = 1 ]; then
    want floor && idle floor start_floor 1
    want floor2 && idle floor2 start_floor 2
    want nchan && idle nchan start_nchan 2
    [ $HAVE_FC = 1 ] && idle flagcast start_flagcast 1
fi

if [ $BIG = 1 ]; then
    bigr=3
    big() {   # big NAME START...
        name=$1; shift
        if $@; then
            lg "$name.big" --url "$SUB" --publish "$PUB" $LGEXTRA --connections "$BIG_CONNS" \
                --rounds $bigr --connect-timeout 300000
        else
            FAILED="$FAILED $name.big(start)"
        fi
        stop_server
    }
    want floor && big floor start_floor "$BIG_PROCS"
    want nchan && big nchan start_nchan "$BIG_PROCS"
    [ $HAVE_FC = 1 ] && big flagcast start_flagcast "$BIG_PROCS"
fi
ELAPSED=$(( $(date +%s) - T0 ))

# ---- the table ----------------------------------------------------------------
f2() { [ -n "$1" ] && printf '%s' "$1" || printf '—'; }
ratio() {   # ratio A B: A/B with 2 decimals, or —
    if [ -n "$1" ] && [ -n "$2" ]; then awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "—" }'
    else printf '—'; fi
}
kb() { [ -n "$1" ] && awk -v b="$1" 'BEGIN { printf "%.2f", b / 1024 }' || printf '—'; }

# All measured rounds of NAME's fan-out runs (complete rounds only), one a line.
rounds_of() {
    cat "$T/$1".fanout.*.out 2>/dev/null |
        awk '/^round=/ && !/warmup/ { d = e = m = ""
            for (i = 1; i <= NF; i++) { split($i, kv, "=")
                if (kv[1] == "delivered") d = kv[2]; if (kv[1] == "expected") e = kv[2]
                if (kv[1] == "completion_ms") m = kv[2] }
            if (d == e && m != "") print m }'
}
# stat: median, min, max of numbers on stdin ("" if none).
stat_med() { sort -n | awk '{ v[NR] = $1 } END { if (NR) printf "%.2f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
stat_min() { sort -n | head -1; }
stat_max() { sort -n | tail -1; }
# cyc NAME KEY: KEY from each cycle's file, one a line.
cyc() { for f in "$T/$1".fanout.*.out; do [ -f "$f" ] && kv "$f" "$2"; done; }
med_of() { rounds_of "$1" | stat_med; }

row() {   # row NAME TITLE
    n=$1; f="$T/$n.fanout.1.out"
    if [ ! -f "$f" ] && [ "$n" = flagcast ] && [ $HAVE_FC = 0 ]; then
        echo "| $2 | pending: gateway not built in this run | | | | | | | |"; return
    fi
    med=$(med_of "$n"); mn=$(rounds_of "$n" | stat_min); mx=$(rounds_of "$n" | stat_max)
    nr=$(rounds_of "$n" | wc -l)
    per=$(cyc "$n" completion_med_ms | paste -sd/ - | sed 's#/# / #g')
    dps=$([ -n "$med" ] && awk -v n="$CONNS" -v m="$med" 'BEGIN { if (m > 0) printf "%.0f", n / (m / 1000) }')
    echo "| $2 | $(f2 "$med") ($(f2 "$mn")–$(f2 "$mx"), $nr rounds) | $(f2 "$per") | $(f2 "$(cyc "$n" p50_ms | stat_med)") | $(f2 "$(cyc "$n" p99_ms | stat_med)") | $(f2 "$(cyc "$n" max_ms | stat_max)") | $(f2 "$dps") | $(f2 "$(kv "$f" reap_ms)") | $(f2 "$(kv "$f" cpu_s)") |"
}
# cycle_ratios A B: A/B of each cycle's median, "r1 / r2 / ...".
cycle_ratios() {
    out=""; rci=1
    while [ $rci -le "$CYCLES" ]; do
        out="$out${out:+ / }$(ratio "$(kv "$T/$1.fanout.$rci.out" completion_med_ms)" "$(kv "$T/$2.fanout.$rci.out" completion_med_ms)")"
        rci=$((rci + 1))
    done
    printf '%s' "$out"
}
row2() {   # row2 NAME TITLE: the idle runs
    n=$1; s="$T/$n.idle-sse.out"; w="$T/$n.idle-ws.out"
    if [ ! -f "$s" ] && [ "$n" = flagcast ] && [ $HAVE_FC = 0 ]; then
        echo "| $2 | pending: gateway not built in this run | | | |"; return
    fi
    ws_rss=$(kb "$(kv "$w" rss_per_conn_b)"); ws_med=$(f2 "$(kv "$w" completion_med_ms)")
    case $n in floor*) ws_rss="n/a (SSE only)"; ws_med="n/a" ;; esac
    echo "| $2 | $(kb "$(kv "$s" rss_per_conn_b)") | $(f2 "$(kv "$s" completion_med_ms)") | $ws_rss | $ws_med |"
}

MACHINE="Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), Linux $(uname -r), $(awk '/MemTotal/ { printf "%.0f GB", $2 / 1048576 }' /proc/meminfo) RAM."
RUNLINE="Run of $(date -u '+%Y-%m-%d %H:%M UTC') by \`$CMDLINE\` ($ELAPSED s)."

# replace_block NAME FILE: puts FILE between NAME's begin/end markers in $OUT.
replace_block() {
    if [ -f "$OUT" ] && grep -q "<!-- bench:$1:begin -->" "$OUT"; then
        awk -v tf="$2" -v b="<!-- bench:$1:begin -->" -v e="<!-- bench:$1:end -->" '
            $0 == b { print; while ((getline l < tf) > 0) print l; skip = 1; next }
            $0 == e { skip = 0 }
            !skip { print }' "$OUT" >"$T/perf.md" && cat "$T/perf.md" >"$OUT"
    else
        { [ -f "$OUT" ] || { echo "# Performance"; echo; }
          echo "<!-- bench:$1:begin -->"; cat "$2"; echo "<!-- bench:$1:end -->"; } >>"$OUT"
    fi
}

if [ $DEFAULT = 1 ]; then
    TABLE="$T/table.md"
    {
        echo "$RUNLINE"
        echo "$MACHINE"
        echo "Fan-out: $CONNS SSE subscribers on a fresh server, one warm-up event then $ROUNDS measured events, in $CYCLES cycles (every server once per cycle). Completion = publish → last delivery; median, min–max over all measured rounds, and each cycle's median. p50/p99 of per-delivery latency: median over cycles; max: over all. Close: in cycle 1, $CLOSE of the $CONNS close at once."
        echo
        echo "| server | fan-out to $CONNS SSE, ms: median (min–max) | per-cycle medians, ms | p50 ms | p99 ms | max ms | deliveries/s | close $CLOSE: reaped in ms | server CPU s over ${WATCH} s after |"
        echo "|---|---|---|---|---|---|---|---|---|"
        want floor && row floor "floor (raw epoll, 1 process)"
        want floor2 && row floor2 "floor (raw epoll, 2 processes, SO_REUSEPORT)"
        want nchan && row nchan "Nchan 1.3.6 (nginx-light, 2 workers, Redis)"
        want flagcast && row flagcast "flagcast-gateway (1 process, $(nproc) threads)"
        echo
        echo "Each at $IDLE connections on a fresh server: RSS growth per idle connection (read before any publish), then fan-out of one event to all $IDLE ($IDLE_ROUNDS rounds, median)."
        echo
        echo "| server | SSE: RSS/conn, KB | SSE: fan-out to $IDLE, ms | WS: RSS/conn, KB | WS: fan-out to $IDLE, ms |"
        echo "|---|---|---|---|---|"
        want floor && row2 floor "floor (raw epoll, 1 process)"
        want floor2 && row2 floor2 "floor (raw epoll, 2 processes, SO_REUSEPORT)"
        want nchan && row2 nchan "Nchan 1.3.6 (nginx-light, 2 workers, Redis)"
        want flagcast && row2 flagcast "flagcast-gateway (1 process, $(nproc) threads)"
        echo
        fc=$(med_of flagcast); fl=$(med_of floor); fl2=$(med_of floor2); nc=$(med_of nchan)
        echo "Ratios of fan-out completion, overall median (each cycle's in brackets):"
        echo
        echo "- flagcast / floor (1 process): **$(ratio "$fc" "$fl")** ($(cycle_ratios flagcast floor)); target ≤ 1.15"
        echo "- flagcast / Nchan: **$(ratio "$fc" "$nc")** ($(cycle_ratios flagcast nchan)); target ≤ 1.0, aim 0.8"
        echo "- flagcast / floor (2 processes): $(ratio "$fc" "$fl2") ($(cycle_ratios flagcast floor2))"
        echo "- Nchan / floor (1 process): $(ratio "$nc" "$fl") ($(cycle_ratios nchan floor))"
        [ -n "$FAILED" ] && { echo; echo "Failed runs (their cells show —; logs were in the run's work dir):$FAILED"; }
    } >"$TABLE"
    cat "$TABLE"
    [ $WRITE = 1 ] && replace_block results "$TABLE"
fi

if [ $BIG = 1 ]; then
    BIGT="$T/big.md"
    {
        echo "$RUNLINE"
        echo "$MACHINE"
        echo "$BIG_CONNS SSE connections over $BIG_PROCS server processes sharing one port (SO_REUSEPORT), held by $(( (BIG_CONNS + 17999) / 18000 )) load processes; RSS per connection summed over all server processes, read before any publish; then $bigr rounds of one event to all of them (median)."
        echo
        echo "| server | connected | RSS/conn, KB | fan-out to all, ms: median | p50 ms | p99 ms |"
        echo "|---|---|---|---|---|---|"
        for n in floor nchan flagcast; do
            f="$T/$n.big.out"; [ -f "$f" ] || continue
            case $n in
                floor) t="floor ($BIG_PROCS processes)" ;;
                nchan) t="Nchan ($BIG_PROCS workers)" ;;
                flagcast) t="flagcast-gateway ($BIG_PROCS processes, 1 thread each)" ;;
            esac
            echo "| $t | $(f2 "$(kv "$f" connected)") | $(kb "$(kv "$f" rss_per_conn_b)") | $(f2 "$(kv "$f" completion_med_ms)") | $(f2 "$(kv "$f" p50_ms)") | $(f2 "$(kv "$f" p99_ms)") |"
        done
    } >"$BIGT"
    cat "$BIGT"
    [ $WRITE = 1 ] && replace_block big "$BIGT"
fi
[ $WRITE = 1 ] && log "results written to $OUT"
if [ -n "$FAILED" ]; then
    log "failed runs:$FAILED (their cells show —)"
    exit 1
fi
exit 0
