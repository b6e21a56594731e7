-- Takes up to a number of uses from a sliding window at once, as many as it has room for (see
-- subscriptions/quotas.py): a caller that knows it is about to make several requests (a poll, its searches) spends
-- one call on them rather than one each. The uses are stamped at stamp_ms (a little after now: they are spent over
-- the next moments, and a use counted a little longer than it lasts is on the safe side).
--
-- KEYS: 1 the window (a sorted set of uses scored by their time); 2, when given, a pause: while it lives, no
-- use is taken.
-- ARGV[1]: {"now_ms": 10000, "stamp_ms": 12000, "window_ms": 60000, "limit": 30, "members": ["m1", "m2", ...]}
-- Answers how many uses were taken: the first that many of the members (0 while paused, or when the window is full).
if KEYS[2] and redis.call('PTTL', KEYS[2]) > 0 then return 0 end
local a = cjson.decode(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', a.now_ms - a.window_ms)
local taken = math.min(#a.members, a.limit - redis.call('ZCARD', KEYS[1]))
if taken <= 0 then return 0 end
local scored = {}
for i = 1, taken do
  scored[#scored + 1] = a.stamp_ms
  scored[#scored + 1] = a.members[i]
end
redis.call('ZADD', KEYS[1], unpack(scored))
redis.call('PEXPIRE', KEYS[1], a.window_ms + a.stamp_ms - a.now_ms)
return taken
