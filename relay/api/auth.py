"""How each access a route may declare is checked: the admin token, an account-scoped API key, the metrics
token, or nothing (see ``relay.api.access.Access``; the gate in ``relay.api.gate`` calls these checks).

Keys are looked up in Redis on every request (no cache), so a revoked key is refused on the very next one. A
header whose bytes are not UTF-8 (aiohttp hands it over with the bad bytes as lone surrogates) is a 401 like
any other wrong token, never an error.
"""

import hmac

from aiohttp import web

from relay.api.access import ADMIN, PRINCIPAL_KEY, Access, Principal
from relay.api.context import ApiContext, context
from relay.api.gate import Check
from relay.api.liveness_views import PROBES
from relay.api.problems import Forbidden, Unauthenticated
from subscriptions.store.api_keys import ApiKeys


def encoded(text: str) -> bytes | None:
    """``text`` as UTF-8, or None if it cannot be (a header or cookie that arrived as bytes other than UTF-8)."""
    try:
        return text.encode()
    except UnicodeEncodeError:
        return None


def same_secret(given: str, expected: str) -> bool:
    """Whether ``given`` is ``expected``, compared in constant time; never raises on undecodable input."""
    given_bytes = encoded(given)
    return given_bytes is not None and hmac.compare_digest(given_bytes, expected.encode())


async def authenticate(ctx: ApiContext, token: str) -> Principal | None:
    """Who ``token`` belongs to: the admin, an account-scoped key, or nobody (None)."""
    if encoded(token) is None:
        return None
    if same_secret(token, ctx.admin_token):
        return ADMIN
    store = ApiKeys(ctx.redis)
    record = await store.find(token)
    if record is None:
        return None
    await store.touch(record, ctx.clock())
    return Principal(account=record.account, key_id=record.id)


def bearer_token(request: web.Request) -> str:
    """The token of the request's ``Authorization: Bearer <token>`` header; :class:`Unauthenticated` without one."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if not header:
        raise Unauthenticated("send the API token as 'Authorization: Bearer <token>'")
    if encoded(header) is None:
        raise Unauthenticated("the Authorization header is not UTF-8; send 'Bearer <token>'")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("the Authorization header must be 'Bearer <token>'")
    return token.strip()


def check_metrics_token(request: web.Request, metrics_token: str | None) -> None:
    """Raise :class:`Unauthenticated` unless ``/metrics`` is open (no token set) or the request bears the token."""
    if metrics_token is None:
        return
    try:
        given = bearer_token(request)
    except Unauthenticated:
        raise Unauthenticated("/metrics needs 'Authorization: Bearer <RELAY_METRICS_TOKEN>'") from None
    if not same_secret(given, metrics_token):
        raise Unauthenticated("the bearer token is not RELAY_METRICS_TOKEN")


async def anyone(request: web.Request) -> None:
    """:attr:`Access.OPEN`: nothing to check."""


async def metrics_scraper(request: web.Request) -> None:
    """:attr:`Access.METRICS`: the app's metrics token, when it has one."""
    check_metrics_token(request, request.app[PROBES].metrics_token)


async def token_holder(request: web.Request) -> None:
    """:attr:`Access.ACCOUNT`: the admin token or a valid API key, which becomes the request's principal."""
    found = await authenticate(context(request), bearer_token(request))
    if found is None:
        raise Unauthenticated("the bearer token is not valid")
    request[PRINCIPAL_KEY] = found


async def admin(request: web.Request) -> None:
    """:attr:`Access.ADMIN`: the admin token; a valid API key gets 403 (before the body is read, so a scoped key
    learns nothing from validation)."""
    await token_holder(request)
    if not request[PRINCIPAL_KEY].is_admin:
        raise Forbidden("this route needs the admin token; an account-scoped key cannot use it")


API_CHECKS: dict[Access, Check] = {
    Access.OPEN: anyone,
    Access.METRICS: metrics_scraper,
    Access.ACCOUNT: token_holder,
    Access.ADMIN: admin,
}
"""The checks of the API's accesses (the dashboard adds :attr:`Access.SIGNED_IN`'s)."""

PROBE_CHECKS: dict[Access, Check] = {Access.OPEN: anyone, Access.METRICS: metrics_scraper}
"""The checks of a process's probe server: nothing there needs the API's token."""
