"""``RELAY_METRICS_TOKEN``: when set, ``/metrics`` on the API and on the worker's server needs it as a bearer token
(its series name accounts, which are customers); ``/healthz`` and ``/readyz`` stay open for probes."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from pydantic import SecretStr
from redis.asyncio import Redis

from relay.api.app import create_app, openapi_document
from relay.api.context import ApiContext
from relay.service import health_app, running
from relay.settings import Settings
from workers.metrics import Metrics

ADMIN = "metrics-admin-token-0123456789abcdef"
SCRAPER = "scraper-token-0123456789"

REFUSED = [
    {},
    {"Authorization": "Bearer wrong"},
    {"Authorization": f"Bearer {ADMIN}"},  # the admin token is not the metrics token
    {"Authorization": f"Basic {SCRAPER}"},
    {"Authorization": f"Bearer {SCRAPER}x"},
]


async def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str, str]:
    async with aiohttp.ClientSession() as http, http.get(url, headers=headers or {}) as response:
        return response.status, response.headers.get("Content-Type", ""), await response.text()


@pytest.fixture
async def api_url(redis_client: Redis, request: pytest.FixtureRequest) -> AsyncIterator[str]:
    async with aiohttp.ClientSession() as session:
        ctx = ApiContext(
            redis=redis_client,
            admin_token=ADMIN,
            brightpearl_session=session,
            budget_per_minute=100,
            allow_private_targets=False,
            clock=lambda: datetime.now(UTC),
            metrics_token=request.param,
        )
        server = TestServer(create_app(ctx), host="127.0.0.1")
        await server.start_server()
        try:
            yield str(server.make_url(""))
        finally:
            await server.close()


@pytest.fixture
async def worker_url(redis_client: Redis, request: pytest.FixtureRequest) -> AsyncIterator[str]:
    server = TestServer(health_app(Metrics(), redis_client, metrics_token=request.param), host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url(""))
    finally:
        await server.close()


@pytest.mark.parametrize("api_url", [SCRAPER], indirect=True)
async def test_the_api_metrics_need_the_token_when_it_is_set(api_url: str) -> None:
    for headers in REFUSED:
        status, content_type, body = await get(f"{api_url}/metrics", headers)
        assert status == 401, headers
        assert content_type.startswith("application/problem+json")
        assert "relay_" not in body
    status, content_type, body = await get(f"{api_url}/metrics", {"Authorization": f"Bearer {SCRAPER}"})
    assert status == 200
    assert content_type.startswith("text/plain")
    assert "relay_deliveries_waiting" in body
    for open_path in ("/healthz", "/readyz"):
        assert (await get(f"{api_url}{open_path}"))[0] == 200


@pytest.mark.parametrize("worker_url", [SCRAPER], indirect=True)
async def test_the_worker_metrics_need_the_token_when_it_is_set(worker_url: str) -> None:
    for headers in REFUSED:
        status, content_type, body = await get(f"{worker_url}/metrics", headers)
        assert status == 401, headers
        assert content_type.startswith("application/problem+json")
        assert "relay_" not in body
    status, _, body = await get(f"{worker_url}/metrics", {"Authorization": f"Bearer {SCRAPER}"})
    assert status == 200
    assert "relay_deliveries_waiting" in body
    assert (await get(f"{worker_url}/healthz"))[0] == 200


@pytest.mark.parametrize("api_url", [None], indirect=True)
async def test_without_the_setting_the_api_metrics_stay_open(api_url: str) -> None:
    status, _, body = await get(f"{api_url}/metrics")
    assert status == 200
    assert "relay_deliveries_waiting" in body


@pytest.mark.parametrize("worker_url", [None], indirect=True)
async def test_without_the_setting_the_worker_metrics_stay_open(worker_url: str) -> None:
    assert (await get(f"{worker_url}/metrics"))[0] == 200


@pytest.mark.parametrize(("value", "needed"), [(SCRAPER, True), (f"  {SCRAPER}\n", True), ("", False), (None, False)])
async def test_relay_api_takes_the_setting(redis_url: str, value: str | None, needed: bool) -> None:
    settings = Settings(
        redis_url=redis_url,
        api_token=SecretStr(ADMIN),
        metrics_token=SecretStr(value) if value is not None else None,
    )
    async with running(settings, api=True, worker=False, api_port=0) as parts:
        assert parts.api_url is not None
        assert (await get(f"{parts.api_url}/metrics"))[0] == (401 if needed else 200)
        assert (await get(f"{parts.api_url}/metrics", {"Authorization": f"Bearer {SCRAPER}"}))[0] == 200


def test_the_openapi_document_declares_the_401() -> None:
    spec = openapi_document(title="t", version="0")
    answers = spec["paths"]["/metrics"]["get"]["responses"]
    assert set(answers) == {"200", "401"}
    assert "application/problem+json" in answers["401"]["content"]
