-- Claims due deliveries.
-- KEYS[1]: the due set. ARGV[1]: {"now_ms", "lease_ms", "limit"}.
-- The deliveries due by now_ms (at most limit) are leased until now_ms + lease_ms: their score moves forward, so
-- no other claim takes them until then. Answers their ids. (Their records are read after, by name: a key is never
-- built here.) Leases go 500 deliveries a command, not one each.
local a = cjson.decode(ARGV[1])
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', a.now_ms, 'LIMIT', 0, a.limit)
local until_ms = a.now_ms + a.lease_ms
local leases = {}
for i, id in ipairs(ids) do
  leases[2 * i - 1], leases[2 * i] = until_ms, id
end
for c = 1, #ids, 500 do
  local last = math.min(c + 499, #ids)
  redis.call('ZADD', KEYS[1], 'XX', unpack(leases, 2 * c - 1, 2 * last))
end
return ids
