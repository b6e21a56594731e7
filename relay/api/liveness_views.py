"""Endpoints for load balancers and monitoring: liveness (``/healthz``), readiness (``/readyz``) and metrics.

One set of views for every process: the API serves all three, and the worker's own small server (see
``relay.api.app.create_probe_app``) serves liveness and metrics. They read what they need from the app's
:data:`PROBES`. None needs the API's token; ``/metrics`` needs ``RELAY_METRICS_TOKEN`` as a bearer token when it
is set (its labels name accounts, which are customers); ``/healthz`` and ``/readyz`` stay open for probes.

"Liveness" here is the process's; a subscription's success rate is its delivery record
(``subscriptions.store.health``), shown by the subscription views.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from aiohttp import web
from redis.asyncio import Redis
from redis.exceptions import RedisError

from relay.api.access import Access
from relay.api.routing import route
from relay.api.schemas import Health, Readiness
from workers.metrics import CONTENT_TYPE, Metrics

log = logging.getLogger(__name__)

TAG = "operations"


class Probes(Protocol):
    """What the probe views read: the process's Redis, its metrics and clock, and the metrics token (None: open).

    The API's :class:`~relay.api.context.ApiContext` is one; the worker's server has a :class:`ProcessProbes`.
    """

    @property
    def redis(self) -> "Redis": ...

    @property
    def metrics(self) -> Metrics: ...

    @property
    def clock(self) -> Callable[[], datetime]: ...

    @property
    def metrics_token(self) -> str | None: ...


@dataclass
class ProcessProbes:
    """The probes of a process without the API (the worker)."""

    redis: "Redis"
    metrics: Metrics
    clock: Callable[[], datetime]
    metrics_token: str | None = None


PROBES: web.AppKey[Probes] = web.AppKey("relay_probes")


@route("GET", "/healthz", summary="The process is running", access=Access.OPEN, tag=TAG)
async def healthz(request: web.Request) -> Health:
    return Health()


@route("GET", "/readyz", summary="Redis answers (503 when it does not)", access=Access.OPEN, tag=TAG, errors=(503,))
async def readyz(request: web.Request) -> web.Response:
    try:
        ready = bool(await request.app[PROBES].redis.ping())
    except (RedisError, OSError) as error:
        log.warning("readiness: Redis does not answer: %s", error)
        ready = False
    body = Readiness(status="ready" if ready else "unavailable", redis=ready)
    return web.Response(status=200 if ready else 503, text=body.model_dump_json(), content_type="application/json")


@route(
    "GET",
    "/metrics",
    summary="Prometheus metrics (with RELAY_METRICS_TOKEN set: 'Authorization: Bearer <it>', else 401)",
    access=Access.METRICS,
    tag=TAG,
    media_type="text/plain",
)
async def metrics(request: web.Request) -> web.Response:
    probes = request.app[PROBES]
    await probes.metrics.refresh_backlog(probes.redis, probes.clock())
    return web.Response(body=probes.metrics.render(), headers={"Content-Type": CONTENT_TYPE})


ROUTES = (healthz, readyz, metrics)
"""What the API serves for probes."""

PROCESS_ROUTES = (healthz, metrics)
"""What the worker's own server serves."""
