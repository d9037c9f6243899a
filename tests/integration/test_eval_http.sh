#!/bin/sh
# The evaluation API against the real publisher and gateway: flags created
# through the publisher, evaluated with curl from the gateway's mirror.
# Flagent single / batch / debug, OFREP single / bulk / ETag / 304 / errors,
# CORS for POST, 405 and 413, a flag change seen by the next evaluation,
# and the stock OpenFeature server SDK + OFREP provider in node.
. "$(dirname "$0")/harness.sh"

node_deps
[ -d "$GW_DIR/node_modules/@openfeature/ofrep-provider" ] ||
    (cd "$GW_DIR" && npm ci --no-audit --no-fund --loglevel=error >/dev/null 2>&1) ||
    fail "npm ci in $GW_DIR failed"
command -v jq >/dev/null || fail "jq is required"
start_redis
start_publisher
# dark: one segment, 100% to "on" for tier=pro (typed boolean by its key)
api POST /api/v1/flags '{"key":"dark","enabled":true,"tags":["web"],
  "variants":[{"key":"on"},{"key":"off"}],
  "segments":[{"rank":1,"rolloutPercent":100,
    "constraints":[{"property":"tier","operator":"EQ","value":"pro"}],
    "distributions":[{"variantKey":"on","percent":100}]}]}'
# color: a string value from the attachment, to everyone
api POST /api/v1/flags '{"key":"color","enabled":true,"tags":["web","ui"],
  "variants":[{"key":"red","attachment":{"value":"crimson","hex":"#c00"}}],
  "segments":[{"rank":1,"rolloutPercent":100,"distributions":[{"variantKey":"red","percent":100}]}]}'
# split: 50/50 by entity bucket
api POST /api/v1/flags '{"key":"split","enabled":true,
  "variants":[{"key":"a"},{"key":"b"}],
  "segments":[{"rank":1,"rolloutPercent":100,
    "distributions":[{"variantKey":"a","percent":50},{"variantKey":"b","percent":50}]}]}'
api POST /api/v1/flags '{"key":"off-flag","enabled":false}'
start_gateway FLAGCAST_THREADS=2 FLAGCAST_MAX_BODY_BYTES=2048

# post PATH JSON [curl args...]: body into $TMP/out, headers into $TMP/h, code printed
post() {
    _p=$1; _d=$2; shift 2
    rm -f "$TMP/out"; : >"$TMP/out"   # curl writes nothing for an empty body
    curl -s -o "$TMP/out" -D "$TMP/h" -w '%{http_code}' -X POST \
        -H 'Content-Type: application/json' --data-binary "$_d" "$@" "$GW$_p"
}
jqo() { jq -c "$1" "$TMP/out"; }

# ---- Flagent single
code=$(post /api/v1/evaluation '{"flagKey":"dark","entityID":"u1","entityType":"user","entityContext":{"tier":"pro"}}')
[ "$code" = 200 ] || fail "evaluation answered $code: $(cat "$TMP/out")"
[ "$(jqo '[.flagKey,.variantKey,.flagSnapshotID,.flagTags,.evalContext.entityID,.evalContext.entityType,.evalContext.entityContext.tier,.evalDebugLog]')" = \
  '["dark","on",1,["web"],"u1","user","pro",null]' ] || fail "single result: $(cat "$TMP/out")"
jq -e '.flagID > 0 and .timestamp > 1700000000000 and .segmentID > 0 and .variantID > 0' "$TMP/out" >/dev/null ||
    fail "flagID/segmentID/variantID/timestamp: $(cat "$TMP/out")"
DARK_ID=$(jqo .flagID)
code=$(post /api/v1/evaluation "{\"flagID\":$DARK_ID,\"entityID\":\"u2\",\"entityContext\":{\"tier\":\"free\"}}")
[ "$code" = 200 ] && [ "$(jqo '[.flagKey,.variantKey,.variantAttachment]')" = '["dark",null,null]' ] ||
    fail "by flagID, no match: $code $(cat "$TMP/out")"
code=$(post /api/v1/evaluation '{"flagKey":"color","entityID":"u1"}')
[ "$(jqo '.variantAttachment')" = '{"value":"crimson","hex":"#c00"}' ] || fail "attachment: $(cat "$TMP/out")"
code=$(post /api/v1/evaluation '{"flagID":9999,"entityID":"u1"}')
[ "$code" = 200 ] && [ "$(jqo '[.flagID,.variantKey,.evalDebugLog.msg]')" = '[9999,null,"flagID 9999 not found or deleted"]' ] ||
    fail "unknown flag: $code $(cat "$TMP/out")"
code=$(post /api/v1/evaluation '{"flagKey":"split"}')
jq -e '.evalContext.entityID | startswith("randomly_generated_")' "$TMP/out" >/dev/null ||
    fail "no entityID: $(cat "$TMP/out")"
ok "Flagent single: by key, by id, attachment, unknown flag, generated entity"

# ---- Flagent debug
post /api/v1/evaluation '{"flagKey":"dark","entityID":"u2","entityContext":{"tier":"free"},"enableDebug":true}' >/dev/null
[ "$(jqo '.evalDebugLog.segmentDebugLogs | length')" = 1 ] || fail "debug log: $(cat "$TMP/out")"
jqo '.evalDebugLog.segmentDebugLogs[0].msg' | grep -q 'did not match constraints' || fail "debug msg: $(cat "$TMP/out")"
post /api/v1/evaluation '{"flagKey":"off-flag","entityID":"u2","enableDebug":true}' >/dev/null
jqo '.evalDebugLog.msg' | grep -q 'is not enabled' || fail "disabled debug msg: $(cat "$TMP/out")"
ok "Flagent enableDebug: evalDebugLog with segment logs"

# ---- Flagent batch
code=$(post /api/v1/evaluation/batch '{"entities":[{"entityID":"u1","entityContext":{"tier":"pro"}},{"entityID":"u2"}],"flagKeys":["dark"],"flagTags":["ui"]}')
[ "$code" = 200 ] || fail "batch answered $code: $(cat "$TMP/out")"
[ "$(jqo '[.evaluationResults[] | [.evalContext.entityID,.flagKey,.variantKey]]')" = \
  '[["u1","dark","on"],["u1","color","red"],["u2","dark",null],["u2","color","red"]]' ] ||
    fail "batch results: $(cat "$TMP/out")"
post /api/v1/evaluation/batch '{"entities":[{"entityID":"u1"}],"flagTags":["web","ui"],"flagTagsOperator":"ALL"}' >/dev/null
[ "$(jqo '[.evaluationResults[].flagKey]')" = '["color"]' ] || fail "tags ALL: $(cat "$TMP/out")"
code=$(post /api/v1/evaluation/batch '{"entities":[{"entityID":"u1"}]}')
[ "$code" = 400 ] && jqo .error | grep -q 'flagIDs, flagKeys or flagTags' || fail "batch without selector: $code $(cat "$TMP/out")"
code=$(post /api/v1/evaluation/batch '{"entities":[],"flagKeys":["dark"]}')
[ "$code" = 400 ] && jqo .error | grep -q entities || fail "batch without entities: $code $(cat "$TMP/out")"
ok "Flagent batch: entities x flags, tags ANY/ALL, 400s"

# ---- malformed requests, methods, limits
code=$(post /api/v1/evaluation '{"flagKey":')
[ "$code" = 400 ] && jqo .error | grep -q 'invalid JSON' || fail "malformed JSON: $code $(cat "$TMP/out")"
code=$(post /api/v1/evaluation '{"entityID":"u1"}')
[ "$code" = 400 ] || fail "no flag: $code"
code=$(post /api/v1/evaluation '{"flagKey":"dark","entityContext":[1]}')
[ "$code" = 400 ] || fail "entityContext array: $code"
big=$(head -c 3000 /dev/zero | tr '\0' 'x')
code=$(post /api/v1/evaluation "{\"flagKey\":\"dark\",\"entityID\":\"$big\"}")
[ "$code" = 413 ] || fail "body over FLAGCAST_MAX_BODY_BYTES answered $code"
code=$(curl -s -o /dev/null -w '%{http_code}' "$GW/api/v1/evaluation")
[ "$code" = 405 ] || fail "GET evaluation answered $code"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST --data '{}' "$GW/healthz")
[ "$code" = 405 ] || fail "POST /healthz answered $code (405 kept elsewhere)"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST --data '{}' "$GW/api/v1/realtime/sse")
[ "$code" = 405 ] || fail "POST sse answered $code"
# keep-alive: two POSTs on one connection
curl -s -o "$TMP/ka" -X POST -H 'Content-Type: application/json' --data '{"flagKey":"dark","entityID":"u1"}' \
    "$GW/api/v1/evaluation" --next -s -o "$TMP/ka2" -X POST --data '{"flagKey":"color","entityID":"u1"}' \
    "$GW/api/v1/evaluation"
jq -e '.flagKey == "color"' "$TMP/ka2" >/dev/null || fail "second POST on a kept-alive connection: $(cat "$TMP/ka2")"
# pipelined POSTs: the first answered, then closed (no spin: the gateway stays idle)
python3 "$GW_DIR/pipeline_post.py" "$GW_PORT" >"$TMP/pipe.out" 2>&1
[ "$(cat "$TMP/pipe.out")" = "HTTP/1.1 200 OK" ] || fail "pipelined POSTs: $(cat "$TMP/pipe.out")"
sleep 1
cpu=$(ps -p "$GW_PID" -o %cpu= | tr -d ' ')
[ "${cpu%%.*}" -lt 20 ] || fail "gateway at ${cpu}% CPU after pipelined POSTs"
is_code 200 "$GW/healthz" || fail "gateway unresponsive after pipelined POSTs"
ok "400 malformed JSON / bad types, 413 over the body limit, 405 elsewhere, keep-alive, pipelined POSTs"

# ---- CORS for POST
code=$(curl -s -o /dev/null -D "$TMP/pre.h" -w '%{http_code}' -X OPTIONS -H 'Origin: https://app.example' \
    -H 'Access-Control-Request-Method: POST' -H 'Access-Control-Request-Headers: content-type,if-none-match' \
    "$GW/ofrep/v1/evaluate/flags")
[ "$code" = 204 ] || fail "preflight answered $code"
grep -qi '^access-control-allow-methods: .*POST' "$TMP/pre.h" || fail "preflight methods: $(cat "$TMP/pre.h")"
grep -qi '^access-control-allow-headers: .*Content-Type.*If-None-Match' "$TMP/pre.h" || fail "preflight headers"
grep -qi '^access-control-max-age' "$TMP/pre.h" || fail "preflight max-age"
post /ofrep/v1/evaluate/flags '{"context":{"targetingKey":"u1"}}' -H 'Origin: https://app.example' >/dev/null
grep -qi '^access-control-expose-headers: .*ETag' "$TMP/h" || fail "ETag not exposed: $(cat "$TMP/h")"
grep -qi '^access-control-allow-origin: https://app.example' "$TMP/h" || fail "POST without CORS"
ok "CORS: preflight allows POST, Content-Type, If-None-Match; ETag exposed"

# ---- OFREP single
code=$(post /ofrep/v1/evaluate/flags/dark '{"context":{"targetingKey":"u1","tier":"pro"}}')
[ "$code" = 200 ] && [ "$(jqo '[.key,.value,.variant,.reason]')" = '["dark",true,"on","TARGETING_MATCH"]' ] ||
    fail "OFREP dark: $code $(cat "$TMP/out")"
post /ofrep/v1/evaluate/flags/color '{"context":{"targetingKey":"u1"}}' >/dev/null
[ "$(jqo '[.value,.reason]')" = '["crimson","TARGETING_MATCH"]' ] || fail "OFREP color: $(cat "$TMP/out")"
post /ofrep/v1/evaluate/flags/dark '{"context":{"targetingKey":"u1","tier":"free"}}' >/dev/null
[ "$(jqo '[.key,.reason,has("value")]')" = '["dark","DEFAULT",false]' ] || fail "OFREP default: $(cat "$TMP/out")"
post /ofrep/v1/evaluate/flags/off-flag '{"context":{"targetingKey":"u1"}}' >/dev/null
[ "$(jqo '[.reason,has("value")]')" = '["DISABLED",false]' ] || fail "OFREP disabled: $(cat "$TMP/out")"
post /ofrep/v1/evaluate/flags/split '{"context":{"targetingKey":"u1"}}' >/dev/null
[ "$(jqo '.reason')" = '"SPLIT"' ] || fail "OFREP split: $(cat "$TMP/out")"
code=$(post /ofrep/v1/evaluate/flags/nope '{"context":{"targetingKey":"u1"}}')
[ "$code" = 404 ] && [ "$(jqo '[.key,.errorCode]')" = '["nope","FLAG_NOT_FOUND"]' ] || fail "OFREP 404: $code $(cat "$TMP/out")"
code=$(post /ofrep/v1/evaluate/flags/split '{"context":{"tier":"pro"}}')
[ "$code" = 400 ] && [ "$(jqo '.errorCode')" = '"TARGETING_KEY_MISSING"' ] || fail "OFREP no targetingKey: $code $(cat "$TMP/out")"
code=$(post /ofrep/v1/evaluate/flags/color '{}')
[ "$code" = 200 ] || fail "OFREP without context on a flag that needs none: $code"
code=$(post /ofrep/v1/evaluate/flags/dark '{"context":')
[ "$code" = 400 ] && [ "$(jqo '.errorCode')" = '"PARSE_ERROR"' ] || fail "OFREP parse error: $code $(cat "$TMP/out")"
code=$(post /ofrep/v1/evaluate/flags/dark '{"context":{"targetingKey":5}}')
[ "$code" = 400 ] && [ "$(jqo '.errorCode')" = '"INVALID_CONTEXT"' ] || fail "OFREP invalid context: $code $(cat "$TMP/out")"
ok "OFREP single: typed values, reasons, FLAG_NOT_FOUND, TARGETING_KEY_MISSING, PARSE_ERROR, INVALID_CONTEXT"

# ---- OFREP bulk, ETag, 304
code=$(post /ofrep/v1/evaluate/flags '{"context":{"targetingKey":"u1","tier":"pro"}}')
[ "$code" = 200 ] || fail "bulk answered $code"
[ "$(jqo '[.flags[] | .key]')" = '["color","dark","off-flag","split"]' ] &&
[ "$(jqo '[.flags[0].value, .flags[1].value, .flags[2].reason]')" = '["crimson",true,"DISABLED"]' ] ||
    fail "bulk flags: $(cat "$TMP/out")"
etag=$(awk 'tolower($1) == "etag:" { sub(/\r$/, "", $2); print $2 }' "$TMP/h")
[ -n "$etag" ] || fail "bulk without ETag: $(cat "$TMP/h")"
code=$(post '/ofrep/v1/evaluate/flags?flagConfigEtag=x' '{"context":{"targetingKey":"u1","tier":"pro"}}' -H "If-None-Match: $etag")
[ "$code" = 304 ] && [ ! -s "$TMP/out" ] || fail "If-None-Match: $code $(cat "$TMP/out")"
code=$(post /ofrep/v1/evaluate/flags '{"context":{"tier":"pro","targetingKey":"u1"}}' -H "If-None-Match: $etag")
[ "$code" = 304 ] || fail "same context, other member order: $code"
code=$(post /ofrep/v1/evaluate/flags '{"context":{"targetingKey":"u2","tier":"pro"}}' -H "If-None-Match: $etag")
[ "$code" = 200 ] || fail "another context with the old ETag: $code"
post /ofrep/v1/evaluate/flags '{"context":{"tier":"pro"}}' >/dev/null
[ "$(jq -c '[.flags[] | select(.key=="split") | .errorCode]' "$TMP/out")" = '["TARGETING_KEY_MISSING"]' ] ||
    fail "bulk error entry: $(cat "$TMP/out")"
ok "OFREP bulk: all flags, ETag, If-None-Match 304, error entries"

# ---- a change is seen by the next evaluation (and changes the ETag)
api PUT /api/v1/flags/dark/enabled '{"enabled":false}'
wait_until 5 "dark disabled in the mirror" sh -c \
    "curl -s -X POST --data '{\"context\":{\"targetingKey\":\"u1\",\"tier\":\"pro\"}}' $GW/ofrep/v1/evaluate/flags/dark | grep -q DISABLED"
code=$(post /ofrep/v1/evaluate/flags '{"context":{"targetingKey":"u1","tier":"pro"}}' -H "If-None-Match: $etag")
[ "$code" = 200 ] || fail "ETag unchanged after a flag change: $code"
post /api/v1/evaluation '{"flagKey":"dark","entityID":"u1","entityContext":{"tier":"pro"}}' >/dev/null
[ "$(jqo '[.variantKey,.flagSnapshotID]')" = '[null,2]' ] || fail "Flagent after the change: $(cat "$TMP/out")"
api PUT /api/v1/flags/dark/enabled '{"enabled":true}'
wait_until 5 "dark enabled again" sh -c \
    "curl -s -X POST --data '{\"context\":{\"targetingKey\":\"u1\",\"tier\":\"pro\"}}' $GW/ofrep/v1/evaluate/flags/dark | grep -q TARGETING_MATCH"
ok "a flag change is seen by the next evaluation; the bulk ETag changes"

# ---- the stock OpenFeature server SDK with the OFREP provider
node "$GW_DIR/ofrep_node.js" "$GW" >"$TMP/node.out" 2>&1 || fail "OpenFeature node client: $(cat "$TMP/node.out")"
grep -q '^dark=true color=crimson missing=fallback$' "$TMP/node.out" || fail "OpenFeature node client read: $(cat "$TMP/node.out")"
ok "@openfeature/server-sdk + @openfeature/ofrep-provider read a boolean and a string flag"

# ---- identity: required auth binds the entity to the token's subject
kill "$GW_PID"; wait "$GW_PID" 2>/dev/null
start_gateway FLAGCAST_AUTH=required 'FLAGCAST_API_KEYS=k-alice=alice:beta,k-svc=svc:evaluator'
code=$(post /api/v1/evaluation '{"flagKey":"dark","entityID":"u1"}')
[ "$code" = 401 ] || fail "anonymous under required: $code"
code=$(post /ofrep/v1/evaluate/flags/dark '{"context":{"targetingKey":"u1"}}')
[ "$code" = 401 ] && [ ! -s "$TMP/out" ] || fail "OFREP anonymous under required: $code $(cat "$TMP/out")"
post /api/v1/evaluation '{"flagKey":"dark","entityID":"bob","entityContext":{"tier":"pro","sub":"bob"}}' \
    -H 'Authorization: Bearer k-alice' >/dev/null
[ "$(jqo '[.evalContext.entityID,.variantKey]')" = '["alice","on"]' ] || fail "bound to sub: $(cat "$TMP/out")"
post /api/v1/evaluation '{"flagKey":"dark","entityID":"bob","entityContext":{"tier":"pro"}}' \
    -H 'Authorization: Bearer k-svc' >/dev/null
[ "$(jqo '.evalContext.entityID')" = '"bob"' ] || fail "evaluator role: $(cat "$TMP/out")"
post '/ofrep/v1/evaluate/flags/split?token=k-alice' '{"context":{}}' >/dev/null
[ "$(jqo '.reason')" = '"SPLIT"' ] || fail "OFREP bound targetingKey: $(cat "$TMP/out")"
ok "FLAGCAST_AUTH=required: 401 anonymous, entity = sub, evaluator role evaluates anyone"

echo "PASS test_eval_http"
