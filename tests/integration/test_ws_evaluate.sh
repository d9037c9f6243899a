#!/bin/sh
# The WebSocket `evaluate` message against the real publisher and gateway:
# flags created through the publisher, evaluated over WebSocket in JSON and
# msgpack; the results are those of POST /api/v1/evaluation/batch (the same
# evalapi code); an unknown key, bad requests, the identity rule.
. "$(dirname "$0")/harness.sh"

node_deps
command -v jq >/dev/null || fail "jq is required"
start_redis
start_publisher
api POST /api/v1/flags '{"key":"dark","enabled":true,"tags":["web"],
  "variants":[{"key":"on"},{"key":"off"}],
  "segments":[{"rank":1,"rolloutPercent":100,
    "constraints":[{"property":"tier","operator":"EQ","value":"pro"}],
    "distributions":[{"variantKey":"on","percent":100}]}]}'
api POST /api/v1/flags '{"key":"color","enabled":true,
  "variants":[{"key":"red","attachment":{"hex":"#c00"}}],
  "segments":[{"rank":1,"rolloutPercent":100,"distributions":[{"variantKey":"red","percent":100}]}]}'
start_gateway FLAGCAST_THREADS=2

REQS='{"type":"evaluate","id":"r1","flagKeys":["dark","color","nope"],"entityID":"u1","entityType":"user","entityContext":{"tier":"pro"}}
{"type":"evaluate","id":2,"flagKeys":["dark"],"entityID":"u2","entityContext":{"tier":"free"}}
{"type":"evaluate","id":3}
{"type":"evaluate","id":4,"flagKeys":["dark"],"entityContext":"x"}
{"type":"evaluate","flagKeys":["dark"],"entities":[]}'

# the batch API's answer for the first request, to compare shapes with
curl -s -X POST -H 'Content-Type: application/json' --data-binary \
    '{"flagKeys":["dark","color","nope"],"entities":[{"entityID":"u1","entityType":"user","entityContext":{"tier":"pro"}}]}' \
    "$GW/api/v1/evaluation/batch" >"$TMP/batch.json"
strip='[.[] | del(.timestamp)]'

for proto in flagcast.json flagcast.msgpack; do
    echo "$REQS" | node "$GW_DIR/ws_eval.js" "$WSURL/ws" "$proto" >"$TMP/ws.out" 2>&1 ||
        fail "$proto client: $(cat "$TMP/ws.out")"
    [ "$(wc -l <"$TMP/ws.out")" -eq 5 ] || fail "$proto: 5 replies expected: $(cat "$TMP/ws.out")"
    r1=$(sed -n 1p "$TMP/ws.out")
    [ "$(echo "$r1" | jq -c '[.type,.id,(.results|length)]')" = '["evaluation","r1",3]' ] ||
        fail "$proto first reply: $r1"
    [ "$(echo "$r1" | jq -c '[.results[] | [.flagKey,.variantKey,.evalContext.entityID,.evalContext.entityType]]')" = \
      '[["dark","on","u1","user"],["color","red","u1","user"],["nope",null,"u1","user"]]' ] ||
        fail "$proto results: $r1"
    echo "$r1" | jq -e '.results[0].segmentID > 0 and .results[0].variantID > 0 and .results[0].flagID > 0
        and .results[1].variantAttachment.hex == "#c00" and .results[2].segmentID == null' >/dev/null ||
        fail "$proto ids/attachment: $r1"
    [ "$(echo "$r1" | jq -c ".results | $strip")" = "$(jq -c ".evaluationResults | $strip" "$TMP/batch.json")" ] ||
        fail "$proto: not the batch API's results: $r1 vs $(cat "$TMP/batch.json")"
    [ "$(sed -n 2p "$TMP/ws.out" | jq -c '[.id,.results[0].variantKey,.results[0].evalContext.entityID]')" = '[2,null,"u2"]' ] ||
        fail "$proto no match: $(sed -n 2p "$TMP/ws.out")"
    for n in 3 4 5; do
        [ "$(sed -n ${n}p "$TMP/ws.out" | jq -r '[.type,.code]|join(" ")')" = "error bad_message" ] ||
            fail "$proto bad request $n: $(sed -n ${n}p "$TMP/ws.out")"
    done
    sed -n 3p "$TMP/ws.out" | grep -q flagKeys || fail "$proto: the error names flagKeys"
done
ok "evaluate over JSON and msgpack: batch results, unknown key, no match, bad requests"

# ---- identity: a token without the evaluator role evaluates its own subject
kill "$GW_PID"; wait "$GW_PID" 2>/dev/null
start_gateway FLAGCAST_AUTH=required 'FLAGCAST_API_KEYS=k-alice=alice:beta,k-svc=svc:evaluator'
Q='{"type":"evaluate","flagKeys":["dark"],"entityID":"bob","entityContext":{"tier":"pro"}}'
echo "$Q" | BEARER=k-alice node "$GW_DIR/ws_eval.js" "$WSURL/ws" flagcast.json >"$TMP/ws.out" 2>&1
[ "$(jq -c '[.results[0].evalContext.entityID,.results[0].variantKey]' "$TMP/ws.out")" = '["alice","on"]' ] ||
    fail "bound to sub: $(cat "$TMP/ws.out")"
echo "$Q" | BEARER=k-svc node "$GW_DIR/ws_eval.js" "$WSURL/ws" flagcast.msgpack >"$TMP/ws.out" 2>&1
[ "$(jq -c '.results[0].evalContext.entityID' "$TMP/ws.out")" = '"bob"' ] ||
    fail "evaluator role: $(cat "$TMP/ws.out")"
ok "identity: entity = sub without the evaluator role, as named with it"

echo "PASS test_ws_evaluate"
