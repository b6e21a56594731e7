"""The relay's errors.

    RelayError                      anything the relay raises on purpose
    ├── NotFound                    an account, subscription, delivery or event that does not exist
    ├── Conflict                    creating something that already exists
    ├── InvalidInput                a request the relay understood but cannot accept
    ├── TooMany                     more than a tenant's limit allows (subscriptions, test pings)
    ├── LostLease                   a writer's lock or lease was taken over; its writes were not applied
    ├── (crypto) InvalidKey         RELAY_ENCRYPTION_KEY is not a valid key
    ├── (crypto) TokenKeyError      a stored token or signing secret the configured keys cannot decrypt
    ├── (workers) BrightpearlError  Brightpearl refused or failed a request (see workers.brightpearl.errors)
    ├── (workers) BudgetExhausted   no Brightpearl request could be made within the wait allowed
    ├── (workers) TargetRefused     a callback's host is not public (also an OSError: a failed connection)
    ├── (relay) StartupError        a process cannot start; the message is the one line the CLI prints
    └── (relay) Unauthenticated, Forbidden    the API's caller has no valid token, or may not do this

The HTTP API maps each to one problem response in a single middleware (``relay.api.problems``); the CLI prints
a StartupError's message; nothing else inspects them.
"""


class RelayError(Exception):
    """Base of every error the relay raises on purpose; its message is meant for a person."""


class NotFound(RelayError):
    """The named object does not exist (or the caller may not see it)."""


class Conflict(RelayError):
    """The object to create already exists."""


class InvalidInput(RelayError):
    """Well-formed input the relay cannot accept; the message says what to change."""


class TooMany(RelayError):
    """The caller asked for more than its account's limit allows; ``retry_after_s`` says when asking again can
    succeed (``None`` when waiting will not help: something must be removed first)."""

    def __init__(self, message: str, retry_after_s: int | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class LostLease(RelayError):
    """The lock or lease this writer held was taken over; its writes were not applied."""
