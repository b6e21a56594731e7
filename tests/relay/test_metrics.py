"""``/metrics`` over HTTP, on the API and on the worker's own server: the backlog gauges read at scrape time."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from redis.asyncio import Redis

from relay.service import health_app, running
from relay.settings import Settings
from subscriptions.core.envelope import NewEvent, event_body
from subscriptions.core.models import Attempt, DeliveryStatus, SubscriptionRecord
from subscriptions.store.poll_ages import read_last_successful_polls
from subscriptions.store.queue import DeliveryQueue, Outcome
from workers.metrics import Metrics

BACKLOG = ("relay_deliveries_waiting", "relay_deliveries_retrying", "relay_oldest_waiting_delivery_age_seconds")


def sub(sub_id: str, at: datetime) -> SubscriptionRecord:
    return SubscriptionRecord(
        id=sub_id,
        account="acme",
        url="https://example.com/h",
        events=["*"],
        secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        created_at=at,
        updated_at=at,
    )


def event(n: int) -> NewEvent:
    return NewEvent(
        id=f"evt_{n}",
        type="order.created",
        account="acme",
        resource_id=n,
        timestamp="2026-11-26T10:00:00Z",
        body=event_body("order.created", "2026-11-26T10:00:00Z", {"id": n}),
    )


async def make_backlog(redis: Redis, now: datetime) -> None:
    """Three deliveries waiting (the oldest created 90 s before ``now``) and two retrying."""
    queue = DeliveryQueue(redis)
    subs = [sub("sub_a", now)]
    await queue.commit([event(1)], subs, now=now - timedelta(seconds=90))
    await queue.commit([event(2), event(3)], subs, now=now - timedelta(seconds=30))
    failing = await queue.commit([event(4), event(5)], subs, now=now - timedelta(seconds=200))
    attempt = Attempt(at=now - timedelta(seconds=199), status_code=503, error=None, duration_ms=40)
    outcomes = [Outcome(d, attempt, succeeded=False, jitter=0.0, schedule_s=(300,)) for d in failing]
    recorded = await queue.record(outcomes, now - timedelta(seconds=199))
    assert {d.status for d in recorded.deliveries} == {DeliveryStatus.retrying}


def backlog(text: str) -> dict[str, float]:
    samples = {s.name: s.value for family in text_string_to_metric_families(text) for s in family.samples}
    return {name: samples[name] for name in BACKLOG}


async def scrape(url: str) -> str:
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        return await response.text()


async def test_the_api_shows_the_backlog(redis_url: str, redis_client: Redis) -> None:
    settings = Settings(redis_url=redis_url, api_token=SecretStr("metrics-token-0123456789abcdefghijklm"))
    async with running(settings, api=True, worker=False, api_port=0) as parts:
        assert parts.api_url is not None
        assert backlog(await scrape(parts.api_url + "/metrics")) == dict.fromkeys(BACKLOG, 0.0)
        await make_backlog(redis_client, datetime.now(UTC))
        figures = backlog(await scrape(parts.api_url + "/metrics"))
    assert figures["relay_deliveries_waiting"] == 3
    assert figures["relay_deliveries_retrying"] == 2
    assert 90 <= figures["relay_oldest_waiting_delivery_age_seconds"] < 120


@pytest.fixture
async def worker_metrics_url(redis_client: Redis) -> AsyncIterator[str]:
    now = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
    await make_backlog(redis_client, now)
    server = TestServer(health_app(Metrics(), redis_client, clock=lambda: now), host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("/metrics"))
    finally:
        await server.close()


async def test_the_worker_shows_the_backlog(worker_metrics_url: str) -> None:
    text = await scrape(worker_metrics_url)
    assert backlog(text) == {
        "relay_deliveries_waiting": 3,
        "relay_deliveries_retrying": 2,
        "relay_oldest_waiting_delivery_age_seconds": 90,
    }
    for name in ("relay_polls", "relay_delivery_attempt_seconds", "relay_retention_removed"):
        assert f"# TYPE {name}" in text


async def test_metrics_answer_while_redis_does_not() -> None:
    unreachable = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1)
    server = TestServer(health_app(Metrics(), unreachable), host="127.0.0.1")
    await server.start_server()
    try:
        text = await scrape(str(server.make_url("/metrics")))
    finally:
        await server.close()
        await unreachable.aclose()
    assert backlog(text) == dict.fromkeys(BACKLOG, 0.0)


async def test_each_accounts_last_successful_poll_is_a_gauge(redis_client: Redis) -> None:
    await redis_client.zadd("relay:accounts", {"acme": 1_700_000_000_000, "bolt": 1_700_000_100_000})
    await redis_client.hset("relay:account:acme:status", "last_success_at", "2026-11-26T10:00:00+00:00")
    polls = await read_last_successful_polls(redis_client)
    assert polls == {"acme": datetime(2026, 11, 26, 10, tzinfo=UTC).timestamp(), "bolt": 1_700_000_100.0}
    metrics = Metrics()
    assert await metrics.refresh_backlog(redis_client, datetime.now(UTC))
    text = metrics.render().decode()
    assert 'relay_last_successful_poll_timestamp_seconds{account="bolt"} 1.7000001e+09' in text
    await redis_client.zrem("relay:accounts", "bolt")
    assert await metrics.refresh_backlog(redis_client, datetime.now(UTC))
    assert 'account="bolt"' not in metrics.render().decode()  # a removed account leaves no series behind


async def test_the_scheduler_backlog_shows_polls_due_and_not_claimed(redis_client: Redis) -> None:
    now = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
    now_ms = int(now.timestamp() * 1000)
    server = TestServer(health_app(Metrics(), redis_client, clock=lambda: now), host="127.0.0.1")
    await server.start_server()
    try:
        url = str(server.make_url("/metrics"))
        assert polls_backlog(await scrape(url)) == (0, 0)
        # three accounts due (one for 45 s: the workers are behind), one leased to a worker, one not due yet
        due = {"acme": now_ms - 45_000, "bolt": now_ms - 3_000, "core": now_ms, "leased": now_ms + 8_000}
        await redis_client.zadd("relay:polls", {**due, "later": now_ms + 60_000})
        assert polls_backlog(await scrape(url)) == (3, 45)
    finally:
        await server.close()


def polls_backlog(text: str) -> tuple[float, float]:
    samples = {s.name: s.value for family in text_string_to_metric_families(text) for s in family.samples}
    return samples["relay_polls_due"], samples["relay_oldest_due_poll_age_seconds"]
