-- Release an account's refresh lock only if the caller still holds it.
-- KEYS: lock. ARGV[1]: {"lock": token}.
local args = cjson.decode(ARGV[1])
if redis.call('GET', KEYS[1]) == args.lock then
  return redis.call('DEL', KEYS[1])
end
return 0
