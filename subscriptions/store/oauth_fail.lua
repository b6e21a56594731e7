-- Mark an account as needing a new authorization (its refresh token is refused) and release the refresh lock if
-- the caller holds it, in one step: a waiting process sees the state before it could take the lock.
-- KEYS: status, lock. ARGV[1]: {"lock": token or "", "state": auth_state, "reason": text}.
local args = cjson.decode(ARGV[1])
redis.call('HSET', KEYS[1], 'auth_state', args.state, 'auth_reason', args.reason)
if args.lock ~= '' and redis.call('GET', KEYS[2]) == args.lock then
  redis.call('DEL', KEYS[2])
end
return 1
