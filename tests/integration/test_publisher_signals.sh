#!/bin/sh
# A publisher that gets SIGTERM again and again while it stops (a supervisor
# retrying, docker stop racing a Ctrl-C) still exits 0: the signals after the
# first are ignored, also during the teardown after the drain, when
# libevent's signal events are already freed (before the fix, 9 runs in 20
# died by SIGTERM, status 143).
. "$(dirname "$0")/harness.sh"

start_redis
i=0
while [ $i -lt 10 ]; do
    start_publisher
    n=0   # bounded: a shell that leaves the exited child a zombie must not loop forever
    while [ $n -lt 100000 ] && kill -TERM "$PUB_PID" 2>/dev/null; do n=$((n + 1)); done
    wait "$PUB_PID"; st=$?
    [ "$st" = 0 ] || fail "run $i: the publisher exited with status $st under repeated SIGTERM"
    grep -q "publisher stopped" "$TMP/publisher.log" || fail "run $i: no clean stop in the log"
    i=$((i + 1))
done
ok "10 publishers under repeated SIGTERM all exited 0"
