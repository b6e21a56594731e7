"""Who is calling, and what they may see: the admin token sees everything, an account-scoped key one account.

The authentication middleware (``relay.api.auth``) puts a :class:`Principal` on every ``/v1/`` request;
handlers ask it before they answer. A scoped key asking for another account's object gets the same 404 as
for an object that does not exist, so a key learns nothing about other tenants.
"""

from dataclasses import dataclass

from aiohttp import web

from relay.api.problems import Forbidden
from subscriptions.errors import NotFound


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
    """The caller of a request (the admin for requests that needed no token)."""
    found = request.get(PRINCIPAL_KEY)
    return found if isinstance(found, Principal) else ADMIN


def require_admin(request: web.Request) -> None:
    """Raise 403 unless the caller holds the admin token."""
    if not principal(request).is_admin:
        raise Forbidden("this route needs the admin token; an account-scoped key cannot use it")


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
