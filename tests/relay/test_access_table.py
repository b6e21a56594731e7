"""Who may call what: every route the API serves declares its access, the OpenAPI document shows that declaration,
and the gate refuses exactly the callers the declaration does not admit. A route declaring no access is served
to nobody, and an app cannot even be built with one.

Every route registered on the real app (the API's and the dashboard's) is called with no token, a made-up
token, an account-scoped key, the admin token and the metrics token; each answer must be a refusal (401, 403 or
the dashboard's redirect to its login page) exactly where the route's declaration says.
"""

import dataclasses
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer, make_mocked_request
from redis.asyncio import Redis

from relay.api.access import Access, principal
from relay.api.app import API_ROUTES, create_app, create_probe_app, openapi_document
from relay.api.context import ApiContext
from relay.api.gate import GATE, Gate
from relay.api.liveness_views import ProcessProbes, healthz
from relay.api.problems import Unauthenticated
from relay.api.routing import APP_ROUTES, Route, install
from subscriptions.store.api_keys import ApiKeys
from subscriptions.store.records import Store
from tests.e2e import register_unpolled
from workers.metrics import Metrics

ADMIN_TOKEN = "access-admin-token-0123456789abcdefgh"
METRICS_TOKEN = "access-metrics-token-0123456789"
NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)

Client = TestClient[web.Request, web.Application]

EXPECTED: dict[tuple[str, str], Access] = {
    ("POST", "/v1/accounts"): Access.ADMIN,
    ("GET", "/v1/accounts"): Access.ACCOUNT,
    ("GET", "/v1/accounts/{code}"): Access.ACCOUNT,
    ("PATCH", "/v1/accounts/{code}"): Access.ADMIN,
    ("DELETE", "/v1/accounts/{code}"): Access.ADMIN,
    ("GET", "/v1/accounts/{code}/authorize"): Access.ACCOUNT,  # an integrator may connect its own account
    ("POST", "/v1/subscriptions"): Access.ACCOUNT,
    ("GET", "/v1/subscriptions"): Access.ACCOUNT,
    ("GET", "/v1/subscriptions/{sub_id}"): Access.ACCOUNT,
    ("PATCH", "/v1/subscriptions/{sub_id}"): Access.ACCOUNT,
    ("DELETE", "/v1/subscriptions/{sub_id}"): Access.ACCOUNT,
    ("GET", "/v1/subscriptions/{sub_id}/secret"): Access.ACCOUNT,
    ("POST", "/v1/subscriptions/{sub_id}/rotate-secret"): Access.ACCOUNT,
    ("POST", "/v1/subscriptions/{sub_id}/test"): Access.ACCOUNT,
    ("POST", "/v1/subscriptions/{sub_id}/recover"): Access.ACCOUNT,
    ("GET", "/v1/subscriptions/{sub_id}/recover/{rec_id}"): Access.ACCOUNT,
    ("GET", "/v1/deliveries"): Access.ACCOUNT,
    ("GET", "/v1/deliveries/{delivery_id}"): Access.ACCOUNT,
    ("POST", "/v1/deliveries/{delivery_id}/retry"): Access.ACCOUNT,
    ("GET", "/v1/events"): Access.ACCOUNT,
    ("GET", "/v1/events/{event_id}"): Access.ACCOUNT,
    ("POST", "/v1/api-keys"): Access.ADMIN,
    ("GET", "/v1/api-keys"): Access.ADMIN,
    ("DELETE", "/v1/api-keys/{key_id}"): Access.ADMIN,
    ("GET", "/healthz"): Access.OPEN,
    ("GET", "/readyz"): Access.OPEN,
    ("GET", "/metrics"): Access.METRICS,
    ("GET", "/openapi.json"): Access.OPEN,
    ("GET", "/oauth/callback"): Access.OPEN,  # a browser Brightpearl sends back: the single-use state authenticates
    ("POST", "/hooks/brightpearl/{account}/{hint_token}"): Access.OPEN,  # Brightpearl sends no token: the URL's is
}
"""The public contract's access rules, route by route (CONTRACT.md: every path under /v1/ needs a token; keys
get 403 on admin-only routes; the probes and the description are open; /metrics takes RELAY_METRICS_TOKEN)."""

DASHBOARD_SIGNED_IN = {
    "/ui",
    "/ui/accounts/{code}",
    "/ui/accounts/{code}/connect",
    "/ui/deliveries",
    "/ui/deliveries/{delivery_id}",
    "/ui/deliveries/{delivery_id}/retry",
}


@dataclass
class World:
    ctx: ApiContext
    app: web.Application
    client: Client
    key: str  # a key scoped to acme

    async def answer(self, method: str, path: str, token: str | None) -> str:
        """How the request was answered: refused by the gate ("401", "403", or "login": the dashboard's redirect to
        its login page), or "served" (whatever the handler then said: 200, 404, 422, a page's own 403...)."""
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        body: dict[str, object] | None = {} if method in ("POST", "PATCH") else None
        response = await self.client.request(method, path, json=body, headers=headers, allow_redirects=False)
        await response.read()
        if response.status in (401, 403) and response.content_type == "application/problem+json":
            if response.status == 401:
                assert response.headers["WWW-Authenticate"] == "Bearer"
            return str(response.status)
        if response.status == 303 and response.headers["Location"].startswith("/ui/login?next="):
            return "login"
        return "served"


@pytest.fixture
async def world(redis_client: Redis) -> AsyncIterator[World]:
    async with aiohttp.ClientSession() as session:
        ctx = ApiContext(
            redis=redis_client,
            admin_token=ADMIN_TOKEN,
            brightpearl_session=session,
            budget_per_minute=100,
            allow_private_targets=False,
            clock=lambda: NOW,
            metrics_token=METRICS_TOKEN,
        )
        await register_unpolled(Store(redis_client), "acme", NOW)
        _, key = await ApiKeys(redis_client).create("acme", "the access table's key", NOW)
        app = create_app(ctx)
        async with TestClient(TestServer(app, host="127.0.0.1")) as client:
            yield World(ctx, app, client, key)


def concrete(path: str) -> str:
    """A path of ``path``'s route, each parameter filled with an id that names nothing."""
    filled = re.sub(r"\{tail:[^}]*\}", "nowhere", path)
    return re.sub(r"\{[a-z_]+\}", "nothing", filled)


def test_every_api_route_declares_the_access_the_contract_gives_it() -> None:
    assert {(r.method, r.path): r.access for r in API_ROUTES} == EXPECTED


def test_the_openapi_document_shows_each_routes_declared_access() -> None:
    paths = openapi_document()["paths"]
    for (method, path), access in EXPECTED.items():
        operation = paths[path][method.lower()]
        needs_token = access in (Access.ACCOUNT, Access.ADMIN)
        assert operation["security"] == ([{"bearerAuth": []}] if needs_token else []), (method, path)
        assert ("401" in operation["responses"]) == (access != Access.OPEN), (method, path)
        assert ("403" in operation["responses"]) == (access == Access.ADMIN), (method, path)


async def test_every_registered_route_has_a_declared_access(world: World) -> None:
    declared = world.app[GATE].declared
    routes = list(world.app.router.routes())
    assert routes
    undeclared = [(r.method, r.resource.canonical if r.resource else "?") for r in routes if r.handler not in declared]
    assert undeclared == []
    for route in routes:
        assert route.resource is not None
        path = route.resource.canonical
        if path.startswith("/ui"):
            want = Access.SIGNED_IN if path in DASHBOARD_SIGNED_IN else Access.OPEN
        else:
            want = EXPECTED[(route.method if route.method != "HEAD" else "GET", path)]
        assert declared[route.handler] == want, (route.method, path)


REFUSED: dict[Access, dict[str, str]] = {
    Access.OPEN: {},
    Access.METRICS: {"none": "401", "made-up": "401", "key": "401", "admin": "401"},
    Access.ACCOUNT: {"none": "401", "made-up": "401", "metrics": "401"},
    Access.ADMIN: {"none": "401", "made-up": "401", "key": "403", "metrics": "401"},
    Access.SIGNED_IN: dict.fromkeys(("none", "made-up", "key", "admin", "metrics"), "login"),  # a token is no session
}
"""How the gate answers each caller, by the route's declared access; a caller not listed is let through."""


async def test_each_route_refuses_exactly_whom_its_declaration_does_not_admit(world: World) -> None:
    callers = {
        "none": None,
        "made-up": "not-a-token-of-this-relay",
        "key": world.key,
        "admin": ADMIN_TOKEN,
        "metrics": METRICS_TOKEN,
    }
    seen = set()
    for route in world.app.router.routes():
        assert route.resource is not None
        if route.method == "HEAD":
            continue
        method = "GET" if route.method == "*" else route.method
        path = route.resource.canonical
        access = world.app[GATE].declared[route.handler]
        seen.add(access)
        url = concrete(path) if not path.startswith("/ui/static") else "/ui/static/dashboard.css"
        for who, token in callers.items():
            want = REFUSED[access].get(who, "served")
            assert await world.answer(method, url, token) == want, (method, url, who)
    assert seen == set(Access)


async def test_a_route_without_a_declared_access_is_refused_to_everyone(world: World) -> None:
    ran = []

    async def sneaked_in(request: web.Request) -> web.Response:
        ran.append(request.path)
        return web.json_response({"secret": True})

    app = create_app(world.ctx)
    app.router.add_get("/v1/undeclared", sneaked_in)  # around the declarations: nothing says who may call it
    app.router.add_get("/undeclared", sneaked_in)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        for path in ("/v1/undeclared", "/undeclared"):
            for headers in ({}, {"Authorization": f"Bearer {ADMIN_TOKEN}"}):
                response = await client.get(path, headers=headers)
                assert response.status == 403, (path, headers)
                assert response.content_type == "application/problem+json"
                assert "declares no access" in (await response.json())["detail"]
    assert ran == []


async def test_an_app_with_a_route_declaring_no_access_does_not_start(redis_client: Redis) -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.Response()

    undeclared = Route("GET", "/v1/nobody", handler, "s", 200, None, "", (), None, None, None, ())  # type: ignore[arg-type]
    app = create_probe_app(ProcessProbes(redis=redis_client, metrics=Metrics(), clock=lambda: NOW))
    with pytest.raises(ValueError, match=r"GET /v1/nobody"):
        install(app, [undeclared])


async def test_an_access_the_app_cannot_check_is_refused(redis_client: Redis) -> None:
    signed_in_health = dataclasses.replace(healthz, path="/signed-in", access=Access.SIGNED_IN)
    app = create_probe_app(ProcessProbes(redis=redis_client, metrics=Metrics(), clock=lambda: NOW), [signed_in_health])
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        response = await client.get("/signed-in")
        assert response.status == 403  # the worker's server has no sessions to check


@pytest.mark.parametrize(
    ("method", "path", "token", "status"),
    [
        ("GET", "/v1/nothing-here", None, 401),  # under /v1/: a token first, as on every real route
        ("GET", "/v1/nothing-here", ADMIN_TOKEN, 404),
        ("PUT", "/v1/accounts", None, 401),
        ("PUT", "/v1/accounts", ADMIN_TOKEN, 405),
        ("GET", "/nothing-here", None, 404),  # outside /v1/: nothing to protect
    ],
)
async def test_a_request_matching_no_route_gets_its_areas_access(
    world: World, method: str, path: str, token: str | None, status: int
) -> None:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    response = await world.client.request(method, path, headers=headers)
    assert response.status == status
    assert response.content_type == "application/problem+json"


def test_principal_never_falls_back_to_the_admin() -> None:
    request = make_mocked_request("GET", "/v1/accounts")
    with pytest.raises(Unauthenticated):
        principal(request)


async def test_the_worker_serves_the_apis_liveness_and_metrics_views(redis_client: Redis) -> None:
    app = create_probe_app(ProcessProbes(redis=redis_client, metrics=Metrics(), clock=lambda: NOW))
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        response = await client.get("/healthz")
        assert (response.status, await response.json()) == (200, {"status": "ok"})
        assert (await client.get("/metrics")).status == 200
        assert (await client.get("/readyz")).status == 404  # the worker's server has never answered readiness
    assert {(r.method, r.path) for r in app[APP_ROUTES]} == {("GET", "/healthz"), ("GET", "/metrics")}
    assert {r.handler for r in app[APP_ROUTES]} <= {r.handler for r in API_ROUTES}


def test_one_handler_cannot_declare_two_accesses() -> None:
    gate = Gate(checks={})
    gate.declare(healthz.handler, Access.OPEN)
    gate.declare(healthz.handler, Access.OPEN)  # its HEAD route, say
    with pytest.raises(ValueError, match="declared both open and admin"):
        gate.declare(healthz.handler, Access.ADMIN)
