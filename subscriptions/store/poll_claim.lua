-- Claim the accounts among the candidates that are still due: each one's score moves to the end of a lease,
-- and its owner key takes the claim's token. A candidate claimed meanwhile by another process (its score moved
-- past now) is left alone.
-- KEYS[1]: the polls ZSET; KEYS[1 + i]: the owner key of the i-th candidate.
-- ARGV[1]: {"now_ms": int, "lease_ms": int, "limit": int, "members": [code, ...], "tokens": [token, ...]}: at most
-- limit are claimed, in the order given.
-- Answers the codes claimed, each with its token: {code, token, code, token, ...}.
local a = cjson.decode(ARGV[1])
local until_ms = a.now_ms + a.lease_ms
local claimed = {}
for i, member in ipairs(a.members) do
  if #claimed >= 2 * a.limit then break end
  local score = redis.call('ZSCORE', KEYS[1], member)
  if score and tonumber(score) <= a.now_ms then
    redis.call('ZADD', KEYS[1], 'XX', until_ms, member)
    redis.call('SET', KEYS[1 + i], a.tokens[i])
    claimed[#claimed + 1] = member
    claimed[#claimed + 1] = a.tokens[i]
  end
end
return claimed
