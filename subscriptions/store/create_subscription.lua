-- Stores a new subscription, its place in the list of subscriptions and in its account's set, unless the account
-- has its limit of subscriptions already (counted and added in one step; see Store.create_subscription).
--
-- KEYS: 1 the subscription's record, 2 every subscription by creation time, 3 its account's subscriptions.
-- ARGV[1]: {"id": "sub_a", "record": "{...}", "created_ms": 1000, "limit": 100}: the record's stored JSON;
-- limit 0 is none.
-- Answers 1 when stored, 0 when the account is at its limit (nothing written).
local a = cjson.decode(ARGV[1])
if a.limit > 0 and redis.call('SCARD', KEYS[3]) >= a.limit then return 0 end
redis.call('SET', KEYS[1], a.record, 'NX')
redis.call('ZADD', KEYS[2], a.created_ms, a.id)
redis.call('SADD', KEYS[3], a.id)
return 1
