"""The control API's hold on an account's Brightpearl traffic: injected faults (throttling, outages, slowness,
bad bodies, expired tokens), throttle budget spent as another integration would, and the request log."""

from typing import Literal, Self

from aiohttp import web
from pydantic import Field, model_validator

from relay.sandbox.control_requests import ControlBody, account_of, read_body
from relay.sandbox.faults import FaultKind, HtmlStatus


class NewFault(ControlBody):
    kind: FaultKind
    count: int | None = Field(None, ge=1)
    for_s: float | None = Field(None, gt=0, le=86400)
    delay_ms: int = Field(0, ge=0, le=60_000)
    path_contains: str = ""
    next_throttle_period_ms: int | None = Field(None, ge=1, le=59_999)  # a throttle fault's announced period
    status: HtmlStatus = 502  # an html fault's status: Cloudflare's 403, 502, 520-524

    @model_validator(mode="after")
    def slow_needs_a_delay(self) -> Self:
        if self.kind == "slow" and self.delay_ms <= 0:
            raise ValueError("a slow fault needs delay_ms > 0")
        return self


class Spend(ControlBody):
    requests: int = Field(ge=0, le=10_000)
    # whose budget: the private apps' shared pool (another integration on the account) or the OAuth app's own
    pool: Literal["private", "oauth"] = "private"


async def add_fault(request: web.Request) -> web.Response:
    account = account_of(request)
    body = await read_body(request, NewFault)
    fault = account.faults.add(
        body.kind,
        now_ms=account.monotonic_ms(),
        count=body.count,
        for_ms=None if body.for_s is None else round(body.for_s * 1000),
        delay_ms=body.delay_ms,
        path_contains=body.path_contains,
        throttle_period_ms=body.next_throttle_period_ms,
        status=body.status,
    )
    return web.json_response({"id": fault.id}, status=201)


async def list_faults(request: web.Request) -> web.Response:
    account = account_of(request)
    now_ms = account.monotonic_ms()
    return web.json_response({"faults": [fault.describe(now_ms) for fault in account.faults.active(now_ms)]})


async def clear_faults(request: web.Request) -> web.Response:
    return web.json_response({"cleared": account_of(request).faults.clear()})


async def spend(request: web.Request) -> web.Response:
    account = account_of(request)
    body = await read_body(request, Spend)
    now_ms = account.monotonic_ms()
    throttle = account.throttle if body.pool == "private" else account.oauth.throttle
    decision = throttle.spend(now_ms, body.requests)
    return web.json_response(
        {
            "requests_remaining": decision.requests_remaining,
            "next_throttle_period_ms": decision.next_throttle_period_ms,
            "in_window": throttle.in_window(now_ms),
        }
    )


async def get_requests(request: web.Request) -> web.Response:
    return web.json_response(account_of(request).requests.describe())


async def reset_requests(request: web.Request) -> web.Response:
    account = account_of(request)
    account.requests.reset()
    return web.json_response(account.requests.describe())
