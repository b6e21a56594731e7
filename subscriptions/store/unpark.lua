-- Frees expired slots and brings back as many parked deliveries as there is room for: a subscription's or an
-- account's (the holder of the slots), made due again at now_ms.
--
-- KEYS: 1 the holder's in-flight set, 2 its parked set, 3 the due set, 4 the set of holders with parked
-- deliveries (subscriptions or accounts).
-- ARGV[1]: {"holder": "sub_a", "now_ms": 2000, "room": 32}: the holder's id (as in KEYS[4]) and its cap.
-- Answers how many deliveries came back.
local a = cjson.decode(ARGV[1])
local now = a.now_ms
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local room = a.room - redis.call('ZCARD', KEYS[1])
local moved = {}
if room > 0 then moved = redis.call('ZPOPMIN', KEYS[2], room) end
for i = 1, #moved, 2 do redis.call('ZADD', KEYS[3], now, moved[i]) end
if redis.call('EXISTS', KEYS[2]) == 0 then redis.call('SREM', KEYS[4], a.holder) end
return #moved / 2
