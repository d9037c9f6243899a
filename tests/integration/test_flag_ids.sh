#!/bin/sh
# Variant and segment ids (issue 12): the publisher gives every variant and
# segment an id from P:part-seq when a flag is created or updated; a variant
# keeps its id while its key stays the same (or when the client sends the id
# back, renaming it), a segment when the client sends its id back; any other
# part gets a new id, never one used before. A record stored before ids is
# read as it is and gains ids at its next change. The gateway's mirror
# takes records with ids (its snapshot shows them).
. "$(dirname "$0")/gw/lib.sh"

start_redis
start_publisher
start_gateway

# py EXPR: EXPR over the last API reply, parsed as d (d["flag"] is f).
py() {
    python3 -c "import json; d = json.load(open('$TMP/api.out')); f = d.get('flag', {}); print($1)"
}
vid() { py "[v.get('id', 0) for v in f['variants'] if v['key'] == '$1'][0]"; }
sid() { py "f['segments'][$1].get('id', 0)"; }

api POST /api/v1/flags '{"key":"ids","variants":[{"key":"on"},{"key":"off"}],
  "segments":[{"rolloutPercent":50,"distributions":[{"variantKey":"on","percent":100}]}]}'
ON=$(vid on); OFF=$(vid off); S0=$(sid 0)
[ "$ON" -gt 0 ] && [ "$OFF" -gt 0 ] && [ "$S0" -gt 0 ] || fail "create gave ids $ON $OFF $S0"
[ "$(printf '%s\n' "$ON" "$OFF" "$S0" | sort -u | wc -l)" = 3 ] || fail "ids not distinct: $ON $OFF $S0"
ok "create: variants on=$ON off=$OFF, segment $S0"

# Keep "on", rename "off" to "disabled" (no id sent: a new variant), keep
# the segment by sending its id, add a segment.
api PUT /api/v1/flags/ids "{\"variants\":[{\"key\":\"on\"},{\"key\":\"disabled\"}],
  \"segments\":[{\"id\":$S0,\"rolloutPercent\":60,\"distributions\":[{\"variantKey\":\"on\",\"percent\":100}]},
                {\"rolloutPercent\":100}]}"
api GET /api/v1/flags/ids
[ "$(vid on)" = "$ON" ] || fail "variant on: $(vid on), want $ON"
DIS=$(vid disabled); S1=$(sid 1)
[ "$(sid 0)" = "$S0" ] || fail "segment 0: $(sid 0), want $S0"
[ "$(py "f['segments'][0]['rolloutPercent']")" = 60 ] || fail "segment 0 not updated"
for x in "$DIS" "$S1"; do
    [ "$x" -gt 0 ] || fail "a new part got no id: $(cat "$TMP/api.out")"
    for old in "$ON" "$OFF" "$S0"; do [ "$x" != "$old" ] || fail "id $x reused"; done
done
[ "$DIS" != "$S1" ] || fail "two new parts share id $DIS"
ok "update: on kept $ON, disabled new $DIS, segment $S0 kept, new segment $S1"

# A variant renamed with its id sent back keeps it; the other keeps its own
# by key; segments not in the body are untouched.
api PUT /api/v1/flags/ids "{\"variants\":[{\"id\":$ON,\"key\":\"enabled\"},{\"key\":\"disabled\"}]}"
api GET /api/v1/flags/ids
[ "$(vid enabled)" = "$ON" ] && [ "$(vid disabled)" = "$DIS" ] ||
    fail "rename: $(cat "$TMP/api.out")"
[ "$(sid 0)" = "$S0" ] && [ "$(sid 1)" = "$S1" ] || fail "segments changed: $(cat "$TMP/api.out")"
ok "rename with id: enabled keeps $ON"

# Drop segment S1 and add one: the new one does not get S1 back, nor an id
# the client makes up; a toggle keeps every id.
api PUT /api/v1/flags/ids "{\"segments\":[{\"id\":$S0},{\"id\":999999}]}"
api PUT /api/v1/flags/ids/enabled '{"enabled":true}'
api GET /api/v1/flags/ids
S2=$(sid 1)
[ "$(sid 0)" = "$S0" ] || fail "segment 0 lost its id"
[ "$S2" -gt "$S1" ] && [ "$S2" != 999999 ] || fail "new segment got $S2 (dropped $S1)"
[ "$(vid enabled)" = "$ON" ] && [ "$(vid disabled)" = "$DIS" ] || fail "toggle changed ids"
ok "dropped segment's id not reused: new $S2; toggle keeps ids"

# A record written before ids (the fuzz corpus's seed, flag 7 new-checkout)
# reads without ids, and gets them at its next change.
redis-cli -p "$REDIS_PORT" -x HSET flagcast:flags new-checkout \
    <"$ROOT/tests/fuzz/corpus/fuzz_flag/full" >/dev/null
redis-cli -p "$REDIS_PORT" HSET flagcast:flag-ids 7 new-checkout >/dev/null
api GET /api/v1/flags/new-checkout
[ "$(py "sum('id' in p for p in f['variants'] + f['segments'])")" = 0 ] ||
    fail "old record shows ids: $(cat "$TMP/api.out")"
api PUT /api/v1/flags/new-checkout/enabled '{"enabled":false}'
api GET /api/v1/flags/new-checkout
[ "$(py "len(set(p.get('id', 0) for p in f['variants'] + f['segments']) - {0})")" = 4 ] ||
    fail "old record did not get 4 ids: $(cat "$TMP/api.out")"
[ "$(py "min(p['id'] for p in f['variants'] + f['segments'])")" -gt "$S2" ] ||
    fail "old record's new ids reuse earlier ones"
ok "a record from before ids reads as it is and gets ids at its next change"

# The gateway's snapshot carries the ids.
sse S '/api/v1/realtime/sse?flagKey=ids'
wait_until 10 "snapshot" grep -q '^event: snapshot' "$TMP/S.sse"
grep '^data:' "$TMP/S.sse" | grep -q "\"id\":$ON,\"key\":\"enabled\"" ||
    fail "snapshot lacks variant id $ON: $(cat "$TMP/S.sse")"
grep '^data:' "$TMP/S.sse" | grep -q "{\"id\":$S0,\"rank\":0" ||
    fail "snapshot lacks segment id $S0: $(cat "$TMP/S.sse")"
ok "gateway snapshot carries variant and segment ids"
