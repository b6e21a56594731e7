-- Frees the slots of recorded attempts, in their subscription and their account, and makes as many deliveries
-- due again, oldest first: as many parked for the subscription's cap, and as many parked for the account's.
--
-- KEYS: 1 the subscription's in-flight set, 2 its parked set, 3 the due set, 4 the set of subscriptions with
-- parked deliveries, 5 the account's in-flight set, 6 its parked set, 7 the set of accounts with parked ones.
-- ARGV[1]: {"subscription": "sub_a", "account": "acme", "now_ms": 2000, "deliveries": ["dlv_1", ...]}
-- Answers how many parked deliveries were made due again (at now_ms).
local a = cjson.decode(ARGV[1])
local ids = a.deliveries
for c = 1, #ids, 500 do  -- ZREM takes at most so many members at once (Lua's stack)
  local last = math.min(c + 499, #ids)
  redis.call('ZREM', KEYS[1], unpack(ids, c, last))
  redis.call('ZREM', KEYS[5], unpack(ids, c, last))
end
local freed = #ids
local moved = 0
for _, parked in ipairs({KEYS[2], KEYS[6]}) do
  local popped = redis.call('ZPOPMIN', parked, freed)
  for i = 1, #popped, 2 do redis.call('ZADD', KEYS[3], a.now_ms, popped[i]) end
  moved = moved + #popped / 2
end
if redis.call('EXISTS', KEYS[2]) == 0 then redis.call('SREM', KEYS[4], a.subscription) end
if redis.call('EXISTS', KEYS[6]) == 0 then redis.call('SREM', KEYS[7], a.account) end
return moved
