#!/bin/sh
# Installs the Debian 12 packages flagcast needs to build, test and run, if any
# is missing. Called by make, make test and make run; quick when all is there.
# With FLAGCAST_COMPOSE_DEPS=1 (make compose-deps, before make compose-test
# and make fresh-check) also what running compose.yaml under podman takes.
set -e

# Image builds and packagers that provide the packages themselves set this.
[ "${FLAGCAST_SKIP_DEPS:-}" = 1 ] && exit 0

PKGS="build-essential pkg-config gcc make
libhiredis-dev libevent-dev libwebsockets-dev libmsgpack-dev check libsubunit-dev
libjansson-dev libjwt-dev zlib1g-dev
redis-server curl clang libclang-rt-14-dev haproxy docker-compose
python3 python3-yaml git jq ca-certificates openssl procps
nodejs npm"
# podman without iptables fails ("netavark: No such file or directory"); runc,
# not crun (deploy/podman/containers.conf); debootstrap makes the base image.
if [ "${FLAGCAST_COMPOSE_DEPS:-}" = 1 ]; then
    PKGS="$PKGS podman netavark aardvark-dns conmon catatonit iptables runc docker-compose debootstrap"
fi

missing=""
for p in $PKGS; do
    st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    case "$st" in
        *"install ok installed"*) ;;
        *) missing="$missing $p" ;;
    esac
done

# node and npm may come from outside Debian (a preinstalled toolchain); that is fine.
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
    missing=$(printf '%s\n' $missing | grep -vx -e nodejs -e npm | tr '\n' ' ')
fi
missing=$(echo $missing)
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
    echo "deps: missing Debian packages: $missing" >&2
    echo "deps: run as root, or: sudo apt-get install $missing" >&2
    exit 1
fi
echo "deps: installing $missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends $missing >/dev/null
