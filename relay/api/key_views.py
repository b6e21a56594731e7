"""``/v1/api-keys``: keys scoped to one account, for the admin to hand out and revoke.

A key is shown once, in the answer that creates it; the relay keeps only its SHA-256 (see
``subscriptions.store.api_keys``). Every route here needs the admin token.
"""

from aiohttp import web

from relay.api.access import Access
from relay.api.context import context
from relay.api.routing import route
from relay.api.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyList, ApiKeyQuery, ApiKeyView
from subscriptions.store.api_keys import ApiKeyRecord, ApiKeys

TAG = "api-keys"


def key_view(record: ApiKeyRecord) -> ApiKeyView:
    return ApiKeyView.model_validate(record.model_dump(exclude={"hash"}))


@route(
    "POST",
    "/v1/api-keys",
    summary="Create a key scoped to one account (admin only); the key is shown this once",
    status=201,
    access=Access.ADMIN,
    tag=TAG,
)
async def create_api_key(request: web.Request, body: ApiKeyCreate) -> ApiKeyCreated:
    ctx = context(request)
    record, key = await ApiKeys(ctx.redis).create(body.account, body.description, ctx.clock())
    return ApiKeyCreated(
        id=record.id, key=key, account=record.account, description=record.description, created_at=record.created_at
    )


@route(
    "GET",
    "/v1/api-keys",
    summary="List API keys, without the keys (admin only)",
    access=Access.ADMIN,
    tag=TAG,
)
async def list_api_keys(request: web.Request, query: ApiKeyQuery) -> ApiKeyList:
    page = await ApiKeys(context(request).redis).list_keys(
        limit=query.limit, cursor=query.cursor, account=query.account
    )
    return ApiKeyList(items=[key_view(k) for k in page.items], next_cursor=page.next_cursor)


@route(
    "DELETE",
    "/v1/api-keys/{key_id}",
    summary="Revoke an API key at once (admin only)",
    status=204,
    access=Access.ADMIN,
    tag=TAG,
    errors=(404,),
)
async def delete_api_key(request: web.Request, key_id: str) -> web.Response:
    await ApiKeys(context(request).redis).revoke(key_id)
    return web.Response(status=204)


ROUTES = (create_api_key, list_api_keys, delete_api_key)
