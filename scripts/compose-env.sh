# compose-env.sh — sourced (POSIX sh) by tests/compose/run.sh and
# scripts/fresh-check.sh: podman set up from the project's own files, the
# base images made locally, and podman's Docker-compatible API for
# docker-compose.
#
# Nothing under /etc changes: podman reads deploy/podman/containers.conf
# through CONTAINERS_CONF. No image registry is needed:
#   docker.io/library/debian:12-slim  debootstrap --variant=minbase bookworm
#                                     from the Debian mirror apt uses here,
#                                     imported (tarball cached)
#   docker.io/library/redis:7.0       a stand-in built from Debian's
#                                     redis-server 7.0 (deploy/podman/)
# An image of that name already present (a real one, or an earlier run's)
# is used as it is. The debootstrap tarball is cached in $FLAGCAST_CACHE
# (default /var/cache/flagcast), outside the checkout so that every clone on
# the machine shares it; images stay in podman's storage. An empty cache
# just takes longer (about a minute for debootstrap).
#
# Needs root and the packages scripts/deps.sh installs with
# FLAGCAST_COMPOSE_DEPS=1 (make compose-deps).

: "${CE_ROOT:?set CE_ROOT to the checkout before sourcing scripts/compose-env.sh}"
FLAGCAST_CACHE=${FLAGCAST_CACHE:-/var/cache/flagcast}
CE_BASE=docker.io/library/debian:12-slim
CE_REDIS=docker.io/library/redis:7.0
export CONTAINERS_CONF="$CE_ROOT/deploy/podman/containers.conf"

ce_log() { echo "compose-env: $*" >&2; }
ce_die() { echo "compose-env: $*" >&2; exit 1; }

ce_check() {
    [ "$(id -u)" = 0 ] || ce_die "needs root (podman runs rootful here)"
    for c in podman docker-compose debootstrap iptables runc conmon flock curl; do
        command -v "$c" >/dev/null 2>&1 || ce_die "$c is missing: run make compose-deps (scripts/deps.sh with FLAGCAST_COMPOSE_DEPS=1)"
    done
    [ -f "$CONTAINERS_CONF" ] || ce_die "$CONTAINERS_CONF is missing"
    mkdir -p "$FLAGCAST_CACHE" || ce_die "cannot create the cache $FLAGCAST_CACHE (set FLAGCAST_CACHE)"
}

# The Debian mirror apt uses on this machine (deb822 or one-line sources).
ce_mirror() {
    _m=$(awk '/^URIs:/ && !f { for (i = 2; i <= NF; i++) if ($i !~ /security/) { print $i; f = 1; exit } }' \
             /etc/apt/sources.list.d/*.sources 2>/dev/null)
    [ -n "$_m" ] || _m=$(awk '$1 == "deb" && $0 !~ /security/ { for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) { print $i; exit } }' \
             /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null)
    [ -n "$_m" ] || ce_die "found no Debian mirror in /etc/apt/sources.list*"
    echo "$_m"
}

# Run "$@" holding the cache lock (one image preparation at a time).
ce_locked() {
    flock -w 1200 "$FLAGCAST_CACHE/.lock" "$@"
}

# ce_timed NAME CMD...: runs CMD, prints how long it took (for the report).
ce_timed() {
    _n=$1; shift
    _t0=$(date +%s)
    "$@" || return $?
    echo "timing: $_n $(( $(date +%s) - _t0 )) s" >&2
}

ce_debootstrap() {
    _tar="$FLAGCAST_CACHE/debian-12-minbase.tar"
    [ -s "$_tar" ] && return 0
    _mirror=$(ce_mirror) || exit 1
    _dir=$(mktemp -d "$FLAGCAST_CACHE/debootstrap.XXXXXX")
    ce_log "debootstrap --variant=minbase bookworm $_mirror (cache was empty)"
    if ! timeout 900 debootstrap --variant=minbase bookworm "$_dir/root" "$_mirror" >"$_dir/log" 2>&1; then
        tail -20 "$_dir/log" >&2; rm -rf "$_dir"; ce_die "debootstrap failed"
    fi
    # the same sources as the host (updates, security), then slim it down
    if ls /etc/apt/sources.list.d/*.sources >/dev/null 2>&1; then
        cat /etc/apt/sources.list.d/*.sources >"$_dir/root/etc/apt/sources.list.d/debian.sources"
        rm -f "$_dir/root/etc/apt/sources.list"
    fi
    rm -rf "$_dir"/root/var/lib/apt/lists/* "$_dir"/root/var/cache/apt/*.bin \
           "$_dir"/root/var/cache/apt/archives/*.deb "$_dir"/root/var/log/*.log
    tar -C "$_dir/root" --numeric-owner -cf "$_dir/base.tar" . || { rm -rf "$_dir"; ce_die "tar of the base failed"; }
    mv "$_dir/base.tar" "$_tar"
    rm -rf "$_dir"
}

ce_base_image() {
    podman image exists "$CE_BASE" && return 0
    ce_timed debootstrap ce_debootstrap || exit 1
    podman import --change 'CMD ["bash"]' "$FLAGCAST_CACHE/debian-12-minbase.tar" "$CE_BASE" \
        >"$FLAGCAST_CACHE/import.log" 2>&1 || { cat "$FLAGCAST_CACHE/import.log" >&2; ce_die "podman import of the base failed"; }
}

# A stand-in from an older deploy/podman/redis-standin.Containerfile is
# rebuilt; any other image of that name (a real one) is used as it is.
ce_redis_image() {
    _sum=$(sha256sum <"$CE_ROOT/deploy/podman/redis-standin.Containerfile" | cut -c1-16)
    if podman image exists "$CE_REDIS"; then
        _have=$(podman image inspect -f '{{index .Labels "org.flagcast.standin"}}/{{index .Labels "org.flagcast.standin.sum"}}' "$CE_REDIS" 2>/dev/null)
        case "$_have" in */"$_sum"|"/"|"<no value>/<no value>") return 0 ;; esac   # current stand-in, or a real image
    fi
    _ctx=$(mktemp -d)
    ce_log "building the redis:7.0 stand-in from Debian's redis-server"
    if ! timeout 900 podman build -q --network host -t "$CE_REDIS" --label "org.flagcast.standin.sum=$_sum" \
             -f "$CE_ROOT/deploy/podman/redis-standin.Containerfile" "$_ctx" >"$_ctx.log" 2>&1; then
        tail -20 "$_ctx.log" >&2; rm -rf "$_ctx" "$_ctx.log"; ce_die "building the redis stand-in failed"
    fi
    rm -rf "$_ctx" "$_ctx.log"
}

# ce_images: both base images, made if missing (under the cache lock).
ce_images() {
    ce_check
    ce_locked sh -c 'CE_ROOT=$0 FLAGCAST_CACHE=$1; . "$CE_ROOT/scripts/compose-env.sh"
        ce_base_image
        ce_timed redis-standin ce_redis_image' "$CE_ROOT" "$FLAGCAST_CACHE" || ce_die "preparing the base images failed"
}

# ce_service_start DIR: podman's Docker API on DIR/podman.sock for
# docker-compose (DOCKER_HOST is exported); ce_service_stop ends it.
CE_SVC_PID=""
ce_service_start() {
    CE_SOCK="$1/podman.sock"
    podman system service --time=0 "unix://$CE_SOCK" >"$1/podman-service.log" 2>&1 &
    CE_SVC_PID=$!
    _i=0
    until curl -sf --unix-socket "$CE_SOCK" http://d/_ping >/dev/null 2>&1; do
        kill -0 "$CE_SVC_PID" 2>/dev/null || { cat "$1/podman-service.log" >&2; ce_die "podman system service exited"; }
        _i=$((_i + 1)); [ $_i -lt 300 ] || ce_die "podman system service did not answer on $CE_SOCK in 30 s"
        sleep 0.1
    done
    export DOCKER_HOST="unix://$CE_SOCK"
}

ce_service_stop() {
    [ -n "$CE_SVC_PID" ] || return 0
    kill "$CE_SVC_PID" 2>/dev/null
    _i=0
    while kill -0 "$CE_SVC_PID" 2>/dev/null && [ $_i -lt 100 ]; do sleep 0.1; _i=$((_i + 1)); done
    kill -9 "$CE_SVC_PID" 2>/dev/null
    wait "$CE_SVC_PID" 2>/dev/null
    CE_SVC_PID=""
}
