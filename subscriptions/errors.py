"""The relay's errors.

    RelayError                      anything the relay raises on purpose
    ├── NotFound                    an account, subscription, delivery or event that does not exist
    ├── Conflict                    creating something that already exists
    ├── InvalidInput                a request the relay understood but cannot accept
    ├── (crypto) InvalidKey         RELAY_ENCRYPTION_KEY is not a valid key
    ├── (crypto) TokenKeyError      a stored token or signing secret the configured keys cannot decrypt
    └── (workers) BrightpearlError  Brightpearl refused or failed a request (see workers.brightpearl.errors)

The HTTP API maps each to one problem response in a single middleware; nothing else inspects them.
"""


class RelayError(Exception):
    """Base of every error the relay raises on purpose; its message is meant for a person."""


class NotFound(RelayError):
    """The named object does not exist (or the caller may not see it)."""


class Conflict(RelayError):
    """The object to create already exists."""


class InvalidInput(RelayError):
    """Well-formed input the relay cannot accept; the message says what to change."""
