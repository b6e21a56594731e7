"""Brightpearl's OAuth server as the sandbox serves it (API.md 2, 2.1), under ``/oauth``:

``GET /oauth/authorize/{account}?response_type=code&client_id=&redirect_uri=&state=`` redirects at once (302, no
consent page) to ``redirect_uri`` with ``code`` and ``state`` added to its query; anything wrong (an unknown
account or app, a missing parameter) is a 400 HTML page that says what.

``POST /oauth/token/{account}``, form-encoded only: ``grant_type=authorization_code`` (``code``, ``client_id``,
``client_secret``, ``redirect_uri`` exactly as at authorize) or ``grant_type=refresh_token`` (``refresh_token``,
``client_id``, ``client_secret``). Answers and the two errors are the recorded ones: 200 ``{"access_token",
"refresh_token", "installation_instance_id", "api_domain", "token_type", "expires_in"}``; 400
``{"error":"invalid_client"}``; 400 ``{"error":"invalid_grant","error_description":…}``. A body that is not a
form, a missing parameter, an unknown grant type or account are 400 ``invalid_request`` /
``unsupported_grant_type`` (RFC 6749's names; not recorded).

``api_domain`` is the host and port the request came to (``127.0.0.1:9100``): the sandbox serves plain HTTP, so
``https://{api_domain}`` does not reach it; a client registered with a base URL uses that.
"""

import html
from urllib.parse import parse_qsl

from aiohttp import web
from yarl import URL

from relay.sandbox.envelope import CONTENT_TYPE, encode
from relay.sandbox.oauth import OAuthError
from relay.sandbox.state import SANDBOX_STATE

FORM = "application/x-www-form-urlencoded"
AUTHORIZE_PARAMETERS = ("response_type", "client_id", "redirect_uri", "state")
TOKEN_HEADERS = {"Content-Type": CONTENT_TYPE, "Cache-Control": "no-store", "Pragma": "no-cache"}


def add_oauth_routes(app: web.Application) -> None:
    """Mount the authorize and token endpoints on ``app`` under ``/oauth``."""
    app.router.add_get("/oauth/authorize/{account}", authorize)
    app.router.add_post("/oauth/token/{account}", token)


def _page(status: int, title: str, detail: str) -> web.Response:
    text = (
        f"<!DOCTYPE html>\n<html><head><title>{html.escape(title)}</title></head>\n"
        f"<body><h1>{html.escape(title)}</h1><p>{html.escape(detail)}</p></body></html>\n"
    )
    return web.Response(status=status, text=text, content_type="text/html", charset="utf-8")


def _redirect_target(redirect_uri: str) -> URL | None:
    """``redirect_uri`` as a URL the browser can be sent to (absolute http or https, no fragment), or ``None``."""
    try:
        url = URL(redirect_uri)
    except ValueError:
        return None
    if url.scheme not in ("http", "https") or not url.host or url.fragment:
        return None
    return url


async def authorize(request: web.Request) -> web.Response:
    """Authorize at once: 302 to ``redirect_uri`` with a new code and the ``state`` sent; 400 pages otherwise."""
    code = request.match_info["account"]
    account = request.app[SANDBOX_STATE].get(code)
    if account is None:
        return _page(400, "Unknown account", f"There is no Brightpearl account {code}.")
    query = request.query
    missing = [name for name in AUTHORIZE_PARAMETERS if not query.get(name)]
    if missing:
        return _page(400, "Missing parameters", f"The authorize request has no {', '.join(missing)}.")
    if query["response_type"] != "code":
        return _page(400, "Unsupported response type", f"response_type must be code, not {query['response_type']}.")
    oauth = account.oauth
    if query["client_id"] != oauth.app.client_id:
        return _page(400, "Unknown app", f"Account {code} has no app {query['client_id']} to install.")
    target = _redirect_target(query["redirect_uri"])
    if target is None:
        return _page(400, "Bad redirect_uri", "redirect_uri must be an absolute http or https URL without fragment.")
    issued = oauth.authorize(query["client_id"], query["redirect_uri"], account.monotonic_ms())
    location = target.update_query({"code": issued, "state": query["state"]})
    raise web.HTTPFound(location)


def _refused(error: OAuthError) -> web.Response:
    return web.Response(status=400, body=encode(error.body()), headers=TOKEN_HEADERS)


def _form(request: web.Request, raw: bytes) -> dict[str, str]:
    """The form's fields; :class:`OAuthError` ``invalid_request`` if the body is not a form or names one twice."""
    if request.content_type != FORM:
        raise OAuthError("invalid_request", f"the body must be {FORM}, not {request.content_type}")
    try:
        pairs = parse_qsl(raw.decode(), keep_blank_values=True, strict_parsing=bool(raw.strip()))
    except (UnicodeDecodeError, ValueError) as error:
        raise OAuthError("invalid_request", f"the body is not a form: {error}") from None
    fields = dict(pairs)
    if len(fields) != len(pairs):
        raise OAuthError("invalid_request", "a parameter is given more than once")
    return fields


def _required(fields: dict[str, str], *names: str) -> list[str]:
    missing = [name for name in names if not fields.get(name)]
    if missing:
        raise OAuthError("invalid_request", f"missing {', '.join(missing)}")
    return [fields[name] for name in names]


async def token(request: web.Request) -> web.Response:
    """Exchange a code or a refresh token for tokens, as Brightpearl's token endpoint answers."""
    code = request.match_info["account"]
    account = request.app[SANDBOX_STATE].get(code)
    raw = await request.read()
    try:
        if account is None:
            raise OAuthError("invalid_request", f"account {code} does not exist")
        fields = _form(request, raw)
        oauth = account.oauth
        (grant_type,) = _required(fields, "grant_type")
        if grant_type not in ("authorization_code", "refresh_token"):
            raise OAuthError("unsupported_grant_type", f"grant_type {grant_type} is not supported")
        oauth.check_client(fields.get("client_id"), fields.get("client_secret"))
        now_ms = account.monotonic_ms()
        if grant_type == "authorization_code":
            issued, client_id, redirect_uri = _required(fields, "code", "client_id", "redirect_uri")
            answer = oauth.exchange_code(issued, client_id, redirect_uri, now_ms, request.host)
        else:
            (refresh_token,) = _required(fields, "refresh_token")
            answer = oauth.refresh(refresh_token, now_ms, request.host)
    except OAuthError as error:
        if account is not None:
            account.oauth.counters.token_errors[error.error] += 1
        return _refused(error)
    return web.Response(status=200, body=encode(answer), headers=TOKEN_HEADERS)
