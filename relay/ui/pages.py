"""The dashboard's pages under ``/ui``: overview, one account with its Connect to Brightpearl button, deliveries,
one delivery with its retry button, login.

Each page declares its access (:data:`PAGES`): the API's gate checks a session (:func:`session_holder`, over
``relay.ui.session``) before a page that needs one runs, and sends anyone without a valid one to the login page.
Forms that change something are POSTs from this origin, answered with a redirect (POST-redirect-GET), or with
the page and the reason when the change is refused. Failed logins are limited per client
(``relay.ui.login_limit``).
"""

import json
import math
from collections.abc import Awaitable, Callable
from datetime import timedelta
from functools import wraps
from urllib.parse import urlencode

from aiohttp import web
from pydantic import ValidationError

from relay.api.access import PRINCIPAL_KEY, Access, Principal, principal
from relay.api.connect import authorize_url
from relay.api.context import context
from relay.api.gate import GATE
from relay.api.schemas import DeliveryQuery
from relay.api.subscription_views import ensure_enabled
from relay.ui import chart, display, queries, session
from relay.ui.login_limit import client_address, failed_logins
from relay.ui.render import STATIC_DIR, page
from relay.ui.session import DashboardSessions
from subscriptions.core.errors import Conflict, InvalidInput, NotFound
from subscriptions.core.models import AccountRecord, DeliveryRecord, DeliveryStatus
from subscriptions.core.times import ms

PAGE_SIZE = 50
STATIC_ROUTE = "ui-static"
REFRESH_WITHIN_S = 60.0  # a delivery page reloads itself while an attempt is due this soon

PageHandler = Callable[[web.Request, Principal], Awaitable[web.StreamResponse]]
View = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def session_holder(request: web.Request) -> None:
    """:attr:`Access.SIGNED_IN`, as the gate checks it: a valid session, whose principal goes on the request;
    anyone else goes to the login page, and back to this page after."""
    who = await session.caller(request)
    if who is None:
        target = session.safe_next(request.raw_path) if request.method == "GET" else "/ui"
        response = web.HTTPSeeOther("/ui/login?" + urlencode({"next": target}))
        if session.has_cookie(request):
            session.forget(response)  # logged out, expired, its key revoked, or the admin token changed
        raise response
    request[PRINCIPAL_KEY] = who


def signed_in(handler: PageHandler) -> View:
    """A page for the caller the gate let in with a session (:attr:`Access.SIGNED_IN`); an object that does not
    exist, or that the caller may not see, is the not-found page."""

    @wraps(handler)
    async def guarded(request: web.Request) -> web.StreamResponse:
        who = principal(request)
        try:
            return await handler(request, who)
        except NotFound as error:
            return page("not_found.html", {**common(request, who), "message": str(error)}, status=404)

    return guarded


def common(request: web.Request, who: Principal | None, section: str = "") -> dict[str, object]:
    """What every page's layout needs: the caller, the current section, the time, the stylesheet."""
    css = request.app.router[STATIC_ROUTE].url_for(filename="dashboard.css")
    return {"who": who, "section": section, "now": context(request).clock(), "css_url": str(css)}


@signed_in
async def overview(request: web.Request, who: Principal) -> web.StreamResponse:
    ctx = context(request)
    accounts = await queries.visible_accounts(ctx, who)
    subs = await queries.subscription_views(ctx, await queries.visible_subscriptions(ctx, who))
    starts = chart.hour_starts(ctx.clock())
    drawn = chart.layout(starts, await queries.hourly_counts(ctx, who, starts))
    return page(
        "overview.html",
        {
            **common(request, who, "overview"),
            "accounts": [
                (a, display.polling_health(a.status), display.max_lag_s(a.status), display.hints_health(a.status))
                for a in accounts
            ],
            "subscriptions": subs,
            "chart": drawn,
        },
    )


@signed_in
async def account_detail(request: web.Request, who: Principal) -> web.StreamResponse:
    found = await queries.visible_account(context(request), who, request.match_info["code"])
    return await account_page(request, who, found)


async def account_page(
    request: web.Request, who: Principal, found: AccountRecord, *, refused: str | None = None, status: int = 200
) -> web.StreamResponse:
    """One account as the API sees it; ``refused`` says why connecting it just asked for cannot start."""
    view = await queries.view_of(context(request), found)
    return page(
        "account.html",
        {
            **common(request, who, "overview"),
            "account": view,
            "polling": display.polling_health(view.status),
            "hints": display.hints_health(view.status),
            "auth": display.auth_badge(view.status.auth_state),
            "connect_help": display.connect_help(view.status.auth_state),
            "refused": refused,
        },
        status=status,
    )


@signed_in
async def connect_account(request: web.Request, who: Principal) -> web.StreamResponse:
    """Send the browser to Brightpearl with a fresh authorize URL (a link, not a form: ``form-action 'self'`` would
    stop the redirect after a POST). An account of a private app is refused with 409: connecting it would turn it
    into an OAuth one, which is the API's job (``GET /v1/accounts/{code}/authorize``), not a link's. A relay that
    cannot connect accounts (no ``RELAY_PUBLIC_URL`` or OAuth app settings) answers 503: the account is fine, the
    relay's setup is what is missing, and only its operator can fix it."""
    ctx = context(request)
    found = await queries.visible_account(ctx, who, request.match_info["code"])
    if found.auth != "oauth":
        refused = (
            f"account {found.code} polls with a private app's token, so there is nothing to connect here; "
            f"GET /v1/accounts/{found.code}/authorize makes it an OAuth account"
        )
        return await account_page(request, who, found, refused=refused, status=409)
    try:
        url = await authorize_url(ctx, found)
    except InvalidInput as unusable:
        refused = f"this relay cannot connect accounts: {unusable}. Tell the relay's operator."
        return await account_page(request, who, found, refused=refused, status=503)
    raise web.HTTPSeeOther(url)


def deliveries_url(params: dict[str, str]) -> str:
    return "/ui/deliveries?" + urlencode(params) if params else "/ui/deliveries"


@signed_in
async def deliveries(request: web.Request, who: Principal) -> web.StreamResponse:
    ctx = context(request)
    subs = await queries.visible_subscriptions(ctx, who)
    raw = {k: v for k, v in request.query.items() if k in ("status", "subscription", "cursor") and v}
    error = None
    items = []
    next_cursor = None
    try:
        query = DeliveryQuery.model_validate({**raw, "limit": PAGE_SIZE})
        found = await queries.visible_deliveries(
            ctx, who, limit=PAGE_SIZE, cursor=query.cursor, subscription=query.subscription, status=query.status
        )
        items, next_cursor = found.items, found.next_cursor
    except ValidationError as failure:
        error = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in failure.errors(include_url=False))
    except InvalidInput as failure:
        error = str(failure)
    filters = {k: v for k, v in raw.items() if k != "cursor"}
    unfiltered = {k: v for k, v in filters.items() if k != "status"}
    tabs = [("all", deliveries_url(unfiltered), "status" not in filters)]
    tabs += [
        (s.value, deliveries_url({**unfiltered, "status": s.value}), filters.get("status") == s.value)
        for s in DeliveryStatus
    ]
    return page(
        "deliveries.html",
        {
            **common(request, who, "deliveries"),
            "deliveries": items,
            "subscriptions": subs,
            "sub_urls": {s.id: s.url for s in subs},
            "status": raw.get("status", ""),
            "subscription": raw.get("subscription", ""),
            "tabs": tabs,
            "first_page": not raw.get("cursor"),
            "newest_url": deliveries_url(filters),
            "older_url": deliveries_url({**filters, "cursor": next_cursor}) if next_cursor else None,
            "error": error,
        },
    )


@signed_in
async def delivery(request: web.Request, who: Principal) -> web.StreamResponse:
    found = await queries.visible_delivery(context(request), who, request.match_info["delivery_id"])
    return await delivery_page(request, who, found, retried=request.query.get("retried") == "1")


async def delivery_page(
    request: web.Request,
    who: Principal,
    found: DeliveryRecord,
    *,
    retried: bool = False,
    refused: str | None = None,
    status: int = 200,
) -> web.StreamResponse:
    """One delivery with its attempts; ``refused`` says why a retry just asked for was not scheduled."""
    ctx = context(request)
    attempts = await ctx.store.attempts(found.id)
    (sub,) = await ctx.store.load_subscriptions([found.subscription])
    try:
        body: str | None = json.dumps(json.loads((await ctx.store.get_event(found.event_id)).body), indent=2)
    except NotFound:
        body = None
    now = ctx.clock()
    due_soon = found.next_attempt_at is not None and (found.next_attempt_at - now).total_seconds() < REFRESH_WITHIN_S
    return page(
        "delivery.html",
        {
            **common(request, who, "deliveries"),
            "delivery": found,
            "attempts": list(enumerate(attempts, start=1)),
            "sub": sub,
            "body": body,
            "retried": retried and refused is None,
            "refused": refused,
            "refresh_s": 2 if due_soon and refused is None else None,
        },
        status=status,
    )


@signed_in
async def retry(request: web.Request, who: Principal) -> web.StreamResponse:
    if not session.same_origin(request):
        return page("forbidden.html", common(request, who), status=403)
    ctx = context(request)
    found = await queries.visible_delivery(ctx, who, request.match_info["delivery_id"])
    (sub,) = await ctx.store.load_subscriptions([found.subscription])
    if sub is not None:
        try:
            ensure_enabled(sub, "retry its deliveries")  # what the API answers with its 409
        except Conflict as refused:
            return await delivery_page(request, who, found, refused=str(refused), status=409)
    await ctx.queue.schedule_now(found, ctx.clock())
    ctx.on_deliveries()
    raise web.HTTPSeeOther(f"/ui/deliveries/{found.id}?retried=1")


async def login_form(request: web.Request) -> web.StreamResponse:
    values = {**common(request, None), "next": session.safe_next(request.query.get("next")), "error": None}
    return page("login.html", values)


async def login(request: web.Request) -> web.StreamResponse:
    """Open a session for a good token; failures are limited per client (429 with ``Retry-After`` beyond)."""
    if not session.same_origin(request):
        return page("forbidden.html", common(request, None), status=403)
    try:
        form = await request.post()
    except UnicodeDecodeError:  # aiohttp decodes a form as UTF-8 and lets the error through
        values = {**common(request, None), "next": "/ui", "error": "The form did not arrive as UTF-8; try again."}
        return page("login.html", values, status=400)
    target = session.safe_next(str(form.get("next", "")))
    ctx = context(request)
    window = failed_logins(ctx.redis, client_address(request))
    attempt = await window.take(ms(ctx.clock()))
    if attempt.refused:
        wait = math.ceil(attempt.wait_ms / 1000)
        at = ctx.clock() + timedelta(seconds=wait)
        error = (
            f"Too many failed logins from your address. Try again in {display.duration(wait)}, after {at:%H:%M:%S} UTC."
        )
        values = {**common(request, None), "next": target, "error": error}
        return page("login.html", values, status=429, headers={"Retry-After": str(wait)})
    who = await session.check_token(request, str(form.get("token", "")))
    if who is None:
        error = "That token is not valid: use the admin token (RELAY_API_TOKEN) or an API key made for your account."
        return page("login.html", {**common(request, None), "next": target, "error": error}, status=401)
    await window.give_back(attempt)  # a good token is no failure (earlier failures stay counted)
    sessions = DashboardSessions.of(ctx)
    await sessions.end(session.cookie_session(request))  # a session this browser had before is over
    response = web.HTTPSeeOther(target)
    session.remember(response, request, await sessions.open(who))
    raise response


async def logout(request: web.Request) -> web.StreamResponse:
    """End the session and forget the cookie (a GET works too: the cookie is SameSite=Strict, so another site
    cannot log anyone out, and nothing else changes)."""
    await DashboardSessions.of(context(request)).end(session.cookie_session(request))
    response = web.HTTPSeeOther("/ui/login")
    session.forget(response)
    raise response


async def to_overview(request: web.Request) -> web.StreamResponse:
    raise web.HTTPPermanentRedirect("/ui")


async def not_found(request: web.Request) -> web.StreamResponse:
    who = await session.caller(request)
    message = f"there is no page at {request.path}"
    return page("not_found.html", {**common(request, who), "message": message}, status=404)


PAGES: tuple[tuple[str, str, View, Access], ...] = (
    ("GET", "/ui", overview, Access.SIGNED_IN),
    ("GET", "/ui/", to_overview, Access.OPEN),
    ("GET", "/ui/login", login_form, Access.OPEN),
    ("POST", "/ui/login", login, Access.OPEN),
    ("*", "/ui/logout", logout, Access.OPEN),
    ("GET", "/ui/accounts/{code}", account_detail, Access.SIGNED_IN),
    ("GET", "/ui/accounts/{code}/connect", connect_account, Access.SIGNED_IN),
    ("GET", "/ui/deliveries", deliveries, Access.SIGNED_IN),
    ("GET", "/ui/deliveries/{delivery_id}", delivery, Access.SIGNED_IN),
    ("POST", "/ui/deliveries/{delivery_id}/retry", retry, Access.SIGNED_IN),
    ("GET", "/ui/{tail:.*}", not_found, Access.OPEN),  # after the others: it matches every path under /ui/
)
"""The dashboard's pages: method, path, handler and who may see it (its stylesheets are open to anyone)."""


def install(app: web.Application) -> None:
    """Add the dashboard's routes to the API's application, with their access and the check of sessions."""
    gate = app[GATE]
    gate.checks[Access.SIGNED_IN] = session_holder
    app.router.add_static("/ui/static", STATIC_DIR, name=STATIC_ROUTE, append_version=True)
    for static in app.router[STATIC_ROUTE]:
        gate.declare(static.handler, Access.OPEN)
    for method, path, handler, access in PAGES:
        if method == "GET":
            app.router.add_get(path, handler)  # and HEAD, with the same handler
        else:
            app.router.add_route(method, path, handler)
        gate.declare(handler, access)
