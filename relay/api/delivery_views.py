"""``/v1/deliveries`` and ``/v1/events``: what was detected, where it went, and every attempt's answer."""

import json

from aiohttp import web

from relay.api.access import Access, ensure_visible, scope
from relay.api.context import ApiContext, context
from relay.api.routing import route
from relay.api.schemas import (
    DeliveryList,
    DeliveryQuery,
    DeliverySummary,
    DeliveryView,
    EventList,
    EventQuery,
    EventSummary,
    EventView,
)
from relay.api.subscription_views import ensure_enabled
from subscriptions.core.errors import InvalidInput
from subscriptions.core.events import validate_patterns
from subscriptions.core.models import DeliveryRecord, EventRecord


def type_pattern(asked: str | None) -> str | None:
    """A ``type`` filter: an event name or a pattern as subscriptions take them (``order.*``); one that matches no
    event is a 422 rather than an empty list that looks like nothing happened."""
    if asked is None:
        return None
    try:
        (pattern,) = validate_patterns([asked])
    except InvalidInput as error:
        raise InvalidInput(f"type: {error}") from None
    return pattern


def summary(delivery: DeliveryRecord) -> DeliverySummary:
    return DeliverySummary.model_validate(delivery.model_dump(exclude={"account"}))


async def delivery_view(ctx: ApiContext, delivery: DeliveryRecord) -> DeliveryView:
    """A delivery with every attempt, oldest first."""
    return DeliveryView(**summary(delivery).model_dump(), attempts=await ctx.store.attempts(delivery.id))


async def visible_delivery(request: web.Request, delivery_id: str) -> DeliveryRecord:
    delivery = await context(request).store.get_delivery(delivery_id)
    ensure_visible(request, delivery.account, f"delivery {delivery_id!r}")
    return delivery


def event_summary(event: EventRecord) -> EventSummary:
    return EventSummary.model_validate(event.model_dump(exclude={"body"}))


@route(
    "GET",
    "/v1/deliveries",
    summary="List deliveries, newest first; type takes an event name or a pattern (order.*)",
    access=Access.ACCOUNT,
    tag="deliveries",
)
async def list_deliveries(request: web.Request, query: DeliveryQuery) -> DeliveryList:
    page = await context(request).store.list_deliveries(
        limit=query.limit,
        cursor=query.cursor,
        subscription=query.subscription,
        event_id=query.event_id,
        type_=type_pattern(query.type),
        status=query.status,
        account=scope(request, None),
    )
    return DeliveryList(items=[summary(d) for d in page.items], next_cursor=page.next_cursor)


@route(
    "GET",
    "/v1/deliveries/{delivery_id}",
    summary="One delivery with every attempt",
    access=Access.ACCOUNT,
    tag="deliveries",
    errors=(404,),
)
async def get_delivery(request: web.Request, delivery_id: str) -> DeliveryView:
    return await delivery_view(context(request), await visible_delivery(request, delivery_id))


@route(
    "POST",
    "/v1/deliveries/{delivery_id}/retry",
    summary="Send a delivery again now, whatever its state",
    status=202,
    access=Access.ACCOUNT,
    tag="deliveries",
    errors=(404, 409),
)
async def retry_delivery(request: web.Request, delivery_id: str) -> DeliveryView:
    ctx = context(request)
    delivery = await visible_delivery(request, delivery_id)
    (sub,) = await ctx.store.load_subscriptions([delivery.subscription])
    if sub is not None:
        ensure_enabled(sub, "retry its deliveries")
    delivery = await ctx.queue.schedule_now(delivery, ctx.clock())
    ctx.on_deliveries()
    return await delivery_view(ctx, delivery)


@route(
    "GET",
    "/v1/events",
    summary="List events, newest first; type takes an event name or a pattern",
    access=Access.ACCOUNT,
    tag="events",
)
async def list_events(request: web.Request, query: EventQuery) -> EventList:
    page = await context(request).store.list_events(
        limit=query.limit,
        cursor=query.cursor,
        account=scope(request, query.account),
        type_=type_pattern(query.type),
        since=query.since,
    )
    return EventList(items=[event_summary(e) for e in page.items], next_cursor=page.next_cursor)


@route(
    "GET",
    "/v1/events/{event_id}",
    summary="One event with its full body",
    access=Access.ACCOUNT,
    tag="events",
    errors=(404,),
)
async def get_event(request: web.Request, event_id: str) -> EventView:
    event = await context(request).store.get_event(event_id)
    ensure_visible(request, event.account, f"event {event_id!r}")
    return EventView(**event_summary(event).model_dump(), body=json.loads(event.body))


ROUTES = (list_deliveries, get_delivery, retry_delivery, list_events, get_event)
