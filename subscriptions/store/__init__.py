"""The Redis store: every key the relay writes, and every script that writes them (see ``subscriptions``)."""
