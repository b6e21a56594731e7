"""The HTTP API application: middlewares, routes and the shared context."""

from aiohttp import web

from relay.api import (  # noqa: F401 - routes
    account_views,
    delivery_views,
    health_views,
    key_views,
    replay_views,
    subscription_views,
)
from relay.api.auth import bearer_auth
from relay.api.context import CONTEXT, ApiContext
from relay.api.problems import MAX_BODY_BYTES, problem_middleware
from relay.api.routing import router
from relay.ui import pages as dashboard


def create_app(ctx: ApiContext) -> web.Application:
    """The API as an aiohttp application; the caller owns the context's connections."""
    app = web.Application(middlewares=[problem_middleware, bearer_auth], client_max_size=MAX_BODY_BYTES)
    app[CONTEXT] = ctx
    router.install(app)
    dashboard.install(app)  # /ui: outside /v1/, its pages check their own login cookie
    return app
