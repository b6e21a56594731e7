"""``/v1/subscriptions``: who gets which events of which account, at which URL, signed with which secret."""

import ipaddress
from collections.abc import Sequence
from datetime import timedelta

from aiohttp import web

from relay.api.access import Access, ensure_visible, scope
from relay.api.context import ApiContext, context
from relay.api.routing import route
from relay.api.schemas import (
    DeliveryOptions,
    RotatedSecret,
    SecretView,
    SubscriptionCreate,
    SubscriptionCreated,
    SubscriptionHealth,
    SubscriptionList,
    SubscriptionPatch,
    SubscriptionQuery,
    SubscriptionView,
)
from subscriptions.core.errors import Conflict, InvalidInput
from subscriptions.core.events import validate_patterns
from subscriptions.core.ids import random_id
from subscriptions.core.models import SubscriptionRecord, SubscriptionState
from subscriptions.core.signing import new_secret
from subscriptions.core.targets import check_url, connect_host, forbidden_host_reason, forbidden_reason, host_address
from subscriptions.store.health import Health, load_health, shown_state

TAG = "subscriptions"


def view(sub: SubscriptionRecord, health: Health) -> SubscriptionView:
    fields = sub.model_dump(exclude={"secret", "previous_secret"})
    fields["state"] = shown_state(sub.state, health)
    fields["health"] = SubscriptionHealth(
        failing_since=health.failing_since,
        last_success_at=health.last_success_at,
        last_failure_at=health.last_failure_at,
        success_rate=health.success_rate,
        recent_attempts=health.recent_attempts,
    )
    return SubscriptionView.model_validate(fields)


async def views(ctx: ApiContext, subs: Sequence[SubscriptionRecord]) -> list[SubscriptionView]:
    """Subscriptions as the API shows them, with their health (one Redis round trip for all)."""
    healths = await load_health(ctx.redis, [s.id for s in subs])
    return [view(sub, health) for sub, health in zip(subs, healths, strict=True)]


async def visible_subscription(request: web.Request, sub_id: str) -> SubscriptionRecord:
    """The subscription, if the caller may see it (else the same 404 as for one that does not exist)."""
    sub = await context(request).store.get_subscription(sub_id)
    ensure_visible(request, sub.account, f"subscription {sub_id!r}")
    return sub


def ensure_enabled(sub: SubscriptionRecord, action: str) -> None:
    if sub.state == SubscriptionState.disabled:
        raise Conflict(
            f"subscription {sub.id} is disabled ({sub.disabled_reason}); PATCH it to "
            f'{{"state": "active"}} before you {action}'
        )


def options(body: DeliveryOptions) -> dict[str, object]:
    """The delivery options a request set (a null sets an option back to the relay's setting)."""
    return {name: getattr(body, name) for name in DeliveryOptions.model_fields if name in body.model_fields_set}


async def check_target(ctx: ApiContext, url: str) -> str:
    """``url`` if it is a callback the relay may call; a host that does not resolve yet is accepted (it is
    checked again on every connection). The host checked is the one the delivery client connects to (see
    :func:`subscriptions.core.targets.connect_host`), and ``url`` is stored exactly as given, which is what was
    checked: a host must be written so that every reading of it is the same."""
    check_url(url)
    if ctx.allow_private_targets:
        return url
    host = connect_host(url)
    literal = host_address(host)
    if literal is None and (named := forbidden_host_reason(host)):
        raise InvalidInput(
            f"url host {host!r} is {named}: callbacks must reach public addresses "
            "(the operator can set RELAY_ALLOW_PRIVATE_TARGETS=true for local use)"
        )
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


@route(
    "POST",
    "/v1/subscriptions",
    summary="Subscribe a URL to events of an account",
    status=201,
    access=Access.ACCOUNT,
    tag=TAG,
    errors=(429,),
)
async def create_subscription(request: web.Request, body: SubscriptionCreate) -> SubscriptionCreated:
    ctx = context(request)
    ensure_visible(request, body.account, f"account {body.account!r}")
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
        **options(body),
    )
    await ctx.store.create_subscription(sub, limit=ctx.max_subscriptions_per_account)
    return SubscriptionCreated(**view(sub, Health()).model_dump(), secret=sub.secret)


@route("GET", "/v1/subscriptions", summary="List subscriptions", access=Access.ACCOUNT, tag=TAG)
async def list_subscriptions(request: web.Request, query: SubscriptionQuery) -> SubscriptionList:
    ctx = context(request)
    page = await ctx.store.list_subscriptions(
        limit=query.limit, cursor=query.cursor, account=scope(request, query.account)
    )
    return SubscriptionList(items=await views(ctx, page.items), next_cursor=page.next_cursor)


@route("GET", "/v1/subscriptions/{sub_id}", summary="One subscription", access=Access.ACCOUNT, tag=TAG, errors=(404,))
async def get_subscription(request: web.Request, sub_id: str) -> SubscriptionView:
    (shown,) = await views(context(request), [await visible_subscription(request, sub_id)])
    return shown


@route(
    "PATCH",
    "/v1/subscriptions/{sub_id}",
    summary="Change a subscription; state active re-enables it",
    access=Access.ACCOUNT,
    tag=TAG,
    errors=(404,),
)
async def patch_subscription(request: web.Request, sub_id: str, body: SubscriptionPatch) -> SubscriptionView:
    ctx = context(request)
    sub = await visible_subscription(request, sub_id)
    update: dict[str, object] = {"updated_at": ctx.clock(), **options(body)}
    if body.url is not None:
        update["url"] = await check_target(ctx, body.url)
    if body.events is not None:
        update["events"] = validate_patterns(body.events)
    if body.description is not None:
        update["description"] = body.description
    if body.state is not None and body.state != sub.state:
        disabling = body.state == "disabled"
        update["state"] = SubscriptionState(body.state)
        update["disabled_reason"] = "disabled by a PATCH" if disabling else None
        update["disabled_at"] = ctx.clock() if disabling else None
    changed = SubscriptionRecord.model_validate(sub.model_dump() | update)
    if body.state == "active":
        await ctx.store.reenable_subscription(changed)  # also forgets that it was failing
    else:
        await ctx.store.save_subscription(changed)
    (shown,) = await views(ctx, [changed])
    return shown


@route(
    "DELETE",
    "/v1/subscriptions/{sub_id}",
    summary="Remove a subscription",
    status=204,
    access=Access.ACCOUNT,
    tag=TAG,
    errors=(404,),
)
async def delete_subscription(request: web.Request, sub_id: str) -> web.Response:
    await visible_subscription(request, sub_id)
    await context(request).store.delete_subscription(sub_id)
    return web.Response(status=204)


@route(
    "GET",
    "/v1/subscriptions/{sub_id}/secret",
    summary="The secret that signs a subscription's webhooks",
    access=Access.ACCOUNT,
    tag=TAG,
    errors=(404,),
)
async def get_secret(request: web.Request, sub_id: str) -> SecretView:
    return SecretView(secret=(await visible_subscription(request, sub_id)).secret)


@route(
    "POST",
    "/v1/subscriptions/{sub_id}/rotate-secret",
    summary="Replace a subscription's secret; the old one keeps signing beside it for a grace period",
    access=Access.ACCOUNT,
    tag=TAG,
    errors=(404,),
)
async def rotate_secret(request: web.Request, sub_id: str) -> RotatedSecret:
    ctx = context(request)
    sub = await visible_subscription(request, sub_id)
    now = ctx.clock()
    valid_until = now + timedelta(seconds=ctx.secret_grace_s)
    rotated = sub.model_copy(
        update={
            "secret": new_secret(),
            "previous_secret": sub.secret,
            "previous_secret_valid_until": valid_until,
            "updated_at": now,
        }
    )
    await ctx.store.save_subscription(rotated)
    return RotatedSecret(secret=rotated.secret, previous_valid_until=valid_until)


ROUTES = (
    create_subscription,
    list_subscriptions,
    get_subscription,
    patch_subscription,
    delete_subscription,
    get_secret,
    rotate_secret,
)
