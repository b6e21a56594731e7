-- Store an account's OAuth tokens, mark it authorized, and release the refresh lock if the caller holds it:
-- one write, so the new refresh token is never stored apart from the access token it came with.
-- KEYS: tokens, status, lock. ARGV[1]: {"lock": token or "", "state": auth_state}; ARGV[2]: the record's JSON.
local args = cjson.decode(ARGV[1])
redis.call('SET', KEYS[1], ARGV[2])
redis.call('HSET', KEYS[2], 'auth_state', args.state)
redis.call('HDEL', KEYS[2], 'auth_reason')
if args.lock ~= '' and redis.call('GET', KEYS[3]) == args.lock then
  redis.call('DEL', KEYS[3])
end
return 1
