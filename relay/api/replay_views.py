"""Sending again: a ``ping`` to test a subscription, and recovering its failed or skipped deliveries."""

import math

from aiohttp import web

from relay.api.access import Access
from relay.api.context import context
from relay.api.delivery_views import delivery_view
from relay.api.routing import route
from relay.api.schemas import DeliveryView, RecoverRequest, RecoveryView
from relay.api.subscription_views import ensure_enabled, visible_subscription
from subscriptions.core.envelope import ping_event
from subscriptions.core.errors import Conflict, NotFound, TooMany
from subscriptions.core.ids import EVENT_PREFIX, random_id
from subscriptions.core.times import ms
from subscriptions.store import keyspace
from subscriptions.store.quotas import SlidingWindow
from subscriptions.store.recovery import Recoveries, Recovery

TAG = "subscriptions"


def recovery_view(recovery: Recovery) -> RecoveryView:
    return RecoveryView.model_validate(recovery.model_dump() | {"status": recovery.status})


@route(
    "POST",
    "/v1/subscriptions/{sub_id}/test",
    summary="Send a ping event to this subscription alone",
    status=202,
    access=Access.ACCOUNT,
    tag=TAG,
    errors=(404, 409, 429),
)
async def send_ping(request: web.Request, sub_id: str) -> DeliveryView:
    ctx = context(request)
    sub = await visible_subscription(request, sub_id)
    ensure_enabled(sub, "test it")
    now = ctx.clock()
    pings = SlidingWindow(
        ctx.redis, keyspace.account_pings(sub.account), limit=ctx.test_pings_per_minute, window_ms=60_000
    )
    use = await pings.take(ms(now))
    if use.refused:
        wait_s = math.ceil(use.wait_ms / 1000)
        raise TooMany(
            f"account {sub.account!r} has sent {ctx.test_pings_per_minute} test pings in the last minute, the most "
            f"it may (RELAY_TEST_PINGS_PER_MINUTE); try again in {wait_s} s",
            retry_after_s=wait_s,
        )
    event = ping_event(sub.account, sub.id, now, random_id(EVENT_PREFIX))
    delivery = await ctx.queue.send_to(event, sub, now)
    ctx.on_deliveries()
    return await delivery_view(ctx, delivery)


@route(
    "POST",
    "/v1/subscriptions/{sub_id}/recover",
    summary="Re-send every failed or skipped delivery of this subscription created in a window",
    status=202,
    access=Access.ACCOUNT,
    tag=TAG,
    errors=(404, 409),
)
async def recover(request: web.Request, sub_id: str, body: RecoverRequest) -> RecoveryView:
    ctx = context(request)
    sub = await visible_subscription(request, sub_id)
    ensure_enabled(sub, "recover its deliveries")
    if ctx.jobs is None:
        raise Conflict("this API process has no job queue to run a recovery on")
    now = ctx.clock()
    recovery = await Recoveries(ctx.store, ctx.queue).start(sub.id, body.since, body.until or now, now)
    await ctx.jobs.enqueue_job("recover", recovery.id, _job_id=f"recover:{recovery.id}")
    return recovery_view(recovery)


@route(
    "GET",
    "/v1/subscriptions/{sub_id}/recover/{rec_id}",
    summary="How far a recovery has got",
    access=Access.ACCOUNT,
    tag=TAG,
    errors=(404,),
)
async def recovery_progress(request: web.Request, sub_id: str, rec_id: str) -> RecoveryView:
    ctx = context(request)
    sub = await visible_subscription(request, sub_id)
    recovery = await Recoveries(ctx.store, ctx.queue).progress(rec_id)
    if recovery.subscription != sub.id:
        raise NotFound(f"recovery {rec_id!r} does not exist")
    return recovery_view(recovery)


ROUTES = (send_ping, recover, recovery_progress)
