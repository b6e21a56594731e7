-- Renew a poll's claim: while its owner key still holds the claim's token, its lease runs until until_ms.
-- KEYS[1]: the polls ZSET; KEYS[2]: the account's owner key.
-- ARGV[1]: {"member": code, "token": token, "until_ms": int}
-- Answers 1 if the claim is still the caller's (renewed), 0 if it was taken over or the account is gone.
local a = cjson.decode(ARGV[1])
if redis.call('GET', KEYS[2]) ~= a.token then return 0 end
redis.call('ZADD', KEYS[1], 'XX', a.until_ms, a.member)
return 1
