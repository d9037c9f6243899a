#!/bin/sh
# make fresh-check: the README's two commands on a fresh Debian 12 machine.
# A container from the debootstrap base (docker.io/library/debian:12-slim,
# scripts/compose-env.sh) gets a clean clone of this checkout's HEAD and
# nothing else but `make` (apt-get install make: Debian's minbase has no
# make); then, as the README says, as root:
#   make run    installs the missing packages, builds, starts; the smoke
#               test watches SSE, creates a flag with bin/flagcast, sees
#               flag.created arrive, and stops it with SIGINT (Ctrl-C)
#   make test   the whole suite, with FLAGCAST_NO_COMPOSE=1: podman cannot
#               start containers of its own in there, and the host's make
#               test runs compose-test
# The container has its own network namespace (its loopback is private, so
# its tests and make run's default ports meet nothing on the host) with NAT
# to the Debian mirror and the npm registry.
#
# Commits only: uncommitted changes are not in the clone (a line says so).
# Environment: FLAGCAST_CACHE (scripts/compose-env.sh; the container's apt
# downloads are copied to and from $FLAGCAST_CACHE/fresh-apt, a download
# cache only), FRESH_TIMEOUT (seconds, default 3600).
set -u
CE_ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$CE_ROOT/scripts/compose-env.sh"

T0=$(date +%s)
W=$(mktemp -d "${TMPDIR:-/tmp}/flagcast-fresh.XXXXXX")
NAME=flagcast-fresh-$(basename "$W" | cut -d. -f2 | tr 'A-Z' 'a-z')
cleanup() {
    trap - EXIT INT TERM
    podman rm -f -t 2 "$NAME" >/dev/null 2>&1
    rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
die() { echo "fresh-check: $*" >&2; exit 1; }

ce_check
ce_locked sh -c 'CE_ROOT=$0 FLAGCAST_CACHE=$1; . "$CE_ROOT/scripts/compose-env.sh"; ce_base_image' "$CE_ROOT" "$FLAGCAST_CACHE" ||
    die "no base image"

git -C "$CE_ROOT" rev-parse HEAD >/dev/null 2>&1 || die "$CE_ROOT is not a git checkout"
[ -z "$(git -C "$CE_ROOT" status --porcelain --untracked-files=no)" ] ||
    echo "fresh-check: uncommitted changes in $CE_ROOT are not checked (a clone of HEAD is)"
git clone -q --no-local "$CE_ROOT" "$W/flagcast" || die "git clone of $CE_ROOT failed"
git -C "$W/flagcast" checkout -q "$(git -C "$CE_ROOT" rev-parse HEAD)" || die "checkout of HEAD failed"
rm -rf "$W/flagcast/.git"   # the tree only, as a tarball of the release would be
mkdir -p "$FLAGCAST_CACHE/fresh-apt"
echo "fresh-check: $(git -C "$CE_ROOT" log -1 --format=%h) in a fresh Debian 12 container ($NAME)"

# What runs inside, as root, in /src/flagcast.
cat >"$W/inside.sh" <<'EOF'
set -eu
export DEBIAN_FRONTEND=noninteractive FLAGCAST_NO_COMPOSE=1
step() { echo "fresh-check: $*"; }
t() { echo $(( $(date +%s) - $1 )); }
t0=$(date +%s)
# apt's downloads from earlier runs (only a download cache: apt checks
# every .deb against the mirror's index as usual)
cp /apt-cache/*.deb /var/cache/apt/archives/ 2>/dev/null || true
keep_debs() {
    for f in /var/cache/apt/archives/*.deb; do
        [ -f "$f" ] && [ ! -f "/apt-cache/${f##*/}" ] || continue
        cp "$f" "/apt-cache/.${f##*/}.$$" && mv "/apt-cache/.${f##*/}.$$" "/apt-cache/${f##*/}"
    done 2>/dev/null || true
}
step "apt-get install make (the one thing the README assumes)"
apt-get update -qq && apt-get install -y -qq --no-install-recommends make >/dev/null
cd /src/flagcast

# ---- make run smoke --------------------------------------------------------
step "make run (installs packages, builds, starts)"
t1=$(date +%s)
# not a process group leader, so setsid execs make: $! leads its own group
setsid make run </dev/null >/tmp/run.out 2>&1 &
run=$!
i=0
until grep -q 'flagcast is running' /tmp/run.out; do
    i=$((i + 1))
    if [ $i -gt 2400 ] || ! kill -0 $run 2>/dev/null; then cat /tmp/run.out; step "make run did not start"; exit 1; fi
    sleep 0.5
done
step "make run is up after $(t $t1) s"
keep_debs
token=$(awk '/dev admin token:/ { print $NF }' /tmp/run.out)
[ -n "$token" ] || { cat /tmp/run.out; step "no token printed"; exit 1; }
: >/tmp/sse.out
curl -sN --max-time 60 http://127.0.0.1:8080/api/v1/realtime/sse >/tmp/sse.out 2>&1 &
sse=$!
i=0
until grep -q '^event: connection' /tmp/sse.out; do
    i=$((i + 1)); [ $i -lt 200 ] || { cat /tmp/sse.out; step "SSE stream did not open"; exit 1; }
    sleep 0.1
done
FLAGCAST_URL=http://127.0.0.1:8081 FLAGCAST_TOKEN=$token \
    bin/flagcast flags create fresh-ui '{"description":"fresh check"}' >/tmp/create.out 2>&1 ||
    { cat /tmp/create.out; step "bin/flagcast flags create failed"; exit 1; }
i=0
until grep -q '^event: flag.created' /tmp/sse.out && grep -q '"flagKey":"fresh-ui"' /tmp/sse.out; do
    i=$((i + 1)); [ $i -lt 200 ] || { cat /tmp/sse.out; step "flag.created did not arrive"; exit 1; }
    sleep 0.1
done
kill $sse 2>/dev/null || true
kill -s INT -- "-$run"   # Ctrl-C: the whole group
i=0
until grep -q 'run: stopped' /tmp/run.out; do
    i=$((i + 1)); [ $i -lt 200 ] || { cat /tmp/run.out; step "make run did not stop on SIGINT"; exit 1; }
    sleep 0.1
done
step "make run smoke passed: SSE open, bin/flagcast flags create -> flag.created arrived, Ctrl-C stopped it ($(t $t1) s)"
echo "timing: fresh-run $(t $t1) s"

# ---- make test -------------------------------------------------------------
step "make test (FLAGCAST_NO_COMPOSE=1)"
t2=$(date +%s)
make test
echo "timing: fresh-test $(t $t2) s"
step "2 passed, 0 failed"
EOF

# The machine's own TLS trust goes in with it, as on any machine of this
# kind: its extra CAs (/usr/local/share/ca-certificates, which the
# ca-certificates package adds to the container's bundle once deps.sh
# installs it) and the bundle for node/npm (NODE_EXTRA_CA_CERTS), without
# which npm cannot reach the registry through this workplace's egress.
set --
[ -d /usr/local/share/ca-certificates ] &&
    set -- "$@" -v /usr/local/share/ca-certificates:/usr/local/share/ca-certificates:ro
[ -f /etc/ssl/certs/ca-certificates.crt ] &&
    set -- "$@" -v /etc/ssl/certs/ca-certificates.crt:/etc/flagcast-host-ca.crt:ro -e NODE_EXTRA_CA_CERTS=/etc/flagcast-host-ca.crt
# in the background: a signal to this script runs the trap (removes it)
timeout "${FRESH_TIMEOUT:-3600}" podman run --rm --name "$NAME" \
    -v "$W/flagcast:/src/flagcast" -v "$W/inside.sh:/inside.sh:ro" \
    -v "$FLAGCAST_CACHE/fresh-apt:/apt-cache" "$@" \
    -e CI="${CI:-}" \
    docker.io/library/debian:12-slim sh /inside.sh </dev/null &
wait $!
rc=$?
echo "timing: fresh-check $(( $(date +%s) - T0 )) s"
[ $rc = 0 ] || die "failed (exit $rc)"
echo "fresh-check: passed: make run and make test on a fresh Debian 12"
exit 0
