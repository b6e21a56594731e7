-- Store an account's poll plan and, derived from it, when the account is next polled, together; with a token,
-- only while the caller's claim still owns the account, and then the claim ends (the owner key is removed).
-- Nothing is written for an account that no longer exists.
-- KEYS[1]: the polls ZSET; KEYS[2]: the account's plan; KEYS[3]: its owner key; KEYS[4]: the account record.
-- ARGV[1]: {"member": code, "plan": "<PollPlan JSON>", "next_ms": int, "token": token or null}
-- Answers 1 if written, 0 if the claim was taken over or the account is gone.
local a = cjson.decode(ARGV[1])
if a.token ~= cjson.null and redis.call('GET', KEYS[3]) ~= a.token then return 0 end
if redis.call('EXISTS', KEYS[4]) == 0 then return 0 end
redis.call('SET', KEYS[2], a.plan)
redis.call('ZADD', KEYS[1], a.next_ms, a.member)
if a.token ~= cjson.null then redis.call('DEL', KEYS[3]) end
return 1
