"""RELAY_BRIGHTPEARL_TIMEOUT_S, and each lane's last error on ``GET /v1/accounts/{code}``, with the relay running
in this process against the sandbox."""

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr, ValidationError

from relay.sandbox.app import start_sandbox
from relay.service import running
from relay.settings import Settings, describe_error
from tests.e2e import wait_for
from tests.relay.test_accounts_api import TOKEN, Api


@pytest.mark.parametrize(
    ("value", "line"),
    [
        ("0", "RELAY_BRIGHTPEARL_TIMEOUT_S: Input should be greater than or equal to 1 (got '0')"),
        ("301", "RELAY_BRIGHTPEARL_TIMEOUT_S: Input should be less than or equal to 300 (got '301')"),
        ("soon", "RELAY_BRIGHTPEARL_TIMEOUT_S: Input should be a valid number, unable to parse string as a number"),
    ],
)
def test_the_timeout_setting_is_bounded(monkeypatch: pytest.MonkeyPatch, value: str, line: str) -> None:
    monkeypatch.setenv("RELAY_BRIGHTPEARL_TIMEOUT_S", value)
    with pytest.raises(ValidationError) as refused:
        Settings()
    assert describe_error(refused.value).startswith(line)


def test_the_timeout_setting_defaults_to_30_s(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().brightpearl_timeout_s == 30
    monkeypatch.setenv("RELAY_BRIGHTPEARL_TIMEOUT_S", "2.5")
    assert Settings().brightpearl_timeout_s == 2.5


@pytest.fixture
async def api(redis_url: str) -> AsyncIterator[Api]:
    sandbox = await start_sandbox()
    settings = Settings(
        redis_url=redis_url,
        api_token=SecretStr(TOKEN),
        budget_share=1,
        allow_private_targets=True,
        brightpearl_timeout_s=1,
    )
    try:
        async with running(settings, api=True, worker=True, api_port=0) as parts, aiohttp.ClientSession() as http:
            assert parts.api_url is not None
            yield Api(parts.api_url, http, sandbox)
    finally:
        await sandbox.close()


async def sandbox(api: Api, method: str, path: str, body: Any = None) -> Any:
    async with api.http.request(method, f"{api.sandbox.url}/_sandbox/accounts/acme{path}", json=body) as response:
        assert response.status < 300, await response.text()
        return await response.json()


async def test_registration_gives_up_after_the_timeout(api: Api) -> None:
    await sandbox(api, "POST", "/faults", {"kind": "slow", "delay_ms": 1500, "count": 1})
    problem = await api.call("POST", "/v1/accounts", api.account_body(resources=["orders"]), 422)
    assert "no answer within 1.0 s" in problem["detail"]


async def test_a_lane_shows_its_last_error_and_since_when(api: Api) -> None:
    await api.call("POST", "/v1/accounts", api.account_body(resources=["orders"], poll_interval_s=1), 201)
    await sandbox(api, "POST", "/faults", {"kind": "html", "status": 403, "path_contains": "order-search"})

    async def orders() -> dict[str, Any]:
        account = await api.call("GET", "/v1/accounts/acme")
        lane: dict[str, Any] = account["status"]["resources"]["orders"]
        return lane

    async def failing_twice() -> bool:
        lane = await orders()
        return lane["error_since"] is not None and lane["last_error_at"] > lane["error_since"]

    await wait_for(failing_twice, 15, "the orders lane to fail twice")
    lane = await orders()
    assert lane["last_error_kind"] == "html"  # Cloudflare's 403: not a refused token, so no long back-off
    assert "Attention Required! | Cloudflare" in lane["last_error"]
    await sandbox(api, "DELETE", "/faults")

    async def recovered() -> bool:
        return (await orders())["error_since"] is None

    await wait_for(recovered, 15, "the orders lane to recover")
    lane = await orders()
    assert lane["last_error_kind"] == "html"
    assert lane["caught_up_at"] > lane["last_error_at"]
