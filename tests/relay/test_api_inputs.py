"""Every bad input to the API gets a 4xx problem with a useful detail; never a 5xx, never a traceback."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from openapi_spec_validator import validate
from redis.asyncio import Redis

from relay.api.app import create_app
from relay.api.context import ApiContext
from subscriptions.store.records import Store
from tests.e2e import register_unpolled

TOKEN = "test-admin-token-0123456789abcdefgh"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def no_dns(host: str) -> list[str]:
    known = {"localhost": ["127.0.0.1"], "metadata.internal": ["169.254.169.254"], "example.com": ["93.184.215.14"]}
    return known.get(host, [])


@pytest.fixture
async def api(redis_client: Redis) -> AsyncIterator[TestClient[aiohttp.web.Request, aiohttp.web.Application]]:
    async with aiohttp.ClientSession() as session:
        ctx = ApiContext(
            redis=redis_client,
            admin_token=TOKEN,
            brightpearl_session=session,
            budget_per_minute=100,
            allow_private_targets=False,
            clock=lambda: datetime.now(UTC),
            resolve=no_dns,
        )
        await register_unpolled(Store(redis_client), "acme")
        async with TestClient(TestServer(create_app(ctx), host="127.0.0.1")) as client:
            yield client


async def problem(response: aiohttp.ClientResponse, status: int) -> dict[str, object]:
    assert response.status == status, await response.text()
    assert response.content_type == "application/problem+json"
    body: dict[str, object] = await response.json(content_type=None)
    assert body["status"] == status
    assert body["title"]
    assert isinstance(body["detail"], str)
    assert body["detail"]
    return body


@pytest.mark.parametrize(
    ("headers", "detail"),
    [
        ({}, "Authorization: Bearer"),
        ({"Authorization": "Bearer wrong"}, "not valid"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "must be 'Bearer <token>'"),
        ({"Authorization": "Bearer "}, "must be 'Bearer <token>'"),
    ],
)
async def test_missing_or_wrong_token_is_401(api: TestClient, headers: dict[str, str], detail: str) -> None:  # type: ignore[type-arg]
    for method, path in [("GET", "/v1/accounts"), ("POST", "/v1/subscriptions"), ("GET", "/v1/deliveries/x")]:
        response = await api.request(method, path, headers=headers)
        body = await problem(response, 401)
        assert detail in str(body["detail"])
        assert response.headers["WWW-Authenticate"] == "Bearer"


async def test_open_endpoints_need_no_token(api: TestClient) -> None:  # type: ignore[type-arg]
    assert (await (await api.get("/healthz")).json()) == {"status": "ok"}
    ready = await api.get("/readyz")
    assert ready.status == 200
    assert (await ready.json())["redis"] is True
    metrics = await api.get("/metrics")
    assert metrics.status == 200
    assert "relay_delivery_attempts" in await metrics.text()


async def test_malformed_json(api: TestClient) -> None:  # type: ignore[type-arg]
    response = await api.post("/v1/subscriptions", data=b'{"account": "acme",', headers=AUTH)
    body = await problem(response, 400)
    assert "not valid JSON" in str(body["detail"])


async def test_json_that_is_not_an_object(api: TestClient) -> None:  # type: ignore[type-arg]
    await problem(await api.post("/v1/subscriptions", json=[1, 2], headers=AUTH), 422)


async def test_unknown_account(api: TestClient) -> None:  # type: ignore[type-arg]
    body = await problem(
        await api.post(
            "/v1/subscriptions", json={"account": "nope", "url": "https://example.com/h", "events": ["*"]}, headers=AUTH
        ),
        422,
    )
    assert "'nope' is not registered" in str(body["detail"])
    await problem(await api.get("/v1/accounts/nope", headers=AUTH), 404)
    await problem(await api.delete("/v1/accounts/nope", headers=AUTH), 404)


@pytest.mark.parametrize("events", [["order.deleted"], ["orders.*"], [], ["ORDER.CREATED"]])
async def test_unknown_event_names(api: TestClient, events: list[str]) -> None:  # type: ignore[type-arg]
    body = await problem(
        await api.post(
            "/v1/subscriptions",
            json={"account": "acme", "url": "https://example.com/h", "events": events},
            headers=AUTH,
        ),
        422,
    )
    assert "event" in str(body["detail"])


@pytest.mark.parametrize(
    ("url", "detail"),
    [
        ("ftp://example.com/h", "http:// or https://"),
        ("not a url", "http:// or https://"),
        ("https:///path", "no host"),
        ("http://127.0.0.1:8080/h", "loopback"),
        ("http://localhost/h", "loopback"),
        ("http://metadata.internal/latest", "metadata"),
        ("http://[::ffff:10.0.0.1]/h", "private"),
        ("http://169.254.169.254/latest/meta-data", "metadata"),
    ],
)
async def test_invalid_or_forbidden_urls(api: TestClient, url: str, detail: str) -> None:  # type: ignore[type-arg]
    body = await problem(
        await api.post("/v1/subscriptions", json={"account": "acme", "url": url, "events": ["*"]}, headers=AUTH), 422
    )
    assert detail in str(body["detail"])


async def test_a_host_that_does_not_resolve_yet_is_accepted(api: TestClient) -> None:  # type: ignore[type-arg]
    response = await api.post(
        "/v1/subscriptions",
        json={"account": "acme", "url": "https://hooks.not-yet-registered.example/h", "events": ["order.created"]},
        headers=AUTH,
    )
    assert response.status == 201
    body = await response.json()
    assert body["secret"].startswith("whsec_")
    assert body["state"] == "active"


async def test_oversized_body(api: TestClient) -> None:  # type: ignore[type-arg]
    body = await problem(await api.post("/v1/subscriptions", data=b"{" + b" " * 70_000 + b"}", headers=AUTH), 413)
    assert "65536 bytes" in str(body["detail"])


async def test_unknown_fields_are_named(api: TestClient) -> None:  # type: ignore[type-arg]
    body = await problem(
        await api.post(
            "/v1/subscriptions",
            json={"account": "acme", "url": "https://example.com/h", "events": ["*"], "evnts": ["*"]},
            headers=AUTH,
        ),
        422,
    )
    assert "evnts" in str(body["detail"])


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"code": "acme 2", "base_url": "http://x", "app_ref": "a", "account_token": "t"}, "code"),
        ({"code": "beta", "app_ref": "a", "account_token": "t"}, "exactly one of base_url and datacenter"),
        (
            {"code": "beta", "base_url": "http://x", "datacenter": "euw1", "app_ref": "a", "account_token": "t"},
            "exactly one of base_url and datacenter",
        ),
        ({"code": "beta", "base_url": "http://x", "app_ref": "a"}, "exactly one of account_token and staff_token"),
        (
            {"code": "beta", "base_url": "http://x", "app_ref": "a", "account_token": "t", "poll_interval_s": 0},
            "poll_interval_s",
        ),
        (
            {"code": "beta", "base_url": "http://x", "app_ref": "a", "account_token": "t", "resources": ["invoices"]},
            "resources",
        ),
        ({"code": "beta", "base_url": "gopher://x", "app_ref": "a", "account_token": "t"}, "http://"),
        ({"code": "acme", "base_url": "http://x", "app_ref": "a", "account_token": "t"}, "already registered"),
    ],
)
async def test_bad_account_registrations(api: TestClient, body: dict[str, object], detail: str) -> None:  # type: ignore[type-arg]
    response = await api.post("/v1/accounts", json=body, headers=AUTH)
    assert response.status in (409, 422)
    found = await problem(response, response.status)
    assert detail in str(found["detail"])


async def test_unreachable_brightpearl_is_a_422(api: TestClient) -> None:  # type: ignore[type-arg]
    body = await problem(
        await api.post(
            "/v1/accounts",
            json={
                "code": "beta",
                "base_url": "http://127.0.0.1:9/public-api/beta",
                "app_ref": "beta_relay",
                "account_token": "t",
            },
            headers=AUTH,
        ),
        422,
    )
    assert "could not reach Brightpearl" in str(body["detail"])


@pytest.mark.parametrize(
    "query",
    ["limit=0", "limit=1001", "limit=ten", "cursor=%%%", "status=lost", "since=yesterday"],
)
async def test_bad_list_parameters(api: TestClient, query: str) -> None:  # type: ignore[type-arg]
    path = "/v1/events" if query.startswith("since") else "/v1/deliveries"
    await problem(await api.get(f"{path}?{query}", headers=AUTH), 422)


async def test_unknown_objects_and_routes(api: TestClient) -> None:  # type: ignore[type-arg]
    for path in [
        "/v1/subscriptions/sub_nope",
        "/v1/deliveries/dlv_nope",
        "/v1/events/evt_nope",
        "/v1/subscriptions/sub_nope/secret",
    ]:
        await problem(await api.get(path, headers=AUTH), 404)
    await problem(await api.post("/v1/deliveries/dlv_nope/retry", headers=AUTH), 404)
    body = await problem(await api.get("/v1/nothing-here", headers=AUTH), 404)
    assert "openapi.json" in str(body["detail"])
    await problem(await api.put("/v1/accounts", headers=AUTH), 405)


async def test_bad_patch(api: TestClient) -> None:  # type: ignore[type-arg]
    created = await (
        await api.post(
            "/v1/subscriptions", json={"account": "acme", "url": "https://example.com/h", "events": ["*"]}, headers=AUTH
        )
    ).json()
    path = f"/v1/subscriptions/{created['id']}"
    await problem(await api.patch(path, json={"state": "failing"}, headers=AUTH), 422)
    await problem(await api.patch(path, json={"events": ["nope.*"]}, headers=AUTH), 422)
    await problem(await api.patch(path, json={"url": "http://10.0.0.8/"}, headers=AUTH), 422)
    ok = await api.patch(path, json={"state": "disabled"}, headers=AUTH)
    assert (await ok.json())["disabled_reason"] == "disabled by a PATCH"
    again = await (await api.patch(path, json={"state": "active"}, headers=AUTH)).json()
    assert again["state"] == "active"
    assert again["disabled_reason"] is None
    assert "secret" not in again


async def test_openapi_is_valid_3_1_and_lists_every_endpoint(api: TestClient) -> None:  # type: ignore[type-arg]
    spec = await (await api.get("/openapi.json")).json()
    assert spec["openapi"] == "3.1.0"
    validate(spec)
    for method, path in [
        ("post", "/v1/accounts"),
        ("get", "/v1/accounts"),
        ("get", "/v1/accounts/{code}"),
        ("patch", "/v1/accounts/{code}"),
        ("delete", "/v1/accounts/{code}"),
        ("post", "/v1/subscriptions"),
        ("get", "/v1/subscriptions/{sub_id}/secret"),
        ("get", "/v1/deliveries"),
        ("get", "/v1/deliveries/{delivery_id}"),
        ("post", "/v1/deliveries/{delivery_id}/retry"),
        ("get", "/v1/events/{event_id}"),
        ("get", "/healthz"),
        ("get", "/readyz"),
        ("get", "/metrics"),
    ]:
        assert method in spec["paths"][path], (method, path)
    create = spec["paths"]["/v1/accounts"]["post"]
    assert "422" in create["responses"]
    assert create["security"] == [{"bearerAuth": []}]
    schema_names = set(spec["components"]["schemas"])
    assert {"AccountCreate", "SubscriptionCreate", "Problem"} <= schema_names


# Found by fuzzing the API against its OpenAPI document (tests/test_api_fuzz.py) and by probing around it.


async def test_a_405_says_which_methods_are_allowed(api: TestClient) -> None:  # type: ignore[type-arg]
    response = await api.request("TRACE", "/v1/subscriptions", headers=AUTH)
    await problem(response, 405)
    assert set(response.headers["Allow"].split(",")) == {"GET", "POST"}  # RFC 9110 requires it on a 405


async def test_json_nested_too_deeply_is_a_400(api: TestClient) -> None:  # type: ignore[type-arg]
    body = await problem(await api.post("/v1/subscriptions", data=b"[" * 30_000 + b"]" * 30_000, headers=AUTH), 400)
    assert "nested too deeply" in str(body["detail"])


async def test_a_body_that_cannot_be_decoded_is_a_400(api: TestClient) -> None:  # type: ignore[type-arg]
    headers = {**AUTH, "Content-Type": "application/json", "Content-Encoding": "gzip"}
    body = await problem(await api.post("/v1/subscriptions", data=b"{}", headers=headers), 400)
    assert "cannot be read" in str(body["detail"])


@pytest.mark.parametrize("host", ["a..example", "\u0080\u0300", "x" * 64 + ".example"])
async def test_a_host_name_that_can_never_resolve_is_a_422(api: TestClient, host: str) -> None:  # type: ignore[type-arg]
    # resolving such a host raised UnicodeError (a 500) before it could say whether the address was allowed
    sub = {"account": "acme", "url": f"https://{host}/h", "events": ["*"]}
    found = await problem(await api.post("/v1/subscriptions", json=sub, headers=AUTH), 422)
    assert "not a valid host name" in str(found["detail"])
    account = {"code": "beta", "base_url": f"http://{host}/public-api/beta", "app_ref": "b", "account_token": "t"}
    found = await problem(await api.post("/v1/accounts", json=account, headers=AUTH), 422)
    assert "not a valid host name" in str(found["detail"])


@pytest.mark.parametrize("since", ["0.5", "1700000000", "2026-11-26"])
async def test_times_must_be_iso_8601(api: TestClient, since: str) -> None:  # type: ignore[type-arg]
    # pydantic alone reads a number as Unix time: the spec says date-time, so a number is refused
    body = await problem(await api.get("/v1/events", params={"since": since}, headers=AUTH), 422)
    assert "ISO 8601" in str(body["detail"])
    created = await api.post(
        "/v1/subscriptions", json={"account": "acme", "url": "https://example.com/h", "events": ["*"]}, headers=AUTH
    )
    recover = f"/v1/subscriptions/{(await created.json())['id']}/recover"
    await problem(await api.post(recover, json={"since": 0}, headers=AUTH), 422)
    await problem(await api.post(recover, json={"since": "2026-11-26T10:00:00Z", "until": 1e9}, headers=AUTH), 422)
    ok = await api.get("/v1/events", params={"since": "2026-11-26T10:00:00+01:00"}, headers=AUTH)
    assert ok.status == 200


async def test_storage_unavailable_is_a_declared_503() -> None:
    redis = Redis.from_url("redis://127.0.0.1:1/0", decode_responses=True)  # nothing listens there
    async with aiohttp.ClientSession() as session:
        ctx = ApiContext(
            redis=redis,
            admin_token=TOKEN,
            brightpearl_session=session,
            budget_per_minute=100,
            allow_private_targets=False,
            clock=lambda: datetime.now(UTC),
            resolve=no_dns,
        )
        async with TestClient(TestServer(create_app(ctx), host="127.0.0.1")) as client:
            response = await client.get("/v1/accounts", headers=AUTH)
            await problem(response, 503)
            assert response.headers["Retry-After"]
            spec = await (await client.get("/openapi.json")).json()
    await redis.aclose()
    secured = [op for path in spec["paths"].values() for op in path.values() if op["security"]]
    assert secured
    assert all("503" in op["responses"] for op in secured)
