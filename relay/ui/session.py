"""Who is looking at the dashboard: the token they logged in with, kept in a cookie, checked on every page.

The cookie holds the token itself (the admin token or an account-scoped key), so there is no session state on the
server: every request checks it with the API's own ``authenticate``, and a revoked key is logged out on the next
page. The cookie is ``HttpOnly`` (no script reads it), ``SameSite=Strict`` (no other site's page sends it) and
``Secure`` over https, also when a proxy in front ended TLS and says so. Forms that change something also check
that ``Origin`` (or ``Referer``) names this host, so they cannot be posted from elsewhere even by a browser that
ignores ``SameSite``.
"""

from urllib.parse import urlsplit

from aiohttp import web

from relay.api.access import Principal
from relay.api.auth import authenticate
from relay.api.context import context

COOKIE = "relay_ui_token"
COOKIE_PATH = "/ui"
MAX_TOKEN_CHARS = 512


async def caller(request: web.Request) -> Principal | None:
    """The principal of the token in the request's cookie, or ``None`` without a valid one."""
    token = request.cookies.get(COOKIE, "")
    return await check_token(request, token)


async def check_token(request: web.Request, token: str) -> Principal | None:
    token = token.strip()
    if not token or len(token) > MAX_TOKEN_CHARS:
        return None
    return await authenticate(context(request), token)


def remember(response: web.StreamResponse, request: web.Request, token: str) -> None:
    """Keep ``token`` in the browser for the dashboard's pages only, until the browser closes."""
    response.set_cookie(
        COOKIE,
        token.strip(),
        path=COOKIE_PATH,
        httponly=True,
        samesite="Strict",
        secure=over_https(request),
    )


def over_https(request: web.Request) -> bool:
    """Whether the browser used https: to this server, or to a proxy in front that ended TLS and said so
    (``X-Forwarded-Proto``, ``Forwarded``). The headers are trusted from anyone: they can only make the cookie
    stricter, never send it anywhere it would not go."""
    if request.scheme == "https":
        return True
    if request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower() == "https":
        return True
    return any(str(hop.get("proto", "")).lower() == "https" for hop in request.forwarded[:1])


def forget(response: web.StreamResponse) -> None:
    response.del_cookie(COOKIE, path=COOKIE_PATH)


def same_origin(request: web.Request) -> bool:
    """Whether a form was posted from a page of this host: ``Origin``, else ``Referer``, must name it."""
    source = request.headers.get("Origin") or request.headers.get("Referer") or ""
    if source in ("", "null"):
        return False
    return urlsplit(source).netloc.lower() == request.host.lower()


def safe_next(target: str | None) -> str:
    """Where to go after logging in: a dashboard path, never another site (``//evil`` or ``/ui\\@evil``)."""
    if not target or "//" in target or "\\" in target:
        return "/ui"
    if target != "/ui" and not target.startswith(("/ui/", "/ui?")):
        return "/ui"
    return target
