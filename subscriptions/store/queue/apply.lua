-- Applies a batch of delivery transitions (recorded attempts, give-ups, skips, requeues) as they were decided
-- in Python (subscriptions.queue.transitions): no status logic here.
-- KEYS[1]: the due set; every other key is named by its position in KEYS from the argument:
-- ARGV[1]: {"items": [{"id", "record", "key", "attempt" and "attempts" (absent: no attempt to add),
--           "leaves" and "joins" (status index keys, absent when the status stays), "created_ms",
--           "due_ms" (absent: not due)}]}
-- "record" and "attempt" are positions in ARGV of JSON texts passed as they are after the argument.
-- For each: its attempt appended, its record replaced, its status index and due time moved. Index moves are
-- gathered and applied together, one command per key and 500 members; a delivery met twice in one batch first
-- has the moves before it applied, so its moves keep their order. Answers how many were applied.
local a = cjson.decode(ARGV[1])
local off, on, seen = {}, {}, {}
local function gather(sets, k, x, y)
  local s = sets[k]
  if not s then s = {}; sets[k] = s end
  s[#s + 1] = x
  if y ~= nil then s[#s + 1] = y end
end
local function apply(command, sets)
  for k, s in pairs(sets) do
    for c = 1, #s, 1000 do redis.call(command, KEYS[k], unpack(s, c, math.min(c + 999, #s))) end
  end
end
local function flush()
  apply('ZREM', off)
  apply('ZADD', on)
  off, on, seen = {}, {}, {}
end
for _, d in ipairs(a.items) do
  if seen[d.id] then flush() end
  seen[d.id] = true
  if d.attempt then redis.call('RPUSH', KEYS[d.attempts], ARGV[d.attempt]) end
  redis.call('SET', KEYS[d.key], ARGV[d.record])
  if d.leaves then gather(off, d.leaves, d.id) end
  if d.joins then gather(on, d.joins, d.created_ms, d.id) end
  if d.due_ms then gather(on, 1, d.due_ms, d.id) else gather(off, 1, d.id) end
end
flush()
return #a.items
