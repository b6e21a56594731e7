"""The control API's hold on an account's native webhooks: the subscriptions (read without spending the
account's budget), the log of calls fired, waiting for calls on their way, and the faults and policy hints are
sent with.

``GET /webhooks``; ``GET /hints`` (the log, its count by outcome, and whether calls are on their way),
``DELETE /hints`` (clear the log), ``POST /hints/settle`` (wait until nothing is on its way);
``GET``/``PUT``/``DELETE /hints/faults`` (``PUT`` replaces every fault: those not given are off; ``seed``
reseeds the account's random source); ``GET``/``PATCH /hints/policy`` (retries, timeout, queue bound, remote
hosts)."""

from collections import Counter
from dataclasses import asdict

from aiohttp import web
from pydantic import Field

from relay.sandbox.control_requests import ControlBody, account_of, read_body
from relay.sandbox.hints import HintFaults, HintSender


class FaultsBody(ControlBody):
    drop: float = Field(0.0, ge=0, le=1)
    delay_ms: int = Field(0, ge=0, le=60_000)
    jitter_ms: int = Field(0, ge=0, le=60_000)
    duplicate: float = Field(0.0, ge=0, le=1)
    reorder_window: int = Field(0, ge=0, le=1000)
    reorder_ms: int = Field(100, ge=1, le=60_000)
    batch_ms: int = Field(0, ge=0, le=60_000)
    seed: int | None = None


class PolicyBody(ControlBody):
    max_attempts: int | None = Field(None, ge=1, le=20)
    backoff_ms: list[int] | None = Field(None, max_length=20)
    timeout_s: float | None = Field(None, gt=0, le=120)
    queue_size: int | None = Field(None, ge=1, le=1_000_000)
    allow_remote: bool | None = None


def _faults(sender: HintSender) -> web.Response:
    return web.json_response(asdict(sender.faults))


def _policy(sender: HintSender) -> web.Response:
    return web.json_response(asdict(sender.policy) | {"backoff_ms": list(sender.policy.backoff_ms)})


async def list_webhooks(request: web.Request) -> web.Response:
    account = account_of(request)
    return web.json_response({"webhooks": [hook.describe() for hook in account.webhooks.webhooks.values()]})


async def get_hints(request: web.Request) -> web.Response:
    sender = account_of(request).hints
    calls = [record.describe() for record in sender.log]
    counts = Counter(str(call["outcome"]) for call in calls)
    return web.json_response({"calls": calls, "counts": dict(sorted(counts.items())), "busy": sender.busy})


async def clear_hints(request: web.Request) -> web.Response:
    return web.json_response({"cleared": account_of(request).hints.clear_log()})


class SettleBody(ControlBody):
    timeout_s: float = Field(10.0, gt=0, le=120)


async def settle_hints(request: web.Request) -> web.Response:
    sender = account_of(request).hints
    body = await read_body(request, SettleBody)
    return web.json_response({"settled": await sender.settle(body.timeout_s)})


async def get_faults(request: web.Request) -> web.Response:
    return _faults(account_of(request).hints)


async def put_faults(request: web.Request) -> web.Response:
    sender = account_of(request).hints
    body = await read_body(request, FaultsBody)
    fields = body.model_dump(exclude={"seed"})
    sender.faults = HintFaults(**fields)
    if body.seed is not None:
        sender.reseed(body.seed)
    return _faults(sender)


async def clear_faults(request: web.Request) -> web.Response:
    sender = account_of(request).hints
    sender.faults = HintFaults()
    return _faults(sender)


async def get_policy(request: web.Request) -> web.Response:
    return _policy(account_of(request).hints)


async def change_policy(request: web.Request) -> web.Response:
    sender = account_of(request).hints
    body = await read_body(request, PolicyBody)
    policy = sender.policy
    if body.max_attempts is not None:
        policy.max_attempts = body.max_attempts
    if body.backoff_ms is not None:
        policy.backoff_ms = tuple(body.backoff_ms)
    if body.timeout_s is not None:
        policy.timeout_s = body.timeout_s
    if body.queue_size is not None:
        policy.queue_size = body.queue_size
    if body.allow_remote is not None:
        policy.allow_remote = body.allow_remote
    return _policy(sender)
