-- Admits claimed deliveries within each subscription's cap and rate limit and its account's cap, for a whole
-- batch of subscriptions in one call (see subscriptions/admission.py, which builds KEYS and the argument).
--
-- KEYS: 1 the due set, 2 the set of subscriptions with parked deliveries, 3 the set of accounts with parked
-- deliveries; then each subscription's in-flight, rate and parked keys and each account's in-flight and parked
-- keys (an account's once, however many of its subscriptions are in the batch). Each subscription of the
-- argument names its own by index in `keys`.
-- ARGV[1]: {"now_ms": 1000, "subscriptions": [{"id": "sub_a", "account": "acme", "cap": 32, "account_cap": 64,
--   "interval_ms": 0, "lease_end_ms": 26000, "deliveries": ["dlv_1", ...], "keys": {"in_flight": 4, "rate": 5,
--   "parked": 6, "account_in_flight": 7, "account_parked": 8}}, ...]}
-- Answers three numbers per subscription, in the argument's order: how many of its deliveries (the first ones)
-- were admitted, how many after them were parked, and when the rate limit lets the rest go (0: none held).
-- A subscription whose limits or keys Redis cannot use (a key of another type, say) answers -1 admitted,
-- before anything of it is written; the others in the batch are admitted as usual.
local a = cjson.decode(ARGV[1])
local now = a.now_ms
local due, parked_subscriptions, parked_accounts = KEYS[1], KEYS[2], KEYS[3]

local function usable(key, kind)
  local found = redis.call('TYPE', key)['ok']
  return found == 'none' or found == kind
end

local function number(value)
  return type(value) == 'number'
end

local out = {}
local swept = {}
for _, s in ipairs(a.subscriptions) do
  local k = s.keys
  local flight, rate, parked = KEYS[k.in_flight], KEYS[k.rate], KEYS[k.parked]
  local account, account_parked = KEYS[k.account_in_flight], KEYS[k.account_parked]
  local cap, account_cap, interval, lease_end = s.cap, s.account_cap, s.interval_ms, s.lease_end_ms
  local admitted, wait_until, parking = 0, 0, 0
  if not (number(cap) and number(account_cap) and number(interval) and number(lease_end)
          and usable(flight, 'zset') and usable(rate, 'string') and usable(parked, 'zset')
          and usable(account, 'zset') and usable(account_parked, 'zset')) then
    admitted = -1
  else
    redis.call('ZREMRANGEBYSCORE', flight, '-inf', now)
    if not swept[account] then
      redis.call('ZREMRANGEBYSCORE', account, '-inf', now)
      swept[account] = true
    end
    local free = cap - redis.call('ZCARD', flight)
    local account_free = account_cap - redis.call('ZCARD', account)
    local tat = tonumber(redis.call('GET', rate)) or 0
    if tat < now then tat = now end
    for _, id in ipairs(s.deliveries) do
      if free <= 0 then
        redis.call('ZREM', due, id)
        redis.call('ZADD', parked, now, id)
        redis.call('SADD', parked_subscriptions, s.id)
        parking = parking + 1
      elseif account_free <= 0 then
        redis.call('ZREM', due, id)
        redis.call('ZADD', account_parked, now, id)
        redis.call('SADD', parked_accounts, s.account)
        parking = parking + 1
      elseif interval > 0 and tat > now then
        wait_until = tat
        break
      else
        redis.call('ZADD', flight, lease_end, id)
        redis.call('ZADD', account, lease_end, id)
        free = free - 1
        account_free = account_free - 1
        admitted = admitted + 1
        if interval > 0 then tat = tat + interval end
      end
    end
    if interval > 0 then redis.call('SET', rate, tat, 'PX', tat - now + 1000) end
  end
  out[#out + 1] = admitted
  out[#out + 1] = parking
  out[#out + 1] = wait_until
end
return out
