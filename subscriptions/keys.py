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


def cursor(code: str, resource: str) -> str:
    return f"{PREFIX}cursor:{code}:{resource}"  # STRING JSON, the poller's place in one resource


def budget(code: str) -> str:
    return f"{PREFIX}budget:{code}"  # ZSET request id -> ms: the relay's requests in the last minute


POLLS = PREFIX + "polls"  # ZSET account code -> ms when its next poll is due


def resource_due(code: str) -> str:
    return f"{PREFIX}account:{code}:due"  # HASH resource -> ms when that resource is next polled


def poll_lock(code: str) -> str:
    return f"{PREFIX}lock:poll:{code}"  # held by the one poller working on the account


# subscriptions
SUBSCRIPTIONS = PREFIX + "subs"  # ZSET id -> created ms


def subscription(sub_id: str) -> str:
    return f"{PREFIX}sub:{sub_id}"  # STRING JSON SubscriptionRecord


def account_subscriptions(code: str) -> str:
    return f"{PREFIX}subs:account:{code}"  # SET ids


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


def resource_state(code: str, resource: str) -> list[str]:
    """Patterns of every key a resource's poller keeps for one account (what dropping the resource removes)."""
    patterns = [f"{PREFIX}cursor:{code}:{resource}.*", f"{PREFIX}snap:{code}:{resource}:*"]
    if resource == "stock":
        patterns += [stock_figures(code), stock_dirty(code), f"{PREFIX}snap:{code}:stock.*"]
    return patterns
