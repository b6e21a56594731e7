-- Store an account's OAuth tokens with its auth_state, and release the refresh lock if the caller holds it: one
-- write, so the new refresh token is never stored apart from the access token it came with. A refresh (a lock
-- given) of an account being connected leaves its state: it becomes active once its baseline is stored.
-- KEYS: tokens, status, lock. ARGV[1]: {"lock": token or "", "state": auth_state, "connecting": that state's name};
-- ARGV[2]: the record's JSON.
local args = cjson.decode(ARGV[1])
redis.call('SET', KEYS[1], ARGV[2])
if args.lock == '' or redis.call('HGET', KEYS[2], 'auth_state') ~= args.connecting then
  redis.call('HSET', KEYS[2], 'auth_state', args.state)
  redis.call('HDEL', KEYS[2], 'auth_reason')
end
if args.lock ~= '' and redis.call('GET', KEYS[3]) == args.lock then
  redis.call('DEL', KEYS[3])
end
return 1
