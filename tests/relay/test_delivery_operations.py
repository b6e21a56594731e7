"""Delivery operations through the HTTP API, with the relay (API and worker) running in this process against a
real Redis, and subscribers on loopback that answer as each test tells them: status handling, Retry-After,
per-subscription schedules and timeouts, health and disabling, skipped deliveries, retry, recover, ping,
secret rotation, and the per-subscription limits."""

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from standardwebhooks import Webhook, WebhookVerificationError

from relay.service import running
from relay.settings import Settings
from subscriptions.core.envelope import NewEvent, event_body
from subscriptions.core.models import AccountRecord
from subscriptions.store.queue import DeliveryQueue
from subscriptions.store.records import Store
from tests.e2e import free_port, wait_for

TOKEN = "ops-admin-token-0123456789abcdefghij"


@dataclass
class Answer:
    status: int = 204
    headers: dict[str, str] = field(default_factory=dict)
    hang_s: float = 0.0


@dataclass
class Hit:
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class Subscribers:
    """Receivers at ``/{name}``: each answers from its queue of answers (then 204), and records every hit."""

    base_url: str = ""
    answers: dict[str, list[Answer]] = field(default_factory=dict)
    hits: dict[str, list[Hit]] = field(default_factory=dict)
    open_now: dict[str, int] = field(default_factory=dict)
    most_open: dict[str, int] = field(default_factory=dict)

    def url(self, name: str) -> str:
        return f"{self.base_url}/{name}"

    def answer(self, name: str, *answers: Answer) -> None:
        self.answers.setdefault(name, []).extend(answers)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        body = await request.read()
        self.open_now[name] = self.open_now.get(name, 0) + 1
        self.most_open[name] = max(self.most_open.get(name, 0), self.open_now[name])
        try:
            queue = self.answers.get(name) or []
            answer = queue.pop(0) if queue else Answer()
            if answer.hang_s:
                await asyncio.sleep(answer.hang_s)
            self.hits.setdefault(name, []).append(Hit(dict(request.headers), body, time.monotonic()))
            return web.Response(status=answer.status, headers=answer.headers, text="answer from the subscriber")
        finally:
            self.open_now[name] -= 1


@dataclass
class Ops:
    http: aiohttp.ClientSession
    api_url: str
    subscribers: Subscribers
    store: Store
    emit_count: int = 0

    async def call(self, method: str, path: str, body: Any = None, expect: int = 200) -> Any:
        async with self.http.request(method, self.api_url + path, json=body) as response:
            payload = await response.json(content_type=None) if response.status != 204 else None
            assert response.status == expect, (method, path, payload)
            return payload

    async def subscribe(self, name: str, **options: Any) -> dict[str, Any]:
        body = {"account": "acme", "url": self.subscribers.url(name), "events": ["order.*"], **options}
        created: dict[str, Any] = await self.call("POST", "/v1/subscriptions", body, expect=201)
        return created

    async def emit(self, count: int = 1) -> list[str]:
        """Commit ``count`` new order events, as a poller would; returns their ids."""
        ids, events = [], []
        for _ in range(count):
            self.emit_count += 1
            n = self.emit_count
            stamp = "2026-11-26T10:00:00Z"
            events.append(
                NewEvent(
                    f"evt_ops{n}", "order.created", "acme", n, stamp, event_body("order.created", stamp, {"id": n})
                )
            )
            ids.append(f"evt_ops{n}")
        subs = await self.store.account_subscriptions("acme")
        await DeliveryQueue(self.store.redis).commit(events, subs, now=datetime.now(UTC))
        return ids

    async def deliveries(self, sub_id: str, status: str | None = None) -> list[dict[str, Any]]:
        query = f"?subscription={sub_id}&limit=1000" + (f"&status={status}" if status else "")
        page = await self.call("GET", "/v1/deliveries" + query)
        items: list[dict[str, Any]] = page["items"]
        return items

    async def until(self, sub_id: str, status: str, count: int, timeout_s: float = 10) -> list[dict[str, Any]]:
        async def reached() -> bool:
            return len(await self.deliveries(sub_id, status)) >= count

        await wait_for(reached, timeout_s, f"{count} {status} deliveries of {sub_id}")
        return await self.deliveries(sub_id, status)


@pytest.fixture
async def ops(redis_url: str) -> AsyncIterator[Ops]:
    subscribers = Subscribers()
    app = web.Application()
    app.router.add_post("/{name}", subscribers.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    subscribers.base_url = f"http://127.0.0.1:{port}"
    settings = Settings(
        redis_url=redis_url,
        api_token=TOKEN,  # type: ignore[arg-type]
        allow_private_targets=True,
        retry_schedule_s=(1.0, 1.0),
        delivery_timeout_s=3,
        retry_after_max_s=4,
        secret_grace_s=3,
        _env_file=None,  # type: ignore[call-arg]
    )
    async with running(settings, api=True, worker=True, api_port=0) as parts:
        assert parts.api_url is not None
        store = Store(parts.connections.redis)
        await store.create_account(
            AccountRecord(
                code="acme",
                base_url="http://127.0.0.1:9/public-api/acme",
                app_ref="acme_relay",
                auth="account_token",
                token="t",
                poll_interval_s=5,
                resources=["orders"],
                created_at=datetime.now(UTC),
            ),
            {},
            first_poll_ms=2**50,  # never polled: these tests make events themselves
        )
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as http:
            yield Ops(http, parts.api_url, subscribers, store)
    await runner.cleanup()


async def test_a_redirect_is_a_failure_that_is_not_followed(ops: Ops) -> None:
    sub = await ops.subscribe("moved", retry_schedule_s=[])
    ops.subscribers.answer("moved", Answer(302, {"Location": ops.subscribers.url("elsewhere")}))
    await ops.emit()
    (failed,) = await ops.until(sub["id"], "failed", 1)
    detail = await ops.call("GET", f"/v1/deliveries/{failed['id']}")
    assert detail["attempts"][0]["status_code"] == 302
    assert "not followed" in detail["attempts"][0]["error"]
    assert "elsewhere" not in ops.subscribers.hits


async def test_410_gone_disables_the_subscription_and_later_events_are_kept_as_skipped(ops: Ops) -> None:
    sub = await ops.subscribe("gone")
    ops.subscribers.answer("gone", Answer(410))
    await ops.emit()
    (failed,) = await ops.until(sub["id"], "failed", 1)
    assert failed["attempt_count"] == 1  # no retry after a 410
    shown = await ops.call("GET", f"/v1/subscriptions/{sub['id']}")
    assert shown["state"] == "disabled"
    assert "410 Gone" in shown["disabled_reason"]
    await ops.emit(3)
    skipped = await ops.until(sub["id"], "skipped", 3)
    assert len(ops.subscribers.hits["gone"]) == 1  # nothing more was sent
    problem = await ops.call("POST", f"/v1/deliveries/{skipped[0]['id']}/retry", expect=409)
    assert '"state": "active"' in problem["detail"]
    # re-enabled, one recover call sends the failed one and every skipped one
    assert (await ops.call("PATCH", f"/v1/subscriptions/{sub['id']}", {"state": "active"}))["state"] == "active"
    since = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    started = await ops.call("POST", f"/v1/subscriptions/{sub['id']}/recover", {"since": since}, expect=202)
    assert started["status"] == "running"
    assert started["total"] == 4
    assert started["id"].startswith("rec_")

    async def completed() -> bool:
        progress = await ops.call("GET", f"/v1/subscriptions/{sub['id']}/recover/{started['id']}")
        return bool(progress["status"] == "completed")

    await wait_for(completed, 10, "the recovery to complete")
    progress = await ops.call("GET", f"/v1/subscriptions/{sub['id']}/recover/{started['id']}")
    assert (progress["done"], progress["succeeded"], progress["failed"]) == (4, 4, 0)
    assert len(ops.subscribers.hits["gone"]) == 5
    assert await ops.deliveries(sub["id"], "skipped") == []


async def test_retry_after_is_honoured_within_bounds(ops: Ops) -> None:
    sub = await ops.subscribe("busy")
    ops.subscribers.answer("busy", Answer(429, {"Retry-After": "2"}), Answer(503, {"Retry-After": "86400"}))
    await ops.emit()
    (succeeded,) = await ops.until(sub["id"], "succeeded", 1, timeout_s=15)
    attempts = (await ops.call("GET", f"/v1/deliveries/{succeeded['id']}"))["attempts"]
    assert [a["status_code"] for a in attempts] == [429, 503, 204]
    times = [datetime.fromisoformat(a["at"]) for a in attempts]
    assert timedelta(seconds=2) <= times[1] - times[0] < timedelta(seconds=3.5)  # as asked, not the 1 s schedule
    assert timedelta(seconds=4) <= times[2] - times[1] < timedelta(seconds=5.5)  # a day asked, bounded to 4 s


async def test_a_subscription_sets_its_own_schedule_and_timeout(ops: Ops) -> None:
    sub = await ops.subscribe("slow", retry_schedule_s=[0.2], timeout_s=0.5)
    assert (sub["retry_schedule_s"], sub["timeout_s"]) == ([0.2], 0.5)
    ops.subscribers.answer("slow", Answer(hang_s=2), Answer(hang_s=2))
    await ops.emit()
    (failed,) = await ops.until(sub["id"], "failed", 1)
    attempts = (await ops.call("GET", f"/v1/deliveries/{failed['id']}"))["attempts"]
    assert len(attempts) == 2  # the first, and the one retry its own schedule allows
    assert all(a["status_code"] is None and "0.5 s" in a["error"] for a in attempts)
    patched = await ops.call("PATCH", f"/v1/subscriptions/{sub['id']}", {"retry_schedule_s": None})
    assert patched["retry_schedule_s"] is None  # back to the relay's schedule
    bad = await ops.call("PATCH", f"/v1/subscriptions/{sub['id']}", {"timeout_s": 0}, expect=422)
    assert "timeout_s" in bad["detail"]


async def test_health_shows_failing_since_and_success_rate(ops: Ops) -> None:
    sub = await ops.subscribe("flaky", retry_schedule_s=[])
    ops.subscribers.answer("flaky", Answer(500), Answer(500), Answer(500))
    await ops.emit(3)
    await ops.until(sub["id"], "failed", 3)
    shown = await ops.call("GET", f"/v1/subscriptions/{sub['id']}")
    assert shown["state"] == "failing"
    assert shown["health"]["failing_since"] is not None
    assert shown["health"]["success_rate"] == 0
    await ops.emit()
    await ops.until(sub["id"], "succeeded", 1)
    shown = await ops.call("GET", f"/v1/subscriptions/{sub['id']}")
    assert shown["state"] == "active"
    assert shown["health"]["failing_since"] is None
    assert shown["health"]["success_rate"] == 0.25
    assert shown["health"]["recent_attempts"] == 4


async def test_retry_sends_any_delivery_again_now(ops: Ops) -> None:
    sub = await ops.subscribe("again")
    await ops.emit()
    (done,) = await ops.until(sub["id"], "succeeded", 1)
    again = await ops.call("POST", f"/v1/deliveries/{done['id']}/retry", expect=202)
    assert again["status"] == "retrying"

    async def twice() -> bool:
        return len(ops.subscribers.hits.get("again", [])) == 2

    await wait_for(twice, 5, "the retried delivery")
    first, second = ops.subscribers.hits["again"]
    assert first.headers["webhook-id"] == second.headers["webhook-id"]


async def test_ping_goes_to_that_subscription_alone(ops: Ops) -> None:
    target = await ops.subscribe("pinged")
    other = await ops.subscribe("other")
    delivery = await ops.call("POST", f"/v1/subscriptions/{target['id']}/test", expect=202)
    assert delivery["type"] == "ping"
    (done,) = await ops.until(target["id"], "succeeded", 1)
    assert done["type"] == "ping"
    hit = ops.subscribers.hits["pinged"][0]
    Webhook(target["secret"]).verify(hit.body, {k.lower(): v for k, v in hit.headers.items()})
    assert b'"type":"ping"' in hit.body
    assert await ops.deliveries(other["id"]) == []


async def test_a_rotated_secret_signs_beside_the_new_one_until_its_grace_ends(ops: Ops) -> None:
    sub = await ops.subscribe("rotating")
    old = sub["secret"]
    rotated = await ops.call("POST", f"/v1/subscriptions/{sub['id']}/rotate-secret")
    new = rotated["secret"]
    assert new != old
    assert new.startswith("whsec_")
    until = datetime.fromisoformat(rotated["previous_valid_until"])
    assert timedelta(seconds=2) < until - datetime.now(UTC) <= timedelta(seconds=3)
    assert (await ops.call("GET", f"/v1/subscriptions/{sub['id']}/secret"))["secret"] == new
    await ops.emit()
    await ops.until(sub["id"], "succeeded", 1)
    hit = ops.subscribers.hits["rotating"][0]
    headers = {k.lower(): v for k, v in hit.headers.items()}
    assert len(headers["webhook-signature"].split()) == 2
    Webhook(new).verify(hit.body, headers)
    Webhook(old).verify(hit.body, headers)  # a receiver still on the old secret keeps working
    await asyncio.sleep(max(0.0, (until - datetime.now(UTC)).total_seconds()) + 0.1)
    await ops.emit()
    await ops.until(sub["id"], "succeeded", 2)
    hit = ops.subscribers.hits["rotating"][1]
    headers = {k.lower(): v for k, v in hit.headers.items()}
    assert len(headers["webhook-signature"].split()) == 1
    Webhook(new).verify(hit.body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(hit.body, headers)


async def test_concurrency_cap_and_rate_limit_are_enforced(ops: Ops) -> None:
    capped = await ops.subscribe("capped", max_concurrency=2)
    ops.subscribers.answer("capped", *[Answer(hang_s=0.3) for _ in range(8)])
    limited = await ops.subscribe("limited", rate_limit_per_s=4)
    await ops.emit(8)
    await ops.until(capped["id"], "succeeded", 8)
    await ops.until(limited["id"], "succeeded", 8)
    assert ops.subscribers.most_open["capped"] == 2
    times = sorted(hit.at for hit in ops.subscribers.hits["limited"])
    # spaced evenly, one every 250 ms (give or take the claim loop's 100 ms): never 5 within a second
    assert times[-1] - times[0] >= 7 * 0.25 - 0.1
    assert all(sum(1 for t in times if start <= t < start + 1.0) <= 4 for start in times)


async def test_recover_needs_a_window_and_an_enabled_subscription(ops: Ops) -> None:
    sub = await ops.subscribe("windows")
    path = f"/v1/subscriptions/{sub['id']}/recover"
    problem = await ops.call("POST", path, {"since": "2026-11-26T10:00:00Z", "until": "2026-11-26T09:00:00Z"}, 422)
    assert "until must be after since" in problem["detail"]
    problem = await ops.call("POST", path, {"since": "2026-11-26T10:00:00"}, 422)
    assert "UTC offset" in problem["detail"]
    await ops.call("PATCH", f"/v1/subscriptions/{sub['id']}", {"state": "disabled"})
    problem = await ops.call("POST", path, {"since": "2026-11-26T10:00:00Z"}, 409)
    assert "disabled" in problem["detail"]
    await ops.call("GET", f"/v1/subscriptions/{sub['id']}/recover/rec_nothing", expect=404)
