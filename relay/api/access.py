"""Who is calling, and what they may see: the admin token sees everything, an account-scoped key one account.

Every route declares its :class:`Access`; the gate (``relay.api.gate``) checks that declaration before the
handler runs and, on the routes that need a token, puts a :class:`Principal` on the request. Handlers ask it
before they answer. A scoped key asking for another account's object gets the same 404 as for an object that
does not exist, so a key learns nothing about other tenants.
"""

from dataclasses import dataclass
from enum import Enum

from aiohttp import web

from relay.api.problems import Unauthenticated
from subscriptions.core.errors import NotFound


class Access(Enum):
    """Who may call a route; each route declares one, and a route without one is served to nobody."""

    OPEN = "open"
    """Anyone, without a token: the probes, the API's description, the dashboard's login page."""

    METRICS = "metrics"
    """``RELAY_METRICS_TOKEN`` as a bearer token when it is set, anyone when it is not."""

    ACCOUNT = "account"
    """The admin token or an account-scoped key; a key sees its own account's objects only."""

    ADMIN = "admin"
    """The admin token only; an account-scoped key gets 403."""

    SIGNED_IN = "signed-in"
    """A dashboard session (its cookie); anyone else is sent to the login page."""

    @property
    def needs_bearer_token(self) -> bool:
        """Whether the route needs the admin token or an API key (what the OpenAPI document calls bearerAuth)."""
        return self in (Access.ACCOUNT, Access.ADMIN)


@dataclass(frozen=True)
class Principal:
    """The caller: the admin (``account`` is None) or a key scoped to one account."""

    account: str | None = None
    key_id: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.account is None

    def can_see(self, account: str) -> bool:
        return self.account is None or self.account == account


ADMIN = Principal()
PRINCIPAL_KEY = web.RequestKey("relay_principal", Principal)  # a typed key: aiohttp warns on string keys


def principal(request: web.Request) -> Principal:
    """The caller of a request, as the gate found it; :class:`Unauthenticated` when the gate found nobody (a
    route open to anyone has no caller to ask about)."""
    if PRINCIPAL_KEY not in request:
        raise Unauthenticated("send the API token as 'Authorization: Bearer <token>'")
    return request[PRINCIPAL_KEY]


def ensure_visible(request: web.Request, account: str, what: str) -> None:
    """Raise the not-found answer for ``what`` unless the caller may see ``account``'s objects."""
    if not principal(request).can_see(account):
        raise NotFound(f"{what} does not exist")


def scope(request: web.Request, account: str | None) -> str | None:
    """The account a list should be limited to: the key's own, or for the admin whatever was asked.

    A scoped key asking to filter by another account gets the 404 of an account that does not exist.
    """
    own = principal(request).account
    if own is None:
        return account
    if account is not None and account != own:
        raise NotFound(f"account {account!r} does not exist")
    return own
