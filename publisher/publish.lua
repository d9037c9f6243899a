-- publish.lua — every flagcast mutation, atomically (DESIGN.md, "Redis layout").
--
-- Called with EVALSHA. ARGV[1] names the operation:
--
--   "flag"  KEYS = { P:flags, P:flag-ids, P:meta:{ch1}, P:hist:{ch1}, ... }
--           ARGV = { "flag", mode, key, expected_version, record, body, id,
--                    history_size, ttl_seconds, ch1, pubsub1, epoch_candidate1,
--                    ch2, ... }
--           mode "create": the key must not exist (else {409});
--           mode "update"/"delete": the key must exist (else {404}) and its
--           stored version must equal expected_version (else {412, current}).
--           create/update write record into P:flags (and P:flag-ids);
--           delete removes both. Then one publication per channel: "flags"
--           (ttl 0) for an ordinary change, or the user:/role: inboxes of a
--           change addressed with "to" (the state write is the same).
--
--   "msg"   KEYS = { P:meta:{ch1}, P:hist:{ch1}, P:meta:{ch2}, ... }
--           ARGV = { "msg", body, history_size, ttl_seconds,
--                    ch1, pubsub1, epoch_candidate1, ch2, ... }
--           One publication per channel (targeted delivery is several).
--           If ARGV[2] is "" the bodies are per channel: the triples are
--           quadruples ch, pubsub, epoch_candidate, body (A/B variants).
--
-- Returns { 200, ch1, epoch1, offset1, ch2, ... } on success.
--
-- A publication: keep the channel's epoch (HSETNX the candidate when the
-- channel starts; if the meta hash expired but history survived, drop the
-- history so offsets restart cleanly under the new epoch), bump the offset,
-- prepend the header [1, channel, epoch, offset] to the body, XADD it as
-- entry <offset>-0 with the single field "m", refresh TTLs of non-flag
-- channels, and PUBLISH the same bytes.
--
-- Every check happens before the first write: a script that fails halfway
-- would leave its earlier writes in place.

local function publish(meta, hist, ch, pubch, cand, body, histsize, ttl)
  local epoch = redis.call('HGET', meta, 'epoch')
  if not epoch then
    if redis.call('EXISTS', hist) == 1 then
      redis.call('DEL', hist)
    end
    redis.call('HSETNX', meta, 'epoch', cand)
    epoch = redis.call('HGET', meta, 'epoch')
  end
  local offset = redis.call('HINCRBY', meta, 'offset', 1)
  local msg = cmsgpack.pack({1, ch, epoch, offset}) .. body
  redis.call('XADD', hist, 'MAXLEN', '~', histsize, offset .. '-0', 'm', msg)
  if ttl > 0 then
    redis.call('EXPIRE', meta, ttl)
    redis.call('EXPIRE', hist, ttl)
  end
  redis.call('PUBLISH', pubch, msg)
  return epoch, offset
end

local op = ARGV[1]

if op == 'flag' then
  local mode, key, expected = ARGV[2], ARGV[3], tonumber(ARGV[4])
  local record, body, id = ARGV[5], ARGV[6], ARGV[7]
  local histsize, ttl = ARGV[8], tonumber(ARGV[9])
  local cur = redis.call('HGET', KEYS[1], key)
  if mode == 'create' then
    if cur then return {409} end
  else
    if not cur then return {404} end
    local rec = cmsgpack.unpack(cur)
    local version = tonumber(rec['version']) or 0
    if version ~= expected then return {412, version} end
  end
  if mode == 'delete' then
    redis.call('HDEL', KEYS[1], key)
    redis.call('HDEL', KEYS[2], id)
  else
    redis.call('HSET', KEYS[1], key, record)
    redis.call('HSET', KEYS[2], id, key)
  end
  local out = {200}
  local n = (#KEYS - 2) / 2
  for i = 1, n do
    local ch, pubch, cand = ARGV[7 + 3 * i], ARGV[8 + 3 * i], ARGV[9 + 3 * i]
    local epoch, offset = publish(KEYS[2 * i + 1], KEYS[2 * i + 2], ch, pubch, cand, body,
                                  histsize, ttl)
    out[#out + 1] = ch
    out[#out + 1] = epoch
    out[#out + 1] = offset
  end
  return out
elseif op == 'msg' then
  local body, histsize, ttl = ARGV[2], ARGV[3], tonumber(ARGV[4])
  local out = {200}
  local n = #KEYS / 2
  local step = 3
  if body == '' then step = 4 end
  for i = 1, n do
    local j = 5 + step * (i - 1)
    local ch, pubch, cand = ARGV[j], ARGV[j + 1], ARGV[j + 2]
    local b = body
    if step == 4 then b = ARGV[j + 3] end
    local epoch, offset = publish(KEYS[2 * i - 1], KEYS[2 * i], ch, pubch, cand, b,
                                  histsize, ttl)
    out[#out + 1] = ch
    out[#out + 1] = epoch
    out[#out + 1] = offset
  end
  return out
end
return redis.error_reply('flagcast: unknown operation ' .. tostring(op))
