"""What can go wrong talking to Brightpearl.

BrightpearlError          Brightpearl refused or failed a request (carries method, url, status, messages)
├── AuthenticationFailed  401/403: the app reference or token is wrong or expired; a person must act
├── RequestRejected       another 4xx, or a 500 naming errors (Brightpearl answers a bad filter with 500)
└── Unavailable           no usable answer: network error, timeout, 502-504, a body that is not JSON,
                          or throttling that outlasted the waits the client allows itself
"""

from subscriptions.core.errors import RelayError


class BrightpearlError(RelayError):
    """Brightpearl refused or failed a request; ``str()`` says which request and what Brightpearl said."""

    def __init__(self, method: str, url: str, status: int | None, messages: list[str]) -> None:
        self.method = method
        self.url = url
        self.status = status
        self.messages = messages
        answer = f"HTTP {status}" if status is not None else "no answer"
        detail = "; ".join(messages) if messages else "no message"
        super().__init__(f"Brightpearl {method} {url}: {answer}: {detail}")


class AuthenticationFailed(BrightpearlError):
    """Brightpearl does not accept the credentials (401 with a plain-string ``response``, or 403)."""


class RequestRejected(BrightpearlError):
    """Brightpearl refused the request itself (4xx, or a 500 with an ``errors`` list such as a bad filter)."""


class Unavailable(BrightpearlError):
    """Brightpearl gave no usable answer; trying again later may work."""
