-- Claims due deliveries and answers each with its record.
-- KEYS[1]: the due set. ARGV[1]: {"now_ms", "lease_ms", "limit", "record_prefix"}.
-- The deliveries due by now_ms (at most limit) are leased until now_ms + lease_ms: their score moves forward, so
-- no other claim takes them until then. Answers id, record JSON (false when gone) for each. Their record keys
-- cannot be known before the claim finds them, so they alone are named here: record_prefix .. id (keys.delivery).
-- Leases and reads go 500 deliveries a command (ZADD, MGET), not one each.
local a = cjson.decode(ARGV[1])
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', a.now_ms, 'LIMIT', 0, a.limit)
local until_ms = a.now_ms + a.lease_ms
local leases, names, out = {}, {}, {}
for i, id in ipairs(ids) do
  leases[2 * i - 1], leases[2 * i] = until_ms, id
  names[i] = a.record_prefix .. id
end
for c = 1, #ids, 500 do
  local last = math.min(c + 499, #ids)
  redis.call('ZADD', KEYS[1], 'XX', unpack(leases, 2 * c - 1, 2 * last))
  local records = redis.call('MGET', unpack(names, c, last))
  for j = c, last do
    out[#out + 1] = ids[j]
    out[#out + 1] = records[j - c + 1]
  end
end
return out
