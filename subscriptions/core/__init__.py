"""The pure core: records and the rules about them, with no Redis and no I/O (see ``subscriptions``)."""
