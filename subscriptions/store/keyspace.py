"""The Redis key layout: every key the relay writes is named here and nowhere else.

arq's own keys (``arq:*``) have a fixed prefix of arq's choosing, which is why tests isolate themselves by
database number rather than by prefix.
"""

PREFIX = "relay:"

# accounts
ACCOUNTS = PREFIX + "accounts"  # ZSET code -> created ms


def account(code: str) -> str:
    return f"{PREFIX}account:{code}"  # STRING JSON AccountRecord


def account_status(code: str) -> str:
    return f"{PREFIX}account:{code}:status"  # HASH last poll, last error, per-resource figures


def position(code: str, name: str) -> str:
    """Where one of an account's pollings stands: a stream's cursor (``workers.cursor``), the stock sweep's state,
    or the goods-out notes still followed. (The key still says ``cursor``: data written by earlier releases.)"""
    return f"{PREFIX}cursor:{code}:{name}"  # STRING


def budget(code: str) -> str:
    return f"{PREFIX}budget:{code}"  # ZSET request id -> ms: the relay's requests in the last minute


POLLS = PREFIX + "polls"  # ZSET account code -> ms when its next poll is due (or its claim's lease ends)


def account_in_flight(code: str) -> str:
    return f"{PREFIX}account:{code}:in-flight"  # ZSET delivery id -> ms its claim ends: the account's attempts


def account_parked(code: str) -> str:
    return f"{PREFIX}account:{code}:parked"  # ZSET delivery id -> ms: due, but the account's cap is full


def account_pings(code: str) -> str:
    return f"{PREFIX}account:{code}:pings"  # ZSET use -> ms: the account's test pings in the last minute


def poll_plan(code: str) -> str:
    return f"{PREFIX}account:{code}:plan"  # STRING JSON PollPlan: each resource's next poll, cost and interval


def poll_owner(code: str) -> str:
    return f"{PREFIX}account:{code}:poll-owner"  # STRING the token of the claim polling the account now, if any


JANITOR_LOCK = PREFIX + "lock:janitor"  # STRING with a TTL: the one worker running the retention sweep


# API keys
API_KEYS = PREFIX + "apikeys"  # ZSET id -> created ms


def api_key(key_id: str) -> str:
    return f"{PREFIX}apikey:{key_id}"  # STRING JSON ApiKeyRecord (the key's SHA-256, never the key)


def api_key_hash(digest: str) -> str:
    return f"{PREFIX}apikey:sha256:{digest}"  # STRING key id: finds the caller of a request in one lookup


def account_api_keys(code: str) -> str:
    return f"{PREFIX}apikeys:account:{code}"  # ZSET id -> created ms


# subscriptions
SUBSCRIPTIONS = PREFIX + "subs"  # ZSET id -> created ms


def subscription(sub_id: str) -> str:
    return f"{PREFIX}sub:{sub_id}"  # STRING JSON SubscriptionRecord


def account_subscriptions(code: str) -> str:
    return f"{PREFIX}subs:account:{code}"  # SET ids


def subscription_health(sub_id: str) -> str:
    return f"{PREFIX}sub:{sub_id}:health"  # HASH failing_since, last_success_at, last_failure_at (ms)


def subscription_recent(sub_id: str) -> str:
    return f"{PREFIX}sub:{sub_id}:recent"  # LIST "1" success / "0" failure of its latest attempts, newest first


def subscription_in_flight(sub_id: str) -> str:
    return f"{PREFIX}sub:{sub_id}:in-flight"  # ZSET delivery id -> ms its claim ends: attempts under way


def subscription_parked(sub_id: str) -> str:
    return f"{PREFIX}sub:{sub_id}:parked"  # ZSET delivery id -> ms: due, but waiting for a free slot


PARKED = PREFIX + "parked"  # SET ids of subscriptions with parked deliveries
PARKED_ACCOUNTS = PREFIX + "parked:accounts"  # SET codes of accounts with deliveries parked for the account's cap


def subscription_rate(sub_id: str) -> str:
    return f"{PREFIX}sub:{sub_id}:rate"  # STRING ms: when the subscription's rate limit next lets one through


def recovery(rec_id: str) -> str:
    return f"{PREFIX}recovery:{rec_id}"  # HASH a recover job's window, counts and state


def recovery_deliveries(rec_id: str) -> str:
    return f"{PREFIX}recovery:{rec_id}:deliveries"  # LIST the delivery ids a recover job re-sends


# events
EVENTS = PREFIX + "events"  # ZSET id -> created ms


def event(event_id: str) -> str:
    return f"{PREFIX}event:{event_id}"  # STRING JSON EventRecord


def account_events(code: str) -> str:
    return f"{PREFIX}events:account:{code}"  # ZSET id -> created ms


# deliveries
DELIVERIES = PREFIX + "deliveries"  # ZSET id -> created ms
DUE = PREFIX + "due"  # ZSET delivery id -> ms when its next attempt is due (or its claim lease ends)


def delivery(delivery_id: str) -> str:
    return f"{PREFIX}delivery:{delivery_id}"  # STRING JSON DeliveryRecord


def attempts(delivery_id: str) -> str:
    return f"{PREFIX}delivery:{delivery_id}:attempts"  # LIST JSON Attempt, oldest first


def subscription_deliveries(sub_id: str) -> str:
    return f"{PREFIX}deliveries:sub:{sub_id}"  # ZSET id -> created ms


def event_deliveries(event_id: str) -> str:
    return f"{PREFIX}deliveries:event:{event_id}"  # ZSET id -> created ms


def account_deliveries(code: str) -> str:
    return f"{PREFIX}deliveries:account:{code}"  # ZSET id -> created ms


def status_deliveries(status: str) -> str:
    return f"{PREFIX}deliveries:status:{status}"  # ZSET id -> created ms


def budget_pause(code: str) -> str:
    return f"{PREFIX}budget:{code}:pause"  # STRING with a TTL: Brightpearl said wait this long (every process)


def snapshot(code: str, resource: str, record_id: int) -> str:
    return f"{PREFIX}snap:{code}:{resource}:{record_id}"  # STRING zlib JSON: the record as last seen


def stock_figures(code: str) -> str:
    return f"{PREFIX}stock:{code}"  # HASH product id -> JSON availability as last seen


def stock_dirty(code: str) -> str:
    return f"{PREFIX}stock:{code}:dirty"  # SET product ids whose figures may have moved (orders changed)


def order_statuses(code: str) -> str:
    return f"{PREFIX}statuses:{code}"  # HASH order id -> status id: the newest orders' statuses, as the sweep saw them


# hints: Brightpearl's native webhooks saying "look at these ids now" (subscriptions.store.hints)


def hint_ids(code: str, resource: str) -> str:
    return f"{PREFIX}hints:{code}:{resource}:ids"  # SET ids hinted and not read yet


def hint_pending(code: str) -> str:
    return f"{PREFIX}hints:{code}:pending"  # SET resources with hinted ids not read yet


def hint_overflow(code: str) -> str:
    return f"{PREFIX}hints:{code}:overflow"  # SET resources a hint asked to poll whole (it named too many ids)


def hinted(code: str, resource: str) -> str:
    return f"{PREFIX}hints:{code}:{resource}:seen"  # ZSET id -> ms of its last hint (the last 15 minutes)


def hint_rate(code: str) -> str:
    return f"{PREFIX}hints:{code}:rate"  # ZSET hint -> ms: the account's hints in the last minute


def hint_requests(code: str) -> str:
    return f"{PREFIX}hints:{code}:requests"  # ZSET request -> ms: Brightpearl requests spent on hints, last minute


def hint_webhooks_lock(code: str) -> str:
    return f"{PREFIX}lock:hint-webhooks:{code}"  # STRING with a TTL: one process reconciles an account's webhooks


def hint_keys(code: str) -> str:
    """The pattern of every hint key of one account (what removing the account or turning hints off removes)."""
    return f"{PREFIX}hints:{code}:*"


def resource_state(code: str, resource: str) -> list[str]:
    """Patterns of every key a resource's poller keeps for one account (what dropping the resource removes)."""
    patterns = [f"{PREFIX}cursor:{code}:{resource}.*", f"{PREFIX}snap:{code}:{resource}:*"]
    if resource == "orders":
        patterns.append(order_statuses(code))
    if resource == "stock":
        patterns += [stock_figures(code), stock_dirty(code), f"{PREFIX}snap:{code}:stock.*"]
    return patterns


# dashboard sessions and logins (relay.ui): a session's id is only in the browser's cookie; Redis has its SHA-256


def dashboard_session(digest: str) -> str:
    return f"{PREFIX}ui:session:{digest}"  # STRING JSON who, created and expiry, with a TTL; digest of the session id


def api_key_dashboard_sessions(key_id: str) -> str:
    return f"{PREFIX}ui:sessions:key:{key_id}"  # SET digests of the sessions opened with one API key (TTL'd)


def login_failures(client: str) -> str:
    return f"{PREFIX}ui:login-failures:{client}"  # ZSET attempt -> ms: one client address's recent failed logins


# OAuth instance apps (subscriptions.store.oauth_tokens)


def oauth_tokens(code: str) -> str:
    return f"{PREFIX}account:{code}:oauth"  # STRING JSON OAuthTokenRecord: sealed access and refresh tokens, expiry


def oauth_refresh_lock(code: str) -> str:
    return f"{PREFIX}lock:oauth-refresh:{code}"  # STRING with a TTL: the one process refreshing an account's tokens


def oauth_states(code: str) -> str:
    return f"{PREFIX}account:{code}:oauth-states"  # ZSET digest of a connect state -> expiry ms (a few, TTL'd)
