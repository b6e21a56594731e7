-- Take up to a count of one resource's hinted ids for a targeted read; when none are left, the resource is no
-- longer pending (in the same step, so ids a hint adds meanwhile keep it pending).
-- KEYS[1]: the resource's ids SET; KEYS[2]: the account's pending SET.
-- ARGV[1]: {"resource", "count"}
-- Answers the ids taken.
local a = cjson.decode(ARGV[1])
local taken = redis.call('SPOP', KEYS[1], a.count)
if redis.call('SCARD', KEYS[1]) == 0 then redis.call('SREM', KEYS[2], a.resource) end
return taken
