-- Pushes a lock's expiry forward, if the lock is still held by the one asking (see workers/janitor.py).
--
-- KEYS: 1 the lock (a string holding its holder's token).
-- ARGV[1]: {"token": "9f8e7d6c5b4a3210", "ttl_ms": 60000}
-- Answers 1 when the lock was extended, 0 when another holds it or it is gone.
local a = cjson.decode(ARGV[1])
if redis.call('GET', KEYS[1]) == a.token then return redis.call('PEXPIRE', KEYS[1], a.ttl_ms) end
return 0
