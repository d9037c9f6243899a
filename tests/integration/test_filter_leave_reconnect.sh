#!/bin/sh
# A flag leaving a filter while the gateway's pub/sub connection is away
# (found by the chaos checker, tests/chaos): `CLIENT KILL TYPE pubsub`, then
# k1 loses tag "ops" (and a later change) during the resubscribe. The fill
# from history delivers the change; a ?tags=ops client must get it (the flag
# left its filter). The old gateway reloaded its flags mirror at every
# resubscribe, so the fill compared the change with the reloaded (newer)
# record, found no move between filters, and the ops client kept k1 as an
# ops flag for good.
. "$(dirname "$0")/harness.sh"

node_deps
start_redis
start_publisher
api POST /api/v1/flags '{"key":"k1","enabled":true,"tags":["ops"]}'
api POST /api/v1/flags '{"key":"k2","enabled":true,"tags":["ops"]}'
start_gateway
sse O '/api/v1/realtime/sse?tags=ops'
wait_until 10 "O snapshot" sse_has O '^snapshot k1,k2'
api PUT /api/v1/flags/k2/enabled '{"enabled":false}'   # a live event: position known
wait_until 10 "O k2 toggle" sse_has O '^flag.toggled flags k2'

for round in 1 2 3; do
    # the gateway stopped, so that the changes fall into its reconnect
    kill -STOP "$GW_PID"
    redis-cli -p "$REDIS_PORT" client kill type pubsub >/dev/null
    api PUT /api/v1/flags/k1 "{\"tags\":[\"web\"],\"description\":\"r$round\"}"  # leaves ops
    api PUT /api/v1/flags/k1/enabled '{"enabled":false}'                                  # not ops: not sent
    kill -CONT "$GW_PID"
    wait_until 10 "resubscribed (round $round)" sh -c "[ \"\$(redis-cli -p $REDIS_PORT pubsub numsub flagcast:ch:flags | sed -n 2p)\" = 1 ]"
    api PUT /api/v1/flags/k2/enabled "{\"enabled\":$([ $((round % 2)) = 1 ] && echo true || echo false)}"
    wait_until 10 "O k2 toggle (round $round)" sh -c "[ \$(node '$GW_DIR/sse_parse.js' '$TMP/O.sse' | grep -c '^flag.toggled flags k2') -ge $((round + 1)) ]"
    api PUT /api/v1/flags/k1 '{"tags":["ops"],"enabled":true}'   # back in ops, live
done

sse_lines O | grep '^flag\.' | awk '{ print $1, $3 }' >"$TMP/O.got"
expect O "$TMP/O.got" 'flag.toggled k2
flag.updated k1
flag.toggled k2
flag.updated k1
flag.updated k1
flag.toggled k2
flag.updated k1
flag.updated k1
flag.toggled k2
flag.updated k1'
ok "k1 leaving tags=ops during pub/sub reconnects reaches the ops client, in order"
kill -0 "$GW_PID" || fail "gateway died"
