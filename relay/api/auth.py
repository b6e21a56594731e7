"""Bearer-token authentication of everything under ``/v1/``."""

import hmac
from typing import Any

from aiohttp import web

from relay.api.context import context
from relay.api.problems import Unauthenticated

PROTECTED_PREFIX = "/v1/"


@web.middleware
async def bearer_auth(request: web.Request, handler: Any) -> web.StreamResponse:
    if request.path.startswith(PROTECTED_PREFIX):
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if not header:
            raise Unauthenticated("send the API token as 'Authorization: Bearer <token>'")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("the Authorization header must be 'Bearer <token>'")
        if not hmac.compare_digest(token.strip().encode(), context(request).admin_token.encode()):
            raise Unauthenticated("the bearer token is not valid")
    response: web.StreamResponse = await handler(request)
    return response
