"""What can go wrong talking to Brightpearl.

BrightpearlError          Brightpearl refused or failed a request (carries method, url, status, messages, kind)
├── AuthenticationFailed  a Brightpearl-shaped 401/403: the app reference or token is wrong or expired; a
│   │                     person must act
│   ├── ReauthorizationRequired  the OAuth token endpoint answered ``invalid_grant``: the install was revoked or
│   │                     uninstalled; the account's admin must authorize the app again
│   └── OAuthClientRejected      the token endpoint answered ``invalid_client``: the relay's app settings are wrong
├── RequestRejected       another 4xx, or a 500 naming errors (Brightpearl answers a bad filter with 500)
└── Unavailable           no usable answer: network error, timeout, 502-504, an HTML page (Cloudflare fronts the
                          API, API.md 8.1), an empty or cut-short body, or throttling that outlasted the waits
                          the client allows itself. Transient: the lane tries again at its next interval.

Every error carries a short machine ``kind`` (one of :data:`KINDS`), the label of the errors metric and what the
account status shows beside the message: counting by kind tells an operator "Cloudflare" from "bad token" at a
glance, which a message never does.
"""

from typing import Literal, get_args

from subscriptions.core.errors import RelayError

ErrorKind = Literal[
    "auth",  # a Brightpearl-shaped 401/403
    "rejected",  # a 4xx (or a 500 naming errors) refusing the request itself
    "not_found",  # a 404 naming errors
    "throttled",  # still throttled after every wait the client allows itself
    "budget",  # the relay's own budget for the account had no room in time
    "timeout",  # no answer within RELAY_BRIGHTPEARL_TIMEOUT_S
    "network",  # the connection failed
    "html",  # an HTML page instead of JSON (Cloudflare's 403, 502, 520-524)
    "empty",  # no body where one is needed
    "malformed",  # a body that is not JSON (cut short) or not the shape asked for
    "unavailable",  # a 5xx that is not throttling
]
KINDS: tuple[str, ...] = get_args(ErrorKind)


class BrightpearlError(RelayError):
    """Brightpearl refused or failed a request; ``str()`` says which request and what Brightpearl said."""

    default_kind: ErrorKind = "unavailable"

    def __init__(
        self, method: str, url: str, status: int | None, messages: list[str], *, kind: ErrorKind | None = None
    ) -> None:
        self.method = method
        self.url = url
        self.status = status
        self.messages = messages
        self.kind: ErrorKind = kind or self.default_kind
        answer = f"HTTP {status}" if status is not None else "no answer"
        detail = "; ".join(messages) if messages else "no message"
        super().__init__(f"Brightpearl {method} {url}: {answer}: {detail}")


class AuthenticationFailed(BrightpearlError):
    """Brightpearl does not accept the credentials (a 401 with a plain-string ``response``, or a JSON 403)."""

    default_kind: ErrorKind = "auth"


class RequestRejected(BrightpearlError):
    """Brightpearl refused the request itself (4xx, or a 500 with an ``errors`` list such as a bad filter)."""

    default_kind: ErrorKind = "rejected"


class Unavailable(BrightpearlError):
    """Brightpearl gave no usable answer; trying again later may work."""

    default_kind: ErrorKind = "unavailable"


class ReauthorizationRequired(AuthenticationFailed):
    """Brightpearl no longer honours the account's refresh token (``invalid_grant``): until someone authorizes the
    app again, no token call can succeed, so none is made. ``reason`` is what Brightpearl said."""

    def __init__(self, method: str, url: str, status: int | None, reason: str) -> None:
        self.reason = reason
        super().__init__(method, url, status, [f"reauthorization required: {reason}"])


class OAuthClientRejected(AuthenticationFailed):
    """The token endpoint does not know the relay's app (``invalid_client``): a configuration error, named by the
    settings that hold the app's reference and secret."""

    SETTINGS = ("RELAY_BRIGHTPEARL_APP_REF", "RELAY_BRIGHTPEARL_CLIENT_SECRET")

    def __init__(self, method: str, url: str, status: int | None) -> None:
        names = " and ".join(self.SETTINGS)
        super().__init__(method, url, status, [f"invalid_client: check {names} (the OAuth app's reference and secret)"])
