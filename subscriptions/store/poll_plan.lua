-- Store an account's poll plan and, derived from it, when the account is next polled, together; with a token,
-- only while the caller's claim still owns the account, and then the claim ends (the owner key is removed).
-- Nothing is written for an account that no longer exists (removing an account removes its owner key in the same
-- transaction, so a claim's token proves it still exists). With hints waiting (they came while the poll ran, and
-- could not bring it forward), the account is due again by ``hints_due_ms``. A poll ending also records what it
-- found in the account's status (``status``, as poll_status.lua) and gives back the uses of the account's request
-- budget it reserved and did not spend (``unspent``), in the same step.
-- KEYS[1]: the polls ZSET; KEYS[2]: the account's plan; KEYS[3]: its owner key; KEYS[4]: the account record;
-- KEYS[5]: its hinted resources SET; KEYS[6]: its resources to poll whole SET; KEYS[7]: its status HASH;
-- KEYS[8]: its request budget (a sliding window ZSET).
-- ARGV[1]: {"member": code, "plan": "<PollPlan JSON>", "next_ms": int, "token": token or null, "hints_due_ms": int or
-- null, "status": {name: value, ...}, "unspent": [budget member, ...]}
-- Answers 1 if written, 0 if the claim was taken over or the account is gone.
local a = cjson.decode(ARGV[1])
if a.token ~= cjson.null then
  if redis.call('GET', KEYS[3]) ~= a.token then return 0 end
elseif redis.call('EXISTS', KEYS[4]) == 0 then
  return 0
end
redis.call('SET', KEYS[2], a.plan)
local next_ms = a.next_ms
local hints_due = a.hints_due_ms
if hints_due and hints_due ~= cjson.null and (redis.call('EXISTS', KEYS[5]) == 1 or redis.call('EXISTS', KEYS[6]) == 1) then
  next_ms = math.min(next_ms, hints_due)
end
redis.call('ZADD', KEYS[1], next_ms, a.member)
if a.token ~= cjson.null then redis.call('DEL', KEYS[3]) end
local flat = {}
for name, value in pairs(a.status or {}) do
  flat[#flat + 1] = name
  flat[#flat + 1] = value
end
if #flat > 0 then redis.call('HSET', KEYS[7], unpack(flat)) end
if a.unspent and #a.unspent > 0 then redis.call('ZREM', KEYS[8], unpack(a.unspent)) end
return 1
