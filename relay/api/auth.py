"""Bearer-token authentication of everything under ``/v1/``: the admin token or an account-scoped API key.

Keys are looked up in Redis on every request (no cache), so a revoked key is refused on the very next one. A
header whose bytes are not UTF-8 (aiohttp hands it over with the bad bytes as lone surrogates) is a 401 like
any other wrong token, never an error.
"""

import hmac
from typing import Any

from aiohttp import web

from relay.api.access import ADMIN, PRINCIPAL_KEY, Principal
from relay.api.context import ApiContext, context
from relay.api.problems import Unauthenticated
from subscriptions.api_keys import ApiKeys

PROTECTED_PREFIX = "/v1/"


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


@web.middleware
async def bearer_auth(request: web.Request, handler: Any) -> web.StreamResponse:
    if request.path.startswith(PROTECTED_PREFIX):
        found = await authenticate(context(request), bearer_token(request))
        if found is None:
            raise Unauthenticated("the bearer token is not valid")
        request[PRINCIPAL_KEY] = found
    response: web.StreamResponse = await handler(request)
    return response
