-- Accept one hint for an account: within its rate, queue the ids it names for a targeted read, remember when
-- each was hinted, and bring the account's poll forward to read them soon; or, when the hint named too many ids
-- or the queue is full, ask for a poll of the whole resource instead. A poll under way (its owner key set) is
-- not brought forward: its claim's lease is its score, and it looks for hints itself before it ends.
-- KEYS[1]: the polls ZSET; KEYS[2]: the account's poll owner key; KEYS[3]: the account's status HASH;
-- KEYS[4]: its hint rate ZSET; KEYS[5]: its pending SET; KEYS[6]: its overflow SET;
-- KEYS[7..]: for each group in ARGV, its ids SET then its hinted ZSET.
-- ARGV[1]: {"code", "now_ms", "at", "hint", "coalesce_ms", "per_minute", "max_pending", "seen_ms", "ids_ttl_ms",
--           "groups": [{"resource", "ids": [int...], "overflow": bool}]}
-- Answers "ok" or "limited" (the account's hints this minute are spent: nothing is written).
local a = cjson.decode(ARGV[1])
local window_ms = 60000
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', a.now_ms - window_ms)
if redis.call('ZCARD', KEYS[4]) >= a.per_minute then return 'limited' end
redis.call('ZADD', KEYS[4], a.now_ms, a.hint)
redis.call('PEXPIRE', KEYS[4], window_ms)
for i, group in ipairs(a.groups) do
  local ids_key, seen_key = KEYS[5 + 2 * i], KEYS[6 + 2 * i]
  local whole = group.overflow or (redis.call('SCARD', ids_key) + #group.ids > a.max_pending)
  if whole then
    redis.call('SADD', KEYS[6], group.resource)
  elseif #group.ids > 0 then
    for start = 1, #group.ids, 1000 do
      local chunk, stamped = {}, {}
      for j = start, math.min(start + 999, #group.ids) do
        chunk[#chunk + 1] = group.ids[j]
        stamped[#stamped + 1] = a.now_ms
        stamped[#stamped + 1] = group.ids[j]
      end
      redis.call('SADD', ids_key, unpack(chunk))
      redis.call('ZADD', seen_key, unpack(stamped))
    end
    redis.call('PEXPIRE', ids_key, a.ids_ttl_ms)
    redis.call('SADD', KEYS[5], group.resource)
  end
  redis.call('ZREMRANGEBYSCORE', seen_key, '-inf', a.now_ms - a.seen_ms)
  redis.call('PEXPIRE', seen_key, a.seen_ms)
end
redis.call('PEXPIRE', KEYS[5], a.ids_ttl_ms)
redis.call('PEXPIRE', KEYS[6], a.ids_ttl_ms)
redis.call('HSET', KEYS[3], 'hints:last_hint_at', a.at)
if redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('ZADD', KEYS[1], 'XX', 'LT', a.now_ms + a.coalesce_ms, a.code)
end
return 'ok'
