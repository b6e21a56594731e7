-- Record a poll's outcome in its account's status, while the caller's claim still owns the poll.
-- KEYS[1]: the account's owner key; KEYS[2]: the account's status HASH.
-- ARGV[1]: {"token": token, "fields": {name: value, ...}}
-- Answers 1 if written, 0 if the claim was taken over.
local a = cjson.decode(ARGV[1])
if redis.call('GET', KEYS[1]) ~= a.token then return 0 end
local flat = {}
for name, value in pairs(a.fields) do
  flat[#flat + 1] = name
  flat[#flat + 1] = value
end
if #flat > 0 then redis.call('HSET', KEYS[2], unpack(flat)) end
return 1
