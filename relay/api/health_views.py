"""Endpoints for load balancers and monitoring: liveness, readiness, metrics, the API's spec.

None needs the API's token. ``/metrics`` needs ``RELAY_METRICS_TOKEN`` as a bearer token when it is set (its
labels name accounts, which are customers); ``/healthz`` and ``/readyz`` stay open for probes.
"""

import logging

from aiohttp import web
from redis.exceptions import RedisError

from relay.api.auth import check_metrics_token
from relay.api.context import context
from relay.api.routing import openapi, router
from relay.api.schemas import Health, Readiness
from workers.metrics import CONTENT_TYPE

log = logging.getLogger(__name__)

DESCRIPTION = (
    "Polls Brightpearl accounts within their rate limit and delivers every change as a Standard Webhooks "
    "signed HTTP callback. Every path under /v1/ needs 'Authorization: Bearer <token>'. Errors are "
    "application/problem+json. Lists answer {items, next_cursor}, newest first."
)


@router.route("GET", "/healthz", summary="The process is running", auth=False, tag="operations")
async def healthz(request: web.Request) -> Health:
    return Health()


@router.route(
    "GET", "/readyz", summary="Redis answers (503 when it does not)", auth=False, tag="operations", errors=(503,)
)
async def readyz(request: web.Request) -> web.Response:
    try:
        ready = bool(await context(request).redis.ping())
    except (RedisError, OSError) as error:
        log.warning("readiness: Redis does not answer: %s", error)
        ready = False
    body = Readiness(status="ready" if ready else "unavailable", redis=ready)
    return web.Response(status=200 if ready else 503, text=body.model_dump_json(), content_type="application/json")


@router.route(
    "GET",
    "/metrics",
    summary="Prometheus metrics (with RELAY_METRICS_TOKEN set: 'Authorization: Bearer <it>', else 401)",
    auth=False,
    tag="operations",
    errors=(401,),
    media_type="text/plain",
)
async def metrics(request: web.Request) -> web.Response:
    ctx = context(request)
    check_metrics_token(request, ctx.metrics_token)
    await ctx.metrics.refresh_backlog(ctx.redis, ctx.clock())
    return web.Response(body=ctx.metrics.render(), headers={"Content-Type": CONTENT_TYPE})


@router.route("GET", "/openapi.json", summary="This API's OpenAPI 3.1 description", auth=False, tag="operations")
async def openapi_json(request: web.Request) -> web.Response:
    return web.json_response(
        openapi(router.routes, title="Brightpearl webhook relay", version="0.1.0", description=DESCRIPTION)
    )
