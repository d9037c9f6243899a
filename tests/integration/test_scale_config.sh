#!/bin/sh
# The deployment files are valid and say what README "Deploy" promises,
# without a Docker engine: compose.yaml through Debian's docker-compose
# (`config -q`, then the normalised output read with PyYAML), haproxy.cfg
# through `haproxy -c`, and the runtime packages named in deploy/Dockerfile
# against the Debian 12 packages this machine runs the daemons with.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TMP=$(mktemp -d "${TMPDIR:-/tmp}/flagcast-scalecfg.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok: $*"; }

command -v docker-compose >/dev/null || fail "docker-compose is required (scripts/deps.sh installs it)"
command -v haproxy >/dev/null || fail "haproxy is required (scripts/deps.sh installs it)"
cd "$ROOT" || fail "cd $ROOT"

# ---- compose: valid with the admin tokens, refused without them
FLAGCAST_ADMIN_TOKENS=t1 docker-compose -f compose.yaml config -q >"$TMP/q.out" 2>&1 ||
    fail "docker-compose config -q: $(cat "$TMP/q.out")"
if env -u FLAGCAST_ADMIN_TOKENS docker-compose -f compose.yaml config -q >"$TMP/noadmin.out" 2>&1; then
    fail "compose.yaml accepted without FLAGCAST_ADMIN_TOKENS"
fi
grep -q FLAGCAST_ADMIN_TOKENS "$TMP/noadmin.out" || fail "no clear error without FLAGCAST_ADMIN_TOKENS: $(cat "$TMP/noadmin.out")"
ok "docker-compose config -q (and a clear refusal without FLAGCAST_ADMIN_TOKENS)"

# ---- compose: the topology, as docker-compose resolves it
FLAGCAST_ADMIN_TOKENS=t1 docker-compose -f compose.yaml config >"$TMP/compose.yaml" 2>"$TMP/c.err" ||
    fail "docker-compose config: $(cat "$TMP/c.err")"
python3 - "$TMP/compose.yaml" <<'EOF' || fail "compose.yaml content (above)"
import sys, yaml

c = yaml.safe_load(open(sys.argv[1]))
s = c["services"]
bad = []
def want(cond, what):
    if not cond:
        bad.append(what)

want(set(s) == {"redis", "publisher", "gateway", "lb"}, "services are redis, publisher, gateway, lb: %s" % sorted(s))
for name, svc in s.items():
    hc = svc.get("healthcheck", {})
    want(hc.get("test") and not hc.get("disable"), name + ": has a healthcheck")
    want(svc.get("restart") == "unless-stopped", name + ": restart unless-stopped")

def published(svc):
    return {(str(p.get("published")), int(p.get("target"))) for p in svc.get("ports", [])}

want(published(s["lb"]) == {("8080", 8080)}, "lb publishes 8080: %s" % published(s["lb"]))
want(published(s["publisher"]) == {("8081", 8081)}, "publisher publishes 8081")
want(not s["gateway"].get("ports"), "gateway publishes no port (clients come through lb; --scale needs that)")
want(not s["gateway"].get("container_name"), "gateway has no container_name (it must scale)")

r = s["redis"]
cmd = " ".join(r.get("command", []))
want("--appendonly yes" in cmd, "redis runs with AOF (--appendonly yes)")
def is_data_volume(v):   # docker-compose 1.29 prints "redis-data:/data:rw"
    if isinstance(v, str):
        return v.split(":")[:2] == ["redis-data", "/data"]
    return v.get("target") == "/data" and v.get("source") == "redis-data"
want(any(is_data_volume(v) for v in r.get("volumes", [])),
     "redis keeps /data on a named volume")
want("redis-data" in (c.get("volumes") or {}), "volume redis-data declared")
want(str(r.get("image", "")).startswith("redis:7"), "redis is Redis 7")

for name in ("publisher", "gateway"):
    env = s[name].get("environment", {})
    want(env.get("FLAGCAST_REDIS_URL") == "redis://redis:6379", name + ": FLAGCAST_REDIS_URL points at the redis service")
    want(s[name].get("depends_on", {}).get("redis", {}).get("condition") == "service_healthy",
         name + ": waits for a healthy redis")
want(s["publisher"]["environment"].get("FLAGCAST_ADMIN_TOKENS") == "t1", "publisher gets FLAGCAST_ADMIN_TOKENS")
want(s["publisher"]["environment"].get("FLAGCAST_LISTEN") == "0.0.0.0:8081", "publisher listens on all interfaces")

g = s["gateway"]
genv = g["environment"]
want(genv.get("FLAGCAST_LISTEN") == "0.0.0.0:8080", "gateway listens on 0.0.0.0:8080")
delay = int(genv.get("FLAGCAST_DRAIN_DELAY", "2"))
window = int(genv.get("FLAGCAST_DRAIN_SECONDS", "10"))
grace = g.get("stop_grace_period", "10s")
def seconds(t):
    t = str(t)
    if t.endswith("ms"):
        return float(t[:-2]) / 1000
    if t.endswith("m"):
        return float(t[:-1]) * 60
    return float(t.rstrip("s"))
want(seconds(grace) > delay + window + 1,
     "gateway stop_grace_period %s exceeds drain delay %d s + window %d s (else SIGKILL cuts the drain)"
     % (grace, delay, window))
want(int(g.get("ulimits", {}).get("nofile", {}).get("soft", 0)) >= 100000, "gateway nofile >= 100000")
want("build" in s["publisher"] and s["publisher"]["build"].get("target") == "runtime", "publisher builds the runtime stage")
want(g.get("image") == s["publisher"].get("image"), "gateway uses the image the publisher service builds")
want(s["lb"].get("build", {}).get("target") == "lb", "lb builds the lb stage")
for name in ("publisher", "lb"):
    want(s[name]["build"].get("dockerfile") == "deploy/Dockerfile", name + ": built from deploy/Dockerfile")

if bad:
    print("\n".join("compose.yaml: " + b for b in bad), file=sys.stderr)
    sys.exit(1)
EOF
ok "compose.yaml: four services with healthchecks, ports 8080/8081, Redis AOF on a volume, scalable gateway, drain fits stop_grace_period"

# ---- haproxy.cfg as shipped
haproxy -c -f deploy/haproxy.cfg >"$TMP/h.out" 2>&1 || fail "haproxy -c: $(cat "$TMP/h.out")"
for want in 'balance leastconn' 'option httpchk GET /readyz' 'option forwardfor' 'timeout tunnel' \
            'server-template gw [0-9]* gateway:8080' 'retry-on .*503' 'option redispatch'; do
    grep -q "^ *$want" deploy/haproxy.cfg || fail "haproxy.cfg lacks: $want"
done
ok "haproxy -c deploy/haproxy.cfg"

# ---- Dockerfile: stages, non-root user, runtime packages are real Debian 12 names
for stage in build lb runtime; do
    grep -Eq "^FROM debian:12-slim AS $stage\$" deploy/Dockerfile || fail "Dockerfile: no $stage stage on debian:12-slim"
done
[ "$(grep -c '^USER ' deploy/Dockerfile)" = 2 ] || fail "Dockerfile: lb and runtime must each set a non-root USER"
grep -q '^USER root' deploy/Dockerfile && fail "Dockerfile: USER root"
pkgs=$(awk '/^FROM .* AS runtime/ { r = 1 } r && /install -y/ { i = 1; next } i { print } i && !/\\$/ { i = 0 }' \
       deploy/Dockerfile | tr -d '\\&' | tr ' ' '\n' | grep -E '^lib' | sort -u)
[ -n "$pkgs" ] || fail "Dockerfile: no runtime packages found"
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
        fail "Dockerfile runtime package $p is not the Debian 12 package the daemons run with here"
done
# Every shared library the binaries link must come from one of those
# packages or their (installed, recursive) dependencies: what apt-get would
# pull in the runtime stage.
closure=$pkgs
todo=$pkgs
while [ -n "$todo" ]; do
    next=""
    for p in $todo; do
        deps=$(dpkg-query -W -f='${Depends},${Pre-Depends}' "$p" 2>/dev/null |
               tr ',|' '\n\n' | sed 's/(.*)//; s/:any//; s/ //g' | grep -v '^$' | sort -u)
        for d in $deps; do
            echo "$closure" | grep -qx "$d" && continue
            dpkg-query -W -f='${Status}' "$d" 2>/dev/null | grep -q 'install ok installed' || continue
            closure=$(printf '%s\n%s' "$closure" "$d"); next="$next $d"
        done
    done
    todo=$next
done
BIN=${FLAGCAST_BIN:-$ROOT/bin}
for b in flagcast-gateway flagcast-publisher flagcast; do
    [ -x "$BIN/$b" ] || fail "$BIN/$b not built"
    ldd "$BIN/$b" | awk '/=> \// { print $3 }' | while read -r lib; do
        owner=$(dpkg -S "$(readlink -f "$lib")" 2>/dev/null || dpkg -S "$lib" 2>/dev/null) || continue
        owner=${owner%%:*}
        case "$owner" in libasan*|libubsan*|libstdc++6|libc6|libgcc-s1) continue ;; esac   # sanitizer runtime, libc
        echo "$closure" | grep -qx "$owner" || { echo "$b needs $owner ($lib)"; exit 1; }
    done >"$TMP/ldd.out" || fail "Dockerfile runtime stage misses a library: $(cat "$TMP/ldd.out")"
done
ok "Dockerfile: build/lb/runtime stages on Debian 12, non-root, runtime packages cover the binaries' libraries"
# the context filter: BuildKit reads deploy/Dockerfile.dockerignore, the
# classic builders (docker-compose 1.29, podman) .dockerignore
grep -v '^#' .dockerignore >"$TMP/di.root"; grep -v '^#' deploy/Dockerfile.dockerignore >"$TMP/di.deploy"
cmp -s "$TMP/di.root" "$TMP/di.deploy" || fail ".dockerignore and deploy/Dockerfile.dockerignore differ: $(diff "$TMP/di.root" "$TMP/di.deploy")"
ok ".dockerignore says what deploy/Dockerfile.dockerignore says"
exit 0
