-- Open a claimed poll in one step: while the caller's claim still owns the account, its lease runs until until_ms
-- (as poll_renew.lua), and everything a quiet poll reads of the account comes back at once: its record, its plan,
-- its positions, the status fields asked for, its dirty stock products, and whether hints wait.
-- KEYS[1]: the polls ZSET; KEYS[2]: the account's owner key; KEYS[3]: the account record; KEYS[4]: its plan;
-- KEYS[5]: its status HASH; KEYS[6]: its dirty stock products SET; KEYS[7]: its hinted resources SET;
-- KEYS[8]: its resources to poll whole SET; KEYS[9..]: the positions asked for.
-- ARGV[1]: {"member": code, "token": token, "until_ms": int, "fields": [status field, ...]}; without a token (a
-- claim just made, whose lease has barely begun) nothing is checked or renewed, only read.
-- Answers 0 if the claim was taken over (or the account removed from the polls), else
-- {account or false, plan or false, {position or false, ...}, {field value or false, ...}, {dirty id, ...},
--  number of hint keys that exist}.
local a = cjson.decode(ARGV[1])
if a.token then
  if redis.call('GET', KEYS[2]) ~= a.token then return 0 end
  redis.call('ZADD', KEYS[1], 'XX', a.until_ms, a.member)
end
local names = {KEYS[3], KEYS[4]}
for i = 9, #KEYS do names[#names + 1] = KEYS[i] end
local values = redis.call('MGET', unpack(names))
local positions = {}
for i = 3, #values do positions[#positions + 1] = values[i] end
local fields = {}
if #a.fields > 0 then fields = redis.call('HMGET', KEYS[5], unpack(a.fields)) end
return {values[1], values[2], positions, fields, redis.call('SMEMBERS', KEYS[6]), redis.call('EXISTS', KEYS[7], KEYS[8])}
