-- Takes one use from a sliding window if it has room (see subscriptions/quotas.py); Brightpearl's request budget
-- (workers/budget.py) is such a window, with a pause every process honours first.
--
-- KEYS: 1 the window (a sorted set of uses scored by their time); 2, when given, a pause: while it lives, no
-- use is taken.
-- ARGV[1]: {"now_ms": 10000, "window_ms": 60000, "limit": 30, "member": "10000-1a2b3c4d"}: the member names the
-- use, to give it back.
-- Answers 0 when the use was taken; otherwise how many milliseconds until one can be (the pause's time left,
-- or until the oldest use leaves the window), at least 1.
if KEYS[2] then
  local pause = redis.call('PTTL', KEYS[2])
  if pause > 0 then return pause end
end
local a = cjson.decode(ARGV[1])
local now, window = a.now_ms, a.window_ms
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < a.limit then
  redis.call('ZADD', KEYS[1], now, a.member)
  redis.call('PEXPIRE', KEYS[1], window)
  return 0
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return math.max(1, tonumber(oldest[2]) + window - now)
