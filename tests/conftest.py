"""Fixtures shared by the whole suite: a Redis database of the test's own, and clocks.

Tests use the real Redis on 127.0.0.1:6379 (``RELAY_TEST_REDIS_URL`` overrides). arq's keys have a fixed prefix,
so each test takes a whole database: one that is empty, claimed with a marker key so that concurrent runs never
share one, and emptied afterwards (everything in it was written by the test).
"""

import os
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import pytest
import redis
from redis.asyncio import Redis

pytest.register_assert_rewrite("tests.harness", "tests.e2e")

BASE_URL = os.environ.get("RELAY_TEST_REDIS_URL", "redis://127.0.0.1:6379")
CLAIM_KEY = "relay-test:claimed"
DATABASES = range(1, 16)


@pytest.fixture
def redis_url() -> Iterator[str]:
    """The URL of a Redis database this test has to itself."""
    for db in DATABASES:
        client = redis.Redis.from_url(f"{BASE_URL}/{db}")
        try:
            if client.dbsize() == 0 and client.set(CLAIM_KEY, os.getpid(), nx=True, ex=600):
                break
        finally:
            client.close()
    else:
        pytest.fail(f"no empty Redis database among {list(DATABASES)} at {BASE_URL}")
    try:
        yield f"{BASE_URL}/{db}"
    finally:
        client = redis.Redis.from_url(f"{BASE_URL}/{db}")
        try:
            client.flushdb()  # only this test wrote here: it was empty and claimed when the test began
        finally:
            client.close()


async def empty_database(client: Redis) -> None:
    """Delete everything in a test's own database but the marker that keeps it the test's own: emptied with
    FLUSHDB, the database would look free to a concurrent run, which could claim it mid-test."""
    names = [name async for name in client.scan_iter(count=1000) if name not in (CLAIM_KEY, CLAIM_KEY.encode())]
    for start in range(0, len(names), 1000):
        await client.unlink(*names[start : start + 1000])


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()


class FakeClock:
    """A clock tests move by hand."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        from datetime import timedelta

        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 11, 26, 10, 0, 0, tzinfo=UTC))


from tests.harness import harness  # noqa: E402, F401 - the sandbox-and-poller fixture, for every test
