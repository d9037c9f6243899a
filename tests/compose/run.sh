#!/bin/sh
# make compose-test: compose.yaml run for real, under podman (Debian's
# podman 4.3, driven by Debian's docker-compose 1.29 through podman's
# Docker-compatible API), with the images built from this checkout:
#   - build (deploy/Dockerfile: runtime and lb), up -d --scale gateway=3,
#     every service healthy;
#   - through lb: SSE and WS clients spread over the three gateways all
#     receive a flag change and a channel message;
#   - --scale gateway=4: the new gateway gets new clients;
#   - `docker stop` (podman stop) of a gateway drains it: its log says
#     `gateway drained`, its clients resume on the others and nothing is
#     lost, checked by offsets;
#   - `docker restart` of redis loses nothing acknowledged (AOF on the
#     volume): the channel's epoch stays, every acknowledged message is
#     there at its offset, the flag keeps its version;
#   - down -v leaves no container, network or volume of the project.
# Everything it starts is removed on exit, failure or not (trap).
#
# FLAGCAST_NO_COMPOSE=1 skips it (make fresh-check runs make test inside a
# container, where podman cannot start containers of its own).
# Environment: COMPOSE_LB_PORT, COMPOSE_ADMIN_PORT (host ports; default: free
# ones), FLAGCAST_CACHE (scripts/compose-env.sh), COMPOSE_KEEP_IMAGES=1
# (keep this run's image tags, no prune), COMPOSE_CLIENTS (SSE and WS clients each,
# default 6).
set -u

if [ "${FLAGCAST_NO_COMPOSE:-}" = 1 ]; then
    echo "compose-test: skipped (FLAGCAST_NO_COMPOSE=1: no containers here; the host's make test runs it)"
    exit 0
fi

CE_ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$CE_ROOT/scripts/compose-env.sh"
# The test harness's functions (wait_until, free_port, node_deps, ok,
# track; ROOT, GW_DIR), without its temp dir and trap: this run has its
# own fail and cleanup (containers, not PIDs). Polls every 0.5 s.
H_DIR=$CE_ROOT/tests/integration HARNESS_LIB=1 WAIT_STEP=0.5
. "$H_DIR/harness.sh"
N=${COMPOSE_CLIENTS:-6}
CH=chat.compose
TOKEN=compose-test-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')
# a project of its own: concurrent runs on one machine never meet
P=flagcast-ct-$(head -c 4 /dev/urandom | od -An -tx1 | tr -d ' \n')
TMP=$(mktemp -d "${TMPDIR:-/tmp}/flagcast-compose.XXXXXX")
T_START=$(date +%s)

fail() {
    echo "FAIL: $*" >&2
    if [ -n "${DOCKER_HOST:-}" ]; then
        for c in $(podman ps -aq --filter "label=com.docker.compose.project=$P" 2>/dev/null); do
            echo "---- podman logs $(podman inspect -f '{{.Name}}' "$c" 2>/dev/null) (last 25 lines)" >&2
            podman logs --tail 25 "$c" 2>&1 | sed 's/^/    /' >&2
        done
    fi
    for f in "$TMP"/*.log "$TMP"/*.err; do
        [ -s "$f" ] || continue
        case "$f" in */podman-service.log) continue ;; esac   # systemd noise
        echo "---- $(basename "$f") (last 20 lines)" >&2
        tail -20 "$f" | sed 's/^/    /' >&2
    done
    exit 1
}
elapsed() { echo "$(( $(date +%s) - T_START )) s"; }

export COMPOSE_HTTP_TIMEOUT=300
DC() { timeout 600 docker-compose -p "$P" -f "$ROOT/compose.yaml" -f "$ROOT/deploy/podman/compose.podman.yaml" "$@"; }

cleanup() {
    trap - EXIT INT TERM
    touch "$TMP/stop"
    for p in $PIDS; do kill "$p" 2>/dev/null; done
    for p in $PIDS; do wait "$p" 2>/dev/null; done
    if [ -n "${DOCKER_HOST:-}" ]; then
        DC down -v -t 5 >"$TMP/cleanup-down.log" 2>&1
        # whatever down missed (a failed up, a container compose lost)
        for c in $(podman ps -aq --filter "label=com.docker.compose.project=$P" 2>/dev/null); do
            podman rm -f -t 2 "$c" >/dev/null 2>&1
        done
        for v in $(podman volume ls -q --filter "label=com.docker.compose.project=$P" 2>/dev/null); do
            podman volume rm -f "$v" >/dev/null 2>&1
        done
        for n in $(podman network ls -q --filter "label=com.docker.compose.project=$P" 2>/dev/null); do
            podman network rm -f "$n" >/dev/null 2>&1
        done
        # This run's tags become the cache tags (their layers are the next
        # build's cache), then dangling images go: each commit's build
        # would otherwise leave a gigabyte behind.
        [ "${COMPOSE_KEEP_IMAGES:-}" = 1 ] || ce_locked sh -c '
            for t in "runtime:localhost/$0:latest" "lb:docker.io/library/${0}_lb:latest" "lb:localhost/${0}_lb:latest"; do
                podman image exists "${t#*:}" || continue
                podman tag "${t#*:}" "localhost/flagcast-compose-cache:${t%%:*}" && podman untag "${t#*:}" "${t#*:}"
            done
            podman image prune -f' "$P" >"$TMP/prune.log" 2>&1
    fi
    ce_service_stop
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# ---- setup: packages, base images, the API socket ----------------------------
ce_images
command -v python3 >/dev/null || fail "python3 is required (scripts/deps.sh installs it)"
node_deps
export NODE_PATH="$GW_DIR/node_modules"
ce_service_start "$TMP"

export FLAGCAST_ADMIN_TOKENS=$TOKEN
export FLAGCAST_IMAGE="localhost/$P:latest"
export FLAGCAST_LB_PORT=${COMPOSE_LB_PORT:-$(free_port '')}
export FLAGCAST_ADMIN_PORT=${COMPOSE_ADMIN_PORT:-$(free_port '')}
LB=http://127.0.0.1:$FLAGCAST_LB_PORT
PUB=http://127.0.0.1:$FLAGCAST_ADMIN_PORT
ok "project $P: lb on :$FLAGCAST_LB_PORT, publisher on :$FLAGCAST_ADMIN_PORT ($(elapsed))"

# ---- build -----------------------------------------------------------------
# Under the cache lock: no image prune (cleanup) runs while it builds. The
# build stage gets a cache tag too, so that its layers outlive the prune.
t0=$(date +%s)
ce_locked sh -c 'cd "$1" && timeout 1200 docker-compose -p "$0" -f compose.yaml -f deploy/podman/compose.podman.yaml build &&
    timeout 900 podman build -q --target build -f deploy/Dockerfile -t localhost/flagcast-compose-cache:build .' "$P" "$ROOT" \
    >"$TMP/build.log" 2>&1 || fail "building the images failed: $(tail -30 "$TMP/build.log")"
ok "images built from the checkout in $(( $(date +%s) - t0 )) s"
echo "timing: compose-build $(( $(date +%s) - t0 )) s" >&2

# podman 4.3 runs healthchecks from systemd timers; there is no systemd
# here, so run them: every container of the project, every second.
health_loop() {
    while [ ! -f "$TMP/stop" ]; do
        for c in $(podman ps -q --filter "label=com.docker.compose.project=$P" 2>/dev/null); do
            timeout 10 podman healthcheck run "$c" >/dev/null 2>&1
        done
        sleep 1
    done
}
health_loop &
track $!

# ids SERVICE: the running containers of a service
ids() { podman ps -q --filter "label=com.docker.compose.project=$P" --filter "label=com.docker.compose.service=$1"; }
all_healthy() { # COUNT: that many containers, every one healthy
    _s=$(podman ps --filter "label=com.docker.compose.project=$P" --format '{{.Status}}')
    [ "$(echo "$_s" | grep -c .)" -eq "$1" ] && ! echo "$_s" | grep -qv '(healthy)'
}
gw_conns() { # CONTAINER: open streams on that gateway
    podman exec "$1" curl -sf http://127.0.0.1:8080/metrics 2>/dev/null |
        awk '$1 ~ /^flagcast_gateway_connections\{/ { n += $2; f = 1 } END { print f ? n : "x" }'
}
api() { # METHOD PATH [JSON] -> reply in $TMP/api.out; fails unless 2xx
    _code=$(curl -s --max-time 10 -o "$TMP/api.out" -w '%{http_code}' -X "$1" \
        -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' ${3:+--data "$3"} "$PUB$2")
    case "$_code" in 2*) ;; *) fail "$1 $2 answered $_code: $(cat "$TMP/api.out")" ;; esac
}
jget() { python3 -c 'import json,sys; o=json.load(open(sys.argv[1])); print(eval(sys.argv[2], {}, {"o": o}))' "$@"; }

# ---- up, scale 3, healthy --------------------------------------------------
t0=$(date +%s)
DC up -d --scale gateway=3 >"$TMP/up.log" 2>&1 || fail "docker-compose up failed: $(tail -30 "$TMP/up.log")"
wait_until 180 "6 containers healthy (redis, publisher, 3 gateways, lb)" all_healthy 6
ok "up -d --scale gateway=3: all 6 containers healthy after $(( $(date +%s) - t0 )) s"
echo "timing: compose-up $(( $(date +%s) - t0 )) s" >&2
wait_until 60 "lb answers /lb-health" curl -sf --max-time 2 "$LB/lb-health"
wait_until 60 "a gateway through lb" curl -sf --max-time 2 "$LB/readyz"
wait_until 30 "publisher ready" curl -sf --max-time 2 "$PUB/readyz"

GWS=$(ids gateway)
[ "$(echo "$GWS" | wc -w)" = 3 ] || fail "expected 3 gateways, got: $GWS"

C=$TMP/clients.out
# open_count GROUP: clients of that group (a regexp on the name) whose
# stream is up now
open_count() {
    awk -v g="$1" '$2 ~ g { if ($3 == "open") o[$2] = 1; else if ($3 == "end" || $3 == "close" || $3 == "refused") delete o[$2] }
         END { n = 0; for (k in o) n++; print n }' "$C"*
}
all_open() { [ "$(open_count "$1")" -eq "$2" ]; }
sum_conns() { _t=0; for g in $1; do _n=$(gw_conns "$g"); [ "$_n" = x ] && return 1; _t=$((_t + _n)); done; echo $_t; }
spread_ok() { # "GATEWAYS" TOTAL: every one of them has clients, they sum to TOTAL
    for g in $1; do _n=$(gw_conns "$g"); [ "$_n" != x ] && [ "$_n" -gt 0 ] || return 1; done
    [ "$(sum_conns "$1")" -eq "$2" ]
}
conns_line() { for g in $1; do printf '%s=%s ' "$(podman inspect -f '{{.Name}}' "$g" | sed "s/^${P}_//")" "$(gw_conns "$g")"; done; }

# ---- clients through lb, spread over the three gateways ---------------------
node "$ROOT/tests/compose/clients.js" "$LB" "$N" "$N" "$CH" a >"$C.a" 2>"$TMP/clients-a.err" </dev/null &
track $!
TOTAL=$((2 * N))
wait_until 60 "$TOTAL clients open through lb" all_open '^a-' "$TOTAL"
wait_until 30 "clients on all three gateways (sum $TOTAL)" spread_ok "$GWS" "$TOTAL"
ok "$TOTAL clients ($N SSE, $N WS) through lb: $(conns_line "$GWS")"

# has_all GROUP COUNT PATTERN: COUNT clients of the group (a regexp on the
# name) have a line matching PATTERN
has_all() {
    [ "$(awk -v g="$1" -v re="$3" '$2 ~ g && $0 ~ re { s[$2] = 1 } END { n = 0; for (k in s) n++; print n }' "$C"*)" -ge "$2" ]
}

api POST /api/v1/flags '{"key":"compose-ui","description":"compose test"}'
api PUT /api/v1/flags/compose-ui/enabled '{"enabled":true}'
FLAG_VERSION=$(jget "$TMP/api.out" 'o["version"]')
wait_until 30 "every client sees flag.toggled of compose-ui" has_all '^a-' "$TOTAL" " flag compose-ui flag.toggled $FLAG_VERSION "

# publish SEQ: a channel message {"seq":SEQ}; on success appends
# "SEQ EPOCH OFFSET" to $TMP/acked (what the publisher acknowledged)
publish() {
    _code=$(curl -s --max-time 5 -o "$TMP/pub.out" -w '%{http_code}' -X POST \
        -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
        --data "{\"data\":{\"seq\":$1}}" "$PUB/api/v1/channels/$CH/messages")
    case "$_code" in
        2*) python3 -c 'import json,sys; p=json.load(open(sys.argv[1]))["publication"]; print(sys.argv[2], p["epoch"], p["offset"])' \
                "$TMP/pub.out" "$1" >>"$TMP/acked" ;;
        *) return 1 ;;
    esac
}
publish 1 || fail "publishing message 1 failed: $(cat "$TMP/pub.out")"
wait_until 30 "every client has message 1" has_all '^a-' "$TOTAL" " msg 1 "
ok "every client received the flag change (compose-ui v$FLAG_VERSION) and channel message 1"

# ---- scale to 4: the new gateway gets new clients ----------------------------
t0=$(date +%s)
DC up -d --no-recreate --scale gateway=4 >"$TMP/up4.log" 2>&1 || fail "up --scale gateway=4 failed: $(tail -30 "$TMP/up4.log")"
wait_until 120 "7 containers healthy" all_healthy 7
GW4=""
for g in $(ids gateway); do echo "$GWS" | grep -q "^$g" || GW4=$g; done
[ -n "$GW4" ] || fail "no fourth gateway among $(ids gateway)"
# lb finds it by DNS (hold valid 5s) and checks it up (rise 2 x inter 1s):
# its log names the server slot that got the new gateway's address
lb_has_gw4() {
    _ip=$(podman inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$GW4")
    [ -n "$_ip" ] || return 1
    podman logs "$(ids lb)" >"$TMP/lb.now" 2>&1
    _srv=$(grep -F "$_ip" "$TMP/lb.now" | grep -o 'gateways/gw[0-9]*' | tail -1)
    [ -n "$_srv" ] && grep -q "Server $_srv .*is UP" "$TMP/lb.now"
}
wait_until 60 "lb sends to the fourth gateway" lb_has_gw4
sleep 2
node "$ROOT/tests/compose/clients.js" "$LB" 2 2 "$CH" b >"$C.b" 2>"$TMP/clients-b.err" </dev/null &
track $!
wait_until 60 "4 new clients open" all_open '^b-' 4
gw4_has() { _n=$(gw_conns "$GW4"); [ "$_n" != x ] && [ "$_n" -gt 0 ]; }
wait_until 20 "the fourth gateway has clients" gw4_has
TOTAL=$((TOTAL + 4))
ALLGW=$(ids gateway)
[ "$(sum_conns "$ALLGW")" -eq "$TOTAL" ] || fail "gateways hold $(sum_conns "$ALLGW") streams, expected $TOTAL"
ok "--scale gateway=4 in $(( $(date +%s) - t0 )) s; new clients on it: $(conns_line "$ALLGW")"
publish 2 || fail "publishing message 2 failed"
wait_until 30 "every client (old and new) has message 2" has_all . "$TOTAL" " msg 2 "
ok "all $TOTAL clients received message 2"

# ---- a steady stream of messages from here on --------------------------------
publish_loop() {
    i=3
    while [ ! -f "$TMP/stop" ] && [ ! -f "$TMP/stop-publish" ]; do
        publish "$i" && i=$((i + 1))
        sleep 0.3
    done
}
publish_loop &
PUBLOOP=$!; track $PUBLOOP
acked_count() { [ -f "$TMP/acked" ] && wc -l <"$TMP/acked" || echo 0; }
acked_at_least() { [ "$(acked_count)" -ge "$1" ]; }
wait_until 30 "5 messages acknowledged" acked_at_least 5

# ---- docker stop of one gateway: it drains --------------------------------
VICTIM=""
for g in $GWS; do _n=$(gw_conns "$g"); [ "$_n" != x ] && [ "$_n" -gt 0 ] && { VICTIM=$g; break; }; done
[ -n "$VICTIM" ] || fail "no gateway with clients to stop"
BEFORE=$(gw_conns "$VICTIM")
VNAME=$(podman inspect -f '{{.Name}}' "$VICTIM")
t0=$(date +%s)
timeout 60 podman stop -t 30 "$VICTIM" >/dev/null 2>>"$TMP/podman-cli.err" || fail "podman stop $VNAME failed"
STOP_S=$(( $(date +%s) - t0 ))
podman logs "$VICTIM" >"$TMP/victim.log" 2>&1
grep 'gateway drained' "$TMP/victim.log" >"$TMP/drained.line" || fail "$VNAME's log has no 'gateway drained': $(tail -5 "$TMP/victim.log")"
REST=$(ids gateway)
[ "$(echo "$REST" | wc -w)" = 3 ] || fail "expected 3 gateways after the stop, got: $REST"
rest_hold_all() { [ "$(sum_conns "$REST")" -eq "$TOTAL" ]; }
wait_until 60 "all $TOTAL clients on the remaining 3 gateways" rest_hold_all
ok "podman stop $VNAME ($BEFORE clients) took $STOP_S s; its log: $(sed 's/^.*msg=/msg=/' "$TMP/drained.line")"
ok "its clients resumed on the others: $(conns_line "$REST")"
M=$(acked_count)
wait_until 30 "3 more messages acknowledged after the drain" acked_at_least $((M + 3))

# check_offsets: every client has every acknowledged message it should have
# (group a: from message 1 on; group b, opened after it: from message 2) at
# the acknowledged epoch and offset.
check_offsets() {
    awk -v first_b=2 '
        FNR == NR { ack[$1] = $2 " " $3; n++; if ($1 > max) max = $1; next }
        $3 == "msg" { got[$2, $4] = $5 " " $6; names[$2] = 1 }
        END {
            bad = 0
            for (c in names) {
                from = (c ~ /^b-/) ? first_b : 1
                for (s in ack) {
                    if (s + 0 < from) continue
                    if (!((c, s) in got)) { print c " lacks acknowledged message " s " (" ack[s] ")"; bad++ }
                    else if (got[c, s] != ack[s]) { print c " got message " s " at " got[c, s] ", acknowledged at " ack[s]; bad++ }
                }
            }
            if (length(names) == 0) { print "no client output"; bad++ }
            exit bad > 0
        }' "$TMP/acked" "$C".a "$C".b
}
offsets_ok() { check_offsets >"$TMP/offsets.out"; }
touch "$TMP/stop-publish"; wait "$PUBLOOP" 2>/dev/null
wait_until 30 "every client has every acknowledged message at its offset" offsets_ok ||
    fail "offsets: $(head -10 "$TMP/offsets.out")"
M=$(acked_count)
ok "nothing lost across the drain: all $TOTAL clients have all $M acknowledged messages at their acknowledged offsets"

# ---- docker restart of redis: nothing acknowledged is lost --------------------
rm -f "$TMP/stop-publish"
publish_loop2() {
    i=$(( $(acked_count) + 100 ))   # seqs after a gap: failed publishes leave none
    while [ ! -f "$TMP/stop" ] && [ ! -f "$TMP/stop-publish" ]; do
        publish "$i" && i=$((i + 1))
        sleep 0.3
    done
}
publish_loop2 &
PUBLOOP=$!; track $PUBLOOP
M=$(acked_count)
wait_until 30 "messages acknowledged before the redis restart" acked_at_least $((M + 3))
EPOCH=$(tail -1 "$TMP/acked" | cut -d' ' -f2)
REDIS=$(ids redis)
t0=$(date +%s)
timeout 120 podman restart -t 20 "$REDIS" >/dev/null 2>>"$TMP/podman-cli.err" || fail "podman restart redis failed"
redis_healthy() { podman ps --filter "id=$REDIS" --format '{{.Status}}' | grep -q '(healthy)'; }
wait_until 60 "redis healthy again" redis_healthy
M=$(acked_count)
wait_until 60 "publishing again after the redis restart" acked_at_least $((M + 3))
ok "redis restarted; publishing again after $(( $(date +%s) - t0 )) s"
touch "$TMP/stop-publish"; wait "$PUBLOOP" 2>/dev/null
awk -v e="$EPOCH" '$2 != e { print; bad = 1 } END { exit bad }' "$TMP/acked" >"$TMP/epochs.out" ||
    fail "the channel's epoch changed across the redis restart (history lost): $(head -3 "$TMP/epochs.out")"
# acknowledged offsets only grow, one per message (none reused)
sort -n -k3 "$TMP/acked" | awk 'prev != "" && $3 <= prev { print "offset " $3 " acknowledged twice"; bad = 1 } { prev = $3 } END { exit bad }' ||
    fail "acknowledged offsets repeat across the restart"
wait_until 60 "every client has every acknowledged message at its offset after the redis restart" offsets_ok ||
    fail "offsets: $(head -10 "$TMP/offsets.out")"
api GET /api/v1/flags/compose-ui
[ "$(jget "$TMP/api.out" 'o["version"]')" = "$FLAG_VERSION" ] || fail "flag compose-ui version changed across the restart: $(cat "$TMP/api.out")"
[ "$(jget "$TMP/api.out" 'o["flag"]["enabled"]')" = True ] || fail "flag compose-ui no longer enabled: $(cat "$TMP/api.out")"
# the history itself: the messages before the restart, read from Redis's AOF-restored stream
podman exec "$REDIS" redis-cli INFO persistence | tr -d '\r' | grep -q '^aof_enabled:1' || fail "redis runs without AOF"
api PUT /api/v1/flags/compose-ui/enabled '{"enabled":false}'
wait_until 30 "every client sees the flag change after the redis restart" has_all . "$TOTAL" " flag compose-ui flag.toggled $((FLAG_VERSION + 1)) "
M=$(acked_count)
ok "nothing acknowledged lost across the redis restart: epoch $EPOCH kept, $M messages at their offsets on every client, flag compose-ui v$FLAG_VERSION kept, then v$((FLAG_VERSION + 1)) delivered"

# ---- down -v: nothing left ----------------------------------------------
for p in $PIDS; do kill "$p" 2>/dev/null; done
t0=$(date +%s)
DC down -v -t 30 >"$TMP/down.log" 2>&1 || fail "docker-compose down -v failed: $(tail -20 "$TMP/down.log")"
left=$(podman ps -aq --filter "label=com.docker.compose.project=$P")
[ -z "$left" ] || fail "containers left after down -v: $left"
left=$(podman network ls --format '{{.Name}}' | grep "^${P}_" || true)
[ -z "$left" ] || fail "networks left after down -v: $left"
left=$(podman volume ls --format '{{.Name}}' | grep "^${P}_" || true)
[ -z "$left" ] || fail "volumes left after down -v: $left"
ok "down -v in $(( $(date +%s) - t0 )) s: no container, network or volume of $P left"
echo "timing: compose-test $(elapsed)" >&2
ok "compose test passed in $(elapsed)"
exit 0
