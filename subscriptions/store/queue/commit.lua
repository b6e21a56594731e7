-- Stores a batch of events and their new deliveries, with their index entries and due times.
-- KEYS[1] the events index, KEYS[2] the deliveries index, KEYS[3] the due set; every other key is named by its
-- position in KEYS from the argument:
-- ARGV[1]: {"created_ms", "events": [{"id", "record", "key", "account_events", "account_deliveries",
--           "event_deliveries", "deliveries": [{"id", "record", "key", "subscription_deliveries", "joins",
--           "due_ms" (absent: not due)}]}]}
-- Each "record" is the position in ARGV of the record's JSON text, passed as it is after the argument.
-- An event already stored (seen again after a crash) is left alone and fans out no second time. Sorted-set
-- writes are gathered per key and sent 500 members a command. Answers 1 or 0 an event: stored now or not.
local a = cjson.decode(ARGV[1])
local created = a.created_ms
local on, stored = {}, {}
local function gather(k, score, member)
  local s = on[k]
  if not s then s = {}; on[k] = s end
  s[#s + 1] = score
  s[#s + 1] = member
end
for _, e in ipairs(a.events) do
  local new = redis.call('SET', KEYS[e.key], ARGV[e.record], 'NX')
  stored[#stored + 1] = new and 1 or 0
  if new then
    gather(1, created, e.id)
    gather(e.account_events, created, e.id)
    for _, d in ipairs(e.deliveries) do
      if redis.call('SET', KEYS[d.key], ARGV[d.record], 'NX') then
        gather(2, created, d.id)
        gather(e.account_deliveries, created, d.id)
        gather(e.event_deliveries, created, d.id)
        gather(d.subscription_deliveries, created, d.id)
        gather(d.joins, created, d.id)
        if d.due_ms then gather(3, d.due_ms, d.id) end
      end
    end
  end
end
for k, s in pairs(on) do
  for c = 1, #s, 1000 do redis.call('ZADD', KEYS[k], unpack(s, c, math.min(c + 999, #s))) end
end
return stored
