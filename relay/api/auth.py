"""Bearer-token authentication of everything under ``/v1/``: the admin token or an account-scoped API key.

Keys are looked up in Redis on every request (no cache), so a revoked key is refused on the very next one.
"""

import hmac
from typing import Any

from aiohttp import web

from relay.api.access import ADMIN, PRINCIPAL_KEY, Principal
from relay.api.context import ApiContext, context
from relay.api.problems import Unauthenticated
from subscriptions.api_keys import ApiKeys

PROTECTED_PREFIX = "/v1/"


async def authenticate(ctx: ApiContext, token: str) -> Principal | None:
    """Who ``token`` belongs to: the admin, an account-scoped key, or nobody (None)."""
    if hmac.compare_digest(token.encode(), ctx.admin_token.encode()):
        return ADMIN
    store = ApiKeys(ctx.redis)
    record = await store.find(token)
    if record is None:
        return None
    await store.touch(record, ctx.clock())
    return Principal(account=record.account, key_id=record.id)


@web.middleware
async def bearer_auth(request: web.Request, handler: Any) -> web.StreamResponse:
    if request.path.startswith(PROTECTED_PREFIX):
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if not header:
            raise Unauthenticated("send the API token as 'Authorization: Bearer <token>'")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("the Authorization header must be 'Bearer <token>'")
        found = await authenticate(context(request), token.strip())
        if found is None:
            raise Unauthenticated("the bearer token is not valid")
        request[PRINCIPAL_KEY] = found
    response: web.StreamResponse = await handler(request)
    return response
