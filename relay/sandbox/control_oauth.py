"""The control API's hold on an account's OAuth server (:mod:`relay.sandbox.oauth`), under
``/_sandbox/accounts/{code}/oauth``:

``GET /oauth`` the app, settings, live codes and tokens, throttle and counters; ``PATCH /oauth`` the access-token
and code lifetimes and whether refresh tokens rotate (``refresh_rotation``: ``rotate``, ``same`` or
``omitted``); ``POST /oauth/revoke`` ends every code and token of the install; ``POST /oauth/expire`` expires the
live access tokens now; ``POST /oauth/tokens`` hands out a token pair without the browser, shaped as the token
endpoint's answer; ``DELETE /oauth/counters`` zeroes the counters."""

from typing import Any

from aiohttp import web
from pydantic import Field

from relay.sandbox.account import SandboxAccount
from relay.sandbox.control_requests import ControlBody, Credential, account_of, nothing_to_change, read_body
from relay.sandbox.oauth import OAuthCounters, Rotation

MAX_LIFETIME_S = 366 * 86400


class OAuthAppBody(ControlBody):
    """The OAuth app an account is made with; what is not given is the default (a random secret)."""

    client_id: Credential | None = None
    client_secret: Credential | None = None
    dev_ref: Credential | None = None


class OAuthChange(ControlBody):
    access_token_lifetime_s: float | None = Field(None, gt=0, le=MAX_LIFETIME_S)
    code_lifetime_s: float | None = Field(None, gt=0, le=MAX_LIFETIME_S)
    refresh_rotation: Rotation | None = None


def _described(account: SandboxAccount) -> dict[str, Any]:
    return account.oauth.describe(account.monotonic_ms())


async def get_oauth(request: web.Request) -> web.Response:
    return web.json_response(_described(account_of(request)))


async def change_oauth(request: web.Request) -> web.Response:
    account = account_of(request)
    body = await read_body(request, OAuthChange)
    nothing_to_change(body)
    oauth = account.oauth
    if body.access_token_lifetime_s is not None:
        oauth.access_token_lifetime_s = body.access_token_lifetime_s
    if body.code_lifetime_s is not None:
        oauth.code_lifetime_s = body.code_lifetime_s
    if body.refresh_rotation is not None:
        oauth.refresh_rotation = body.refresh_rotation
    return web.json_response(_described(account))


async def revoke(request: web.Request) -> web.Response:
    return web.json_response({"revoked": account_of(request).oauth.revoke()})


async def expire(request: web.Request) -> web.Response:
    account = account_of(request)
    return web.json_response({"expired": account.oauth.expire_access_tokens(account.monotonic_ms())})


async def mint_tokens(request: web.Request) -> web.Response:
    account = account_of(request)
    return web.json_response(account.oauth.mint(account.monotonic_ms(), request.host), status=201)


async def reset_counters(request: web.Request) -> web.Response:
    account = account_of(request)
    account.oauth.counters = OAuthCounters()
    return web.json_response(_described(account))
