"""The API fuzzed against its own OpenAPI document: whatever a client sends, the answer is never a 5xx and
always what /openapi.json promises (status code, content type, body schema, headers).

Schemathesis generates requests for every operation from the published document, valid ones and invalid
ones, and sends them to the real application served on a loopback port, over a real Redis that holds an
account, a subscription, an event, a delivery with an attempt, a recovery and an API key, so that paths with
ids reach real objects as well as missing ones. Nothing leaves the machine: Brightpearl's session connects
only to a Unix socket that does not exist (so registering or re-pointing an account is a 422 "could not
reach Brightpearl"), callback hosts are resolved by a fake, and no worker runs to send deliveries.

Runs are reproducible: derandomised generation, a fixed number of examples per operation, no example
database.
"""

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import hypothesis.strategies as st
import pytest
import requests
import schemathesis
from aiohttp import web
from arq.connections import RedisSettings, create_pool
from hypothesis import HealthCheck, settings
from redis.asyncio import Redis
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    allow_header_conformance,
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from relay.api.app import create_app, openapi_document
from relay.api.context import ApiContext
from subscriptions.core.envelope import NewEvent, event_body
from subscriptions.core.models import AccountRecord, Attempt, SubscriptionRecord
from subscriptions.core.signing import new_secret
from subscriptions.store.api_keys import ApiKeys
from subscriptions.store.queue import DeliveryQueue, Outcome
from subscriptions.store.records import Store
from subscriptions.store.recovery import Recoveries

TOKEN = "fuzz-admin-token-0123456789abcdefgh"
EXAMPLES_PER_OPERATION = 50
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    unsupported_method,
    allow_header_conformance,
    negative_data_rejection,
    ignored_auth,
]

SPEC = openapi_document()
schema = schemathesis.openapi.from_dict(
    SPEC,
    config=schemathesis.Config.from_dict(
        {
            "seed": 20261126,
            "generation": {
                "mode": "all",  # valid requests and invalid ones
                "max-examples": EXAMPLES_PER_OPERATION,
                "deterministic": True,
                "database": "none",
                "with-security-parameters": False,
            },
        }
    ),
)


SEEDED_IDS: dict[str, str] = {}  # the seeded objects' ids, by the name of the path parameter that takes them


@schema.hook
def before_generate_path_parameters(context: schemathesis.HookContext, strategy: Any) -> Any:
    """Half the time, ids of objects that exist: generated strings alone would find nothing but 404s."""

    def with_seeded(parameters: dict[str, Any] | None) -> dict[str, Any] | None:
        if not parameters:
            return parameters
        return {name: SEEDED_IDS.get(name, value) for name, value in parameters.items()}

    return st.one_of(strategy.map(with_seeded), strategy)


REALISTIC_BODY = {"account": "acme", "events": ["order.*"], "url": "https://hooks.example/relay"}


@schema.hook
def before_generate_case(context: schemathesis.HookContext, strategy: Any) -> Any:
    """Half the valid requests name the seeded account, real events and a usable URL: generated strings alone
    would be refused before anything is created."""

    def realistic(case: schemathesis.Case) -> schemathesis.Case:
        valid = case.meta is not None and case.meta.generation.mode == schemathesis.GenerationMode.POSITIVE
        if valid and isinstance(case.body, dict):  # values valid by the schema too, so the case stays valid
            case.body = {name: REALISTIC_BODY.get(name, value) for name, value in case.body.items()}
        return case

    return st.one_of(strategy.map(realistic), strategy)


async def no_dns(host: str) -> list[str]:
    """Every callback host "does not resolve yet" (which the API accepts), so no lookup leaves the machine; but
    first what getaddrinfo does first, so a host it would choke on fails here as it would in production."""
    host.encode("idna")
    return []


@contextlib.asynccontextmanager
async def relay_api(redis_url: str) -> AsyncIterator[str]:
    """The API on a free loopback port over ``redis_url``, seeded; yields its base URL."""
    now = datetime.now(UTC)
    async with contextlib.AsyncExitStack() as stack:
        redis = Redis.from_url(redis_url, decode_responses=True)
        stack.push_async_callback(redis.aclose)
        jobs = await create_pool(RedisSettings.from_dsn(redis_url))  # recoveries are queued; no worker runs them
        stack.push_async_callback(jobs.aclose)
        nowhere = aiohttp.UnixConnector(path="/nonexistent/brightpearl.sock")  # no Brightpearl request leaves
        session = await stack.enter_async_context(aiohttp.ClientSession(connector=nowhere))
        ctx = ApiContext(
            redis=redis,
            admin_token=TOKEN,
            brightpearl_session=session,
            budget_per_minute=100,
            allow_private_targets=False,
            clock=lambda: datetime.now(UTC),
            resolve=no_dns,
            jobs=jobs,
        )
        await seed(ctx, now)
        runner = web.AppRunner(create_app(ctx), access_log=None)
        await runner.setup()
        stack.push_async_callback(runner.cleanup)
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        yield f"http://{host}:{port}"


async def seed(ctx: ApiContext, now: datetime) -> None:
    store, queue = Store(ctx.redis), DeliveryQueue(ctx.redis)
    account = AccountRecord(
        code="acme",
        base_url="http://127.0.0.1:9/public-api/acme",
        app_ref="acme_relay",
        auth="account_token",
        token="t",
        poll_interval_s=5,
        resources=["orders", "stock"],
        created_at=now,
    )
    await store.create_account(account, {}, first_poll_ms=2**50)
    sub = SubscriptionRecord(
        id="sub_fuzz",
        account="acme",
        url="https://hooks.example/relay",
        events=["*"],
        secret=new_secret(),
        created_at=now,
        updated_at=now,
    )
    await store.create_subscription(sub)
    timestamp = now.isoformat(timespec="seconds").replace("+00:00", "Z")
    event = NewEvent(
        id="evt_fuzz",
        type="order.created",
        account="acme",
        resource_id=1234,
        timestamp=timestamp,
        body=event_body("order.created", timestamp, {"accountCode": "acme", "id": 1234}),
    )
    (delivery,) = await queue.commit([event], [sub], now=now)
    attempt = Attempt(at=now, status_code=500, error=None, duration_ms=12, response_excerpt="oops")
    await queue.record([Outcome(delivery, attempt, succeeded=False, jitter=0.0, schedule_s=[])], now)
    recovery = await Recoveries(store, queue).start(sub.id, now - timedelta(hours=1), now + timedelta(seconds=1), now)
    key, _ = await ApiKeys(ctx.redis).create("acme", "fuzzing", now)
    SEEDED_IDS.clear()
    SEEDED_IDS.update(
        {
            "code": account.code,
            "sub_id": sub.id,
            "delivery_id": delivery.id,
            "event_id": event.id,
            "rec_id": recovery.id,
            "key_id": key.id,
        }
    )


@pytest.fixture
def live_api(redis_url: str) -> Iterator[str]:
    """The relay's API served from a thread of its own (schemathesis calls it synchronously); its base URL."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="fuzzed-api", daemon=True)
    thread.start()
    started = threading.Event()
    stop = asyncio.Event()
    base_url: list[str] = []

    async def serve() -> None:
        async with relay_api(redis_url) as url:
            base_url.append(url)
            started.set()
            await stop.wait()

    served = asyncio.run_coroutine_threadsafe(serve(), loop)
    try:
        while not started.wait(timeout=0.05):
            if served.done():
                served.result()  # raises what went wrong while starting
        yield base_url[0]
    finally:
        loop.call_soon_threadsafe(stop.set)
        served.result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


@schema.parametrize()
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])  # one relay per operation, on purpose
def test_api_answers_conform_and_are_never_server_errors(
    case: schemathesis.Case, live_api: str, http: requests.Session
) -> None:
    case.call_and_validate(
        base_url=live_api, session=http, headers={"Authorization": f"Bearer {TOKEN}"}, checks=CHECKS, timeout=10
    )


def test_the_fuzzed_document_is_the_published_one(live_api: str) -> None:
    assert requests.get(f"{live_api}/openapi.json", timeout=10).json() == SPEC
