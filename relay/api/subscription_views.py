"""``/v1/subscriptions``: who gets which events of which account, at which URL, signed with which secret."""

import ipaddress
from urllib.parse import urlsplit

from aiohttp import web

from relay.api.context import ApiContext, context
from relay.api.routing import router
from relay.api.schemas import (
    SecretView,
    SubscriptionCreate,
    SubscriptionCreated,
    SubscriptionList,
    SubscriptionPatch,
    SubscriptionQuery,
    SubscriptionView,
)
from subscriptions.errors import InvalidInput
from subscriptions.events import validate_patterns
from subscriptions.ids import random_id
from subscriptions.models import SubscriptionRecord, SubscriptionState
from subscriptions.signing import new_secret
from subscriptions.targets import check_url, forbidden_reason, literal_address

TAG = "subscriptions"


def view(sub: SubscriptionRecord) -> SubscriptionView:
    return SubscriptionView.model_validate(sub.model_dump(exclude={"secret"}))


async def check_target(ctx: ApiContext, url: str) -> str:
    """``url`` if it is a callback the relay may call; a host that does not resolve yet is accepted (it is
    checked again on every connection)."""
    check_url(url)
    if ctx.allow_private_targets:
        return url
    literal = literal_address(url)
    host = urlsplit(url).hostname or ""
    addresses = [literal] if literal else [ipaddress.ip_address(a) for a in await ctx.resolve(host)]
    reasons = [(a, forbidden_reason(a)) for a in addresses]
    blocked = [(a, r) for a, r in reasons if r]
    if blocked and len(blocked) == len(reasons):
        address, reason = blocked[0]
        raise InvalidInput(
            f"url host {host!r} resolves to {address}, {reason}: callbacks must reach public "
            "addresses (the operator can set RELAY_ALLOW_PRIVATE_TARGETS=true for local use)"
        )
    return url


@router.route("POST", "/v1/subscriptions", summary="Subscribe a URL to events of an account", status=201, tag=TAG)
async def create_subscription(request: web.Request, body: SubscriptionCreate) -> SubscriptionCreated:
    ctx = context(request)
    if not await ctx.store.account_exists(body.account):
        raise InvalidInput(f"account {body.account!r} is not registered; POST /v1/accounts first")
    now = ctx.clock()
    sub = SubscriptionRecord(
        id=random_id("sub"),
        account=body.account,
        url=await check_target(ctx, body.url),
        events=validate_patterns(body.events),
        description=body.description,
        secret=new_secret(),
        created_at=now,
        updated_at=now,
    )
    await ctx.store.create_subscription(sub)
    return SubscriptionCreated.model_validate(sub.model_dump())


@router.route("GET", "/v1/subscriptions", summary="List subscriptions", tag=TAG)
async def list_subscriptions(request: web.Request, query: SubscriptionQuery) -> SubscriptionList:
    page = await context(request).store.list_subscriptions(
        limit=query.limit, cursor=query.cursor, account=query.account
    )
    return SubscriptionList(items=[view(s) for s in page.items], next_cursor=page.next_cursor)


@router.route("GET", "/v1/subscriptions/{sub_id}", summary="One subscription", tag=TAG, errors=(404,))
async def get_subscription(request: web.Request, sub_id: str) -> SubscriptionView:
    return view(await context(request).store.get_subscription(sub_id))


@router.route(
    "PATCH",
    "/v1/subscriptions/{sub_id}",
    summary="Change a subscription; state active re-enables it",
    tag=TAG,
    errors=(404,),
)
async def patch_subscription(request: web.Request, sub_id: str, body: SubscriptionPatch) -> SubscriptionView:
    ctx = context(request)
    sub = await ctx.store.get_subscription(sub_id)
    update: dict[str, object] = {"updated_at": ctx.clock()}
    if body.url is not None:
        update["url"] = await check_target(ctx, body.url)
    if body.events is not None:
        update["events"] = validate_patterns(body.events)
    if body.description is not None:
        update["description"] = body.description
    if body.state is not None:
        update["state"] = SubscriptionState(body.state)
        update["disabled_reason"] = "disabled by a PATCH" if body.state == "disabled" else None
    changed = sub.model_copy(update=update)
    await ctx.store.save_subscription(changed)
    return view(changed)


@router.route(
    "DELETE", "/v1/subscriptions/{sub_id}", summary="Remove a subscription", status=204, tag=TAG, errors=(404,)
)
async def delete_subscription(request: web.Request, sub_id: str) -> web.Response:
    await context(request).store.delete_subscription(sub_id)
    return web.Response(status=204)


@router.route(
    "GET",
    "/v1/subscriptions/{sub_id}/secret",
    summary="The secret that signs a subscription's webhooks",
    tag=TAG,
    errors=(404,),
)
async def get_secret(request: web.Request, sub_id: str) -> SecretView:
    return SecretView(secret=(await context(request).store.get_subscription(sub_id)).secret)
