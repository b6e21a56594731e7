"""The app factories: the HTTP API (with the dashboard), and a process's probe server; each registers its routes
explicitly, with the access each declares, behind the same two middlewares (problems outside, the gate inside)."""

from collections.abc import Sequence
from typing import Any

from aiohttp import web

from relay.api import (
    account_views,
    delivery_views,
    hook_views,
    key_views,
    liveness_views,
    replay_views,
    subscription_views,
)
from relay.api.access import Access
from relay.api.auth import API_CHECKS, PROBE_CHECKS
from relay.api.context import CONTEXT, ApiContext
from relay.api.gate import GATE, Gate, gate
from relay.api.liveness_views import PROBES, Probes
from relay.api.openapi import document, openapi_json
from relay.api.problems import MAX_BODY_BYTES, problem_middleware
from relay.api.routing import Route, install
from relay.ui import callback
from relay.ui import pages as dashboard

API_ROUTES: tuple[Route, ...] = (
    *account_views.ROUTES,
    *subscription_views.ROUTES,
    *delivery_views.ROUTES,
    *liveness_views.ROUTES,
    openapi_json,
    *key_views.ROUTES,
    *replay_views.ROUTES,
    *hook_views.ROUTES,
    *callback.ROUTES,
)
"""Every route of the API, in the order its OpenAPI document lists them."""

API_AREAS = (("/v1/", Access.ACCOUNT),)
"""A request under ``/v1/`` that matches no route still needs a valid token first (401, then 404 or 405)."""


def create_app(ctx: ApiContext) -> web.Application:
    """The API as an aiohttp application; the caller owns the context's connections."""
    app = web.Application(middlewares=[problem_middleware, gate], client_max_size=MAX_BODY_BYTES)
    app[CONTEXT] = ctx
    app[PROBES] = ctx
    app[GATE] = Gate(checks=dict(API_CHECKS), unmatched=API_AREAS)
    install(app, API_ROUTES)
    dashboard.install(app)  # /ui: pages open to anyone, or for a dashboard session (Access.SIGNED_IN)
    return app


def create_probe_app(probes: Probes, routes: Sequence[Route] = liveness_views.PROCESS_ROUTES) -> web.Application:
    """A process's own small server (the worker's): liveness and metrics, with the API's answers and checks."""
    app = web.Application(middlewares=[problem_middleware, gate])
    app[PROBES] = probes
    app[GATE] = Gate(checks=dict(PROBE_CHECKS))
    install(app, routes)
    return app


def openapi_document(**info: Any) -> dict[str, Any]:
    """The API's OpenAPI document, as ``/openapi.json`` serves it (``info`` may set title, version, description)."""
    return document(API_ROUTES, **info)
