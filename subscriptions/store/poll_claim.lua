-- Claim the accounts among the candidates that are still due: each one's score moves to the end of a lease,
-- and its owner key takes the claim's token. A candidate claimed meanwhile by another process (its score moved
-- past now) is left alone.
-- KEYS[1]: the polls ZSET; KEYS[1 + i]: the owner key of the i-th candidate.
-- ARGV[1]: {"now_ms": int, "lease_ms": int, "limit": int, "members": [code, ...], "tokens": [token, ...],
-- "next": bool}: at most limit are claimed, in the order given.
-- Answers {{code, token, code, token, ...}, the score of the earliest account left (its next poll, or its lease's
-- end) or false}; the score only when "next" is asked for.
local a = cjson.decode(ARGV[1])
local until_ms = a.now_ms + a.lease_ms
local claimed = {}
local scores = redis.call('ZMSCORE', KEYS[1], unpack(a.members))
for i, member in ipairs(a.members) do
  if #claimed >= 2 * a.limit then break end
  local score = scores[i]
  if score and tonumber(score) <= a.now_ms then
    redis.call('ZADD', KEYS[1], 'XX', until_ms, member)
    redis.call('SET', KEYS[1 + i], a.tokens[i])
    claimed[#claimed + 1] = member
    claimed[#claimed + 1] = a.tokens[i]
  end
end
local first = false
if a.next then first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')[2] or false end
return {claimed, first}
