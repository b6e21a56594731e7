"""The relay's data: what it knows about accounts, subscriptions, events and deliveries.

``subscriptions.core`` is pure (no Redis, no I/O): the records, event patterns, the envelope and its signing,
ids, the retry schedule, target URLs, a delivery's transitions and the lease rule. ``subscriptions.store`` keeps
them in Redis: the key layout (``keyspace``), the stores of accounts and subscriptions, the poll claims, the
delivery queue and its admission, quotas, retention and recovery. The import contracts in ``pyproject.toml``
keep the core free of Redis and of the store.
"""
