"""The sandbox's native webhooks (API.md 7): CRUD answers as recorded, and thin hints fired to a real receiver on
loopback when the sandbox's data changes, with the faults and retry rules tests switch on."""

import asyncio
import contextlib
import io
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from relay.sandbox.app import serve_sandbox_forever
from relay.sandbox.hints import worth_retrying
from relay.sandbox.webhook_events import covers, event_values, raised_on, subscribable
from tests.sandbox import recordings
from tests.sandbox.conftest import START, Client

TEMPLATE = (
    '{ "accountCode": "${account-code}", "resourceType": "${resource-type}", "id": "${resource-id}", '
    '"lifecycleEvent": "${lifecycle-event}", "fullEvent": "${full-event}", "raisedOn": "${raised-on}", '
    '"brightpearlVersion": "${brightpearl-version}" }'
)
WEBHOOK = "integration-service/webhook"


@dataclass
class Received:
    path: str
    content_type: str | None
    body: dict[str, Any]
    at: float


@dataclass
class Receiver:
    """A real HTTP endpoint on loopback that keeps what it is sent, and answers ``statuses`` in turn (then 200)."""

    url: str = ""
    calls: list[Received] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        text = await request.text()
        body = json.loads(text) if text else {}
        loop = asyncio.get_running_loop()
        self.calls.append(Received(request.path, request.headers.get("Content-Type"), body, loop.time()))
        return web.Response(status=self.statuses.pop(0) if self.statuses else 200)

    def ids(self, event: str | None = None) -> list[str]:
        return [call.body["id"] for call in self.calls if event is None or call.body["fullEvent"] == event]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    found = Receiver()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", found.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    found.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    yield found
    await runner.cleanup()


async def subscribe(client: Client, receiver: Receiver, subscribe_to: str, **extra: Any) -> int:
    body = {
        "subscribeTo": subscribe_to,
        "httpMethod": "POST",
        "uriTemplate": f"{receiver.url}/hooks/${{account-code}}/x",
        "contentType": "application/json",
        "idSetAccepted": True,
        "qualityOfService": 1,
        "bodyTemplate": TEMPLATE,
    } | extra
    reply = await client.bp("POST", WEBHOOK, json=body)
    assert reply.status == 200, reply.text
    return int(reply.body["response"])


async def settle(client: Client) -> list[dict[str, Any]]:
    assert (await client.ok("POST", "/hints/settle", {"timeout_s": 10}))["settled"]
    return list((await client.ok("GET", "/hints"))["calls"])


async def faults(client: Client, **values: Any) -> None:
    await client.ok("PUT", "/hints/faults", {"seed": 7, **values})


# --- pure -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subscribe_to", "event", "expected"),
    [
        ("product", "product.modified.on-hand-modified", True),
        ("order.modified", "order.modified.order-status", True),
        ("order.modified", "order.modified", True),
        ("order.modified.order-status", "order.modified", False),
        ("goods-out", "goods-out-note.created", False),
        ("goods-out-note", "goods-out-note.modified.un-picked", True),
    ],
)
def test_covers(subscribe_to: str, event: str, expected: bool) -> None:
    assert covers(subscribe_to, event) is expected


@pytest.mark.parametrize(
    ("subscribe_to", "expected"),
    [
        ("order", True),
        ("order.created", False),  # refused by default
        ("contact", True),  # a prefix is taken; its refused events never fire
        ("contact.modified", False),
        ("goods-in-note.created", True),
        ("invalid-resource", False),
        ("orders", False),
        ("product.", False),
    ],
)
def test_subscribable_by_default(subscribe_to: str, expected: bool) -> None:
    assert subscribable(subscribe_to, ("order.created", "contact.modified")) is expected


def test_event_values_are_strings_with_id_set_ranges() -> None:
    values = event_values("acme", "product.modified.on-hand-modified", [5, 1, 2, 3, 99], START)
    assert values == {
        "${account-code}": "acme",
        "${resource-type}": "product",
        "${resource-id}": "1-3,5,99",
        "${lifecycle-event}": "modified",
        "${resource-specifier}": "on-hand-modified",
        "${full-event}": "product.modified.on-hand-modified",
        "${raised-on}": "2026-11-26T10:00:00.000Z",
        "${brightpearl-version}": "4.95.2647",
    }
    assert event_values("a", "order.created", [1], START)["${resource-specifier}"] == ""
    assert raised_on(START.replace(microsecond=691_500)) == "2026-11-26T10:00:00.691Z"


@pytest.mark.parametrize(
    ("qos", "status", "expected"),
    [
        (0, 503, True),
        (0, 500, False),
        (0, None, False),
        (1, 500, True),
        (1, None, True),
        (1, 404, False),
        (1, 200, False),
        (0, 200, False),
        (1, 429, False),
    ],
)
def test_worth_retrying(qos: int, status: int | None, expected: bool) -> None:
    assert worth_retrying(qos, status) is expected


# --- CRUD, as recorded ----------------------------------------------------------------------------------------


def recorded_request(name: str) -> dict[str, Any]:
    lines = (recordings.recorded.RECORDED / name).read_text().split("\n")
    return dict(json.loads(lines[2].removeprefix("REQ BODY: ")))


async def test_crud_answers_as_recorded(client: Client) -> None:
    created = recordings.load("webhook__get__single.yml.0.txt")
    reply = await client.bp("POST", WEBHOOK, json=recorded_request("webhook__get__single.yml.0.txt"))
    assert (reply.status, reply.headers["Message-Type"]) == (200, created.message_type)
    assert recordings.shape(reply.body) == recordings.shape(created.body)
    webhook_id = reply.body["response"]

    got = recordings.load("webhook__get__single.yml.1.txt")
    reply = await client.bp("GET", f"{WEBHOOK}/{webhook_id}")
    assert (reply.status, reply.headers["Message-Type"]) == (200, got.message_type)
    assert list(reply.body["response"][0]) == list(got.body["response"][0])  # keys in the recorded order
    assert reply.body == {"response": [got.body["response"][0] | {"id": webhook_id}]}

    for name, method in [
        ("webhook__get__not_found.yml.0.txt", "GET"),
        ("webhook__delete__not_found.yml.0.txt", "DELETE"),
    ]:
        missing = recordings.load(name)
        reply = await client.bp(method, f"{WEBHOOK}/99999")
        assert (reply.status, reply.headers["Message-Type"], reply.body) == (404, missing.message_type, missing.body)

    deleted = recordings.load("webhook__get__single.yml.2.txt")
    reply = await client.bp("DELETE", f"{WEBHOOK}/{webhook_id}")
    assert (reply.status, reply.headers["Message-Type"], reply.body) == (200, deleted.message_type, {})
    assert (await client.bp("DELETE", f"{WEBHOOK}/{webhook_id}")).status == 404

    refused = recordings.load("webhook__post__error_invalid_params.yml.0.txt")
    reply = await client.bp("POST", WEBHOOK, json=recorded_request("webhook__post__error_invalid_params.yml.0.txt"))
    assert (reply.status, reply.headers["Message-Type"], reply.body) == (400, refused.message_type, refused.body)


async def test_get_all_and_by_id_set(client: Client, receiver: Receiver) -> None:
    assert (await client.get(WEBHOOK)) == {"response": []}
    ids = [await subscribe(client, receiver, name) for name in ("order", "product", "goods-out-note")]
    assert [hook["id"] for hook in (await client.get(WEBHOOK))["response"]] == ids
    assert [hook["subscribeTo"] for hook in (await client.get(f"{WEBHOOK}/{ids[0]}-{ids[1]},9999"))["response"]] == [
        "order",
        "product",
    ]
    listed = (await client.ok("GET", "/webhooks"))["webhooks"]
    assert [hook["id"] for hook in listed] == ids


async def test_the_webhook_requests_count_against_the_throttle(client: Client, receiver: Receiver) -> None:
    first = await client.bp("GET", WEBHOOK)
    await subscribe(client, receiver, "order")
    last = await client.bp("GET", WEBHOOK)
    remaining = int(first.headers["Brightpearl-Requests-Remaining"])
    assert int(last.headers["Brightpearl-Requests-Remaining"]) == remaining - 2
    unauthenticated = await client.bp("GET", WEBHOOK, headers={})
    assert unauthenticated.status == 401


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"subscribeTo": None}, 400, "CMNC-400"),
        ({"uriTemplate": ""}, 400, "CMNC-400"),
        ({"httpMethod": "PATCH"}, 400, "CMNC-400"),
        ({"bodyTemplate": None}, 400, "CMNC-400"),
        ({"qualityOfService": 2}, 400, "CMNC-400"),
        ({"subscribeTo": "order.created"}, 400, "INTC-064"),
        ({"subscribeTo": "contact.modified"}, 400, "INTC-064"),
        ({"subscribeTo": "goods-out"}, 400, "INTC-064"),
        ({"subscribeTo": "order"}, 200, None),
        ({"subscribeTo": "order.modified"}, 200, None),
        ({"subscribeTo": "sales-order.created"}, 200, None),
        ({"httpMethod": "GET", "bodyTemplate": None, "contentType": None}, 200, None),
    ],
)
async def test_what_a_subscription_must_be(
    client: Client, receiver: Receiver, body: dict[str, Any], status: int, code: str | None
) -> None:
    base = {
        "subscribeTo": "product",
        "httpMethod": "POST",
        "uriTemplate": receiver.url,
        "bodyTemplate": TEMPLATE,
        "contentType": "application/json",
    }
    sent = {key: value for key, value in (base | body).items() if value is not None}
    reply = await client.bp("POST", WEBHOOK, json=sent)
    assert reply.status == status, reply.text
    if code is not None:
        assert reply.body["errors"][0]["code"] == code
    if code == "INTC-064":
        message = f"{sent['subscribeTo']} either does not exist or cannot be subscribed too"
        assert reply.body["errors"][0]["message"] == message


async def test_refused_events_are_an_account_option(client: Client, receiver: Receiver) -> None:
    await client.ok("PATCH", "", {"refused_webhook_events": []})
    await subscribe(client, receiver, "order.created")
    await client.orders(1)
    await settle(client)
    assert receiver.ids("order.created") == ["1"]
    made = await client.control("POST", "/accounts", {"code": "plum", "refused_webhook_events": ["product.created"]})
    assert made.status == 201, made.text
    described = await client.ok("GET", "", account="plum")
    assert described["refused_webhook_events"] == ["product.created"]
    assert described["order_modified_on_create"] is True


# --- firing ---------------------------------------------------------------------------------------------------


async def test_an_order_made_fires_order_modified_and_never_a_refused_event(client: Client, receiver: Receiver) -> None:
    await subscribe(client, receiver, "order")
    (order_id,) = await client.orders(1)
    calls = await settle(client)
    assert [call["event"] for call in calls] == ["order.modified"]
    assert (calls[0]["outcome"], calls[0]["status"]) == ("delivered", 200)
    (received,) = receiver.calls
    assert received.path == "/hooks/acme/x"
    assert received.content_type == "application/json"
    assert received.body == {
        "accountCode": "acme",
        "resourceType": "order",
        "id": str(order_id),
        "lifecycleEvent": "modified",
        "fullEvent": "order.modified",
        "raisedOn": "2026-11-26T10:00:00.000Z",
        "brightpearlVersion": "4.95.2647",
    }
    assert all(isinstance(value, str) for value in received.body.values())


async def test_without_order_modified_on_create_a_new_order_fires_nothing(client: Client, receiver: Receiver) -> None:
    await client.ok("PATCH", "", {"order_modified_on_create": False})
    await subscribe(client, receiver, "order")
    await client.orders(3)
    assert await settle(client) == []


async def test_a_status_change_fires_order_status_even_when_updated_on_stays(
    client: Client, receiver: Receiver
) -> None:
    await client.ok("PATCH", "", {"status_moves_updated_on": False, "order_modified_on_create": False})
    await subscribe(client, receiver, "order.modified")
    (order_id,) = await client.orders(1)
    await client.ok("PUT", f"/orders/{order_id}/status", {"status_id": 2})
    await client.ok("PATCH", f"/orders/{order_id}", {"custom_fields": {"PCF_GIFTWRAP": True}})
    await settle(client)
    assert [(call.body["fullEvent"], call.body["id"]) for call in receiver.calls] == [
        ("order.modified.order-status", str(order_id)),
        ("order.modified", str(order_id)),
    ]
    assert receiver.calls[0].body["lifecycleEvent"] == "modified"


async def test_stock_changes_fire_on_hand_modified(client: Client, receiver: Receiver) -> None:
    await subscribe(client, receiver, "product.modified.on-hand-modified")
    (product_id,) = await client.products(1)
    await client.ok("POST", "/stock/receive", {"product_id": product_id, "warehouse_id": 2, "quantity": 5}, 201)
    await client.ok("POST", "/stock/correct", {"product_id": product_id, "warehouse_id": 2, "quantity": -1}, 201)
    await client.orders(1, rows=[{"product_id": product_id, "quantity": 2}], allocate=True)
    await settle(client)
    assert receiver.ids() == [str(product_id)] * 3
    assert {call.body["resourceType"] for call in receiver.calls} == {"product"}


async def test_product_lifecycle_fires_product_events(client: Client, receiver: Receiver) -> None:
    await subscribe(client, receiver, "product")
    (product_id,) = await client.products(1)
    await client.ok("PATCH", f"/products/{product_id}", {"name": "Renamed"})
    await client.ok("DELETE", f"/products/{product_id}")
    await settle(client)
    assert [call.body["fullEvent"] for call in receiver.calls] == [
        "product.created",
        "product.modified",
        "product.destroyed",
    ]


async def test_goods_out_stages_fire_their_events(client: Client, receiver: Receiver) -> None:
    (product_id,) = await client.products(1, stock={"2": 10})
    (order_id,) = await client.orders(1, rows=[{"product_id": product_id, "quantity": 1}])
    await subscribe(client, receiver, "goods-out-note")
    note = await client.ok("POST", f"/orders/{order_id}/goods-out-notes", None, 201)
    note_id = note["id"]
    await client.ok("POST", f"/goods-out-notes/{note_id}/stage", {"stage": "printed"})
    await client.ok("POST", f"/goods-out-notes/{note_id}/unstage", {"stage": "printed"})
    await client.ok("PATCH", f"/goods-out-notes/{note_id}", {"priority": True})
    await client.ok("POST", f"/goods-out-notes/{note_id}/stage", {"stage": "shipped"})
    await settle(client)
    assert [call.body["fullEvent"] for call in receiver.calls] == [
        "goods-out-note.created",
        "goods-out-note.modified.printed",
        "goods-out-note.modified.un-printed",
        "goods-out-note.modified",
        "goods-out-note.modified.shipped",
        "goods-out-note.modified.printed",
        "goods-out-note.modified.picked",
        "goods-out-note.modified.packed",
    ]
    assert set(receiver.ids()) == {str(note_id)}
    assert receiver.calls[-1].body["resourceType"] == "goods-out-note"


async def test_contacts_fire_only_when_not_refused(client: Client, receiver: Receiver) -> None:
    await subscribe(client, receiver, "contact")
    await client.ok("POST", "/contacts", {"count": 1}, 201)
    assert await settle(client) == []
    await client.ok("PATCH", "", {"refused_webhook_events": ["contact.created"]})
    (contact,) = (await client.ok("POST", "/contacts", {"count": 1}, 201))["ids"]
    await client.ok("PATCH", f"/contacts/{contact}", {"last_name": "Other"})
    await settle(client)
    assert [call.body["fullEvent"] for call in receiver.calls] == ["contact.modified"]


async def test_without_id_sets_each_id_is_a_call(client: Client, receiver: Receiver) -> None:
    await subscribe(client, receiver, "product.created", idSetAccepted=False)
    await client.products(3)
    await settle(client)
    assert sorted(receiver.ids()) == ["10001", "10002", "10003"]


async def test_a_get_webhook_renders_its_uri_and_sends_no_body(client: Client, receiver: Receiver) -> None:
    template = f"{receiver.url}/get/${{resource-type}}/${{resource-id}}"
    await subscribe(client, receiver, "product.created", httpMethod="GET", uriTemplate=template, bodyTemplate=None)
    await client.products(2)
    await settle(client)
    assert [(call.path, call.body) for call in receiver.calls] == [("/get/product/10001-10002", {})]


async def test_hints_go_only_to_loopback_unless_allowed(client: Client, receiver: Receiver) -> None:
    await subscribe(client, receiver, "product", uriTemplate="https://example.com/endpoint/to/receive/webhooks")
    await client.products(1)
    (call,) = await settle(client)
    assert (call["outcome"], call["status"], call["attempt"]) == ("refused-host", None, 0)
    assert (await client.ok("PATCH", "/hints/policy", {"allow_remote": True}))["allow_remote"] is True


async def test_the_change_does_not_wait_for_the_hint(client: Client, receiver: Receiver) -> None:
    await faults(client, delay_ms=1000)
    await subscribe(client, receiver, "product")
    loop = asyncio.get_running_loop()
    started = loop.time()
    await client.products(1)
    assert loop.time() - started < 0.5
    assert (await client.ok("GET", "/hints"))["busy"] is True
    await settle(client)
    assert receiver.calls[0].at - started >= 1.0


async def test_the_log_is_read_and_cleared(client: Client, receiver: Receiver) -> None:
    await subscribe(client, receiver, "product")
    await client.products(1)
    (call,) = await settle(client)
    assert set(call) == {"webhook_id", "event", "ids", "url", "status", "attempt", "at", "outcome", "duplicate", "body"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", call["at"])
    assert (await client.ok("DELETE", "/hints")) == {"cleared": 1}
    assert (await client.ok("GET", "/hints"))["calls"] == []


# --- faults ---------------------------------------------------------------------------------------------------


async def test_batched_events_go_out_as_one_call_with_ranges(client: Client, receiver: Receiver) -> None:
    await faults(client, batch_ms=2000)  # wide enough for the six orders below on a loaded machine
    await subscribe(client, receiver, "order.modified")
    for _ in range(5):
        await client.orders(1)
    await client.orders(1, order_type="PC")  # 6
    await client.ok("PUT", "/orders/3/status", {"status_id": 2})  # another event: a call of its own
    await settle(client)
    assert sorted((call.body["fullEvent"], call.body["id"]) for call in receiver.calls) == [
        ("order.modified", "1-6"),
        ("order.modified.order-status", "3"),
    ]


async def test_dropped_share_within_tolerance_and_the_same_each_run(client: Client, receiver: Receiver) -> None:
    await subscribe(client, receiver, "product.created")
    outcomes = []
    for _ in range(2):
        await faults(client, drop=0.3)
        await client.ok("DELETE", "/hints")
        for _ in range(200):
            await client.products(1)
        outcomes.append([call["outcome"] for call in await settle(client)])
    assert outcomes[0] == outcomes[1]
    dropped = outcomes[0].count("dropped")
    assert 40 <= dropped <= 80
    assert len(receiver.calls) == 2 * (200 - dropped)


async def test_duplicated_calls_are_sent_twice(client: Client, receiver: Receiver) -> None:
    await faults(client, duplicate=1.0)
    await subscribe(client, receiver, "product.created")
    await client.products(1)
    await client.products(1)
    calls = await settle(client)
    assert sorted(receiver.ids()) == ["10001", "10001", "10002", "10002"]
    assert sorted(call["duplicate"] for call in calls) == [False, False, True, True]


async def test_reordered_calls_all_arrive_shuffled(client: Client, receiver: Receiver) -> None:
    await faults(client, reorder_window=8, reorder_ms=2000)
    await subscribe(client, receiver, "product.created")
    for _ in range(8):
        await client.products(1)
    await settle(client)
    arrived = receiver.ids()
    assert sorted(arrived) == [str(10001 + i) for i in range(8)]
    assert arrived != sorted(arrived)


async def test_delayed_calls_are_held(client: Client, receiver: Receiver) -> None:
    await faults(client, delay_ms=300, jitter_ms=100)
    await subscribe(client, receiver, "product.created")
    started = asyncio.get_running_loop().time()
    await client.products(1)
    await settle(client)
    assert 0.3 <= receiver.calls[0].at - started < 2.0


async def test_faults_are_read_and_cleared(client: Client) -> None:
    set_to = await client.ok("PUT", "/hints/faults", {"drop": 0.5, "seed": 1})
    assert set_to["drop"] == 0.5
    assert (await client.ok("GET", "/hints/faults"))["drop"] == 0.5
    assert (await client.ok("DELETE", "/hints/faults"))["drop"] == 0.0
    assert (await client.control("PUT", "/accounts/acme/hints/faults", {"drop": 2})).status == 400


# --- quality of service ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("qos", "statuses", "attempts"),
    [
        (1, [500], [500, 200]),
        (1, [500, 502, 500], [500, 502, 500]),  # three attempts, then given up
        (1, [404], [404]),
        (0, [500], [500]),
        (0, [503], [503, 200]),
    ],
)
async def test_quality_of_service_retries(
    client: Client, receiver: Receiver, qos: int, statuses: list[int], attempts: list[int]
) -> None:
    await client.ok("PATCH", "/hints/policy", {"backoff_ms": [10]})
    receiver.statuses = list(statuses)
    await subscribe(client, receiver, "product.created", qualityOfService=qos)
    await client.products(1)
    calls = await settle(client)
    assert [call["status"] for call in calls] == attempts
    assert [call["attempt"] for call in calls] == list(range(1, len(attempts) + 1))


async def test_an_unreachable_receiver_is_retried_at_qos_1(client: Client, receiver: Receiver) -> None:
    await client.ok("PATCH", "/hints/policy", {"backoff_ms": [10], "max_attempts": 2})
    await subscribe(client, receiver, "product.created", uriTemplate="http://127.0.0.1:9/closed")
    await client.products(1)
    calls = await settle(client)
    assert [(call["outcome"], call["attempt"]) for call in calls] == [("error", 1), ("error", 2)]


# --- simulate -------------------------------------------------------------------------------------------------


async def test_simulate_fires_the_webhook_with_the_test_data(client: Client, receiver: Receiver) -> None:
    webhook_id = await subscribe(client, receiver, "product")
    test_data = {
        "${account-code}": "myAccount",
        "${resource-type}": "product",
        "${resource-id}": "1-5,99,202",
        "${lifecycle-event}": "modified",
        "${resource-specifier}": "on-hand-modified",
        "${full-event}": "product.modified.on-hand-modified",
        "${raised-on}": "2012-01-01T01:01:01Z",
        "${brightpearl-version}": "4.23.1",
    }
    reply = await client.bp("POST", f"{WEBHOOK}/{webhook_id}/simulate", json={"testData": test_data})
    assert (reply.status, reply.body) == (200, {})
    await settle(client)
    (received,) = receiver.calls
    assert received.path == "/hooks/myAccount/x"
    assert received.body["id"] == "1-5,99,202"
    assert received.body["raisedOn"] == "2012-01-01T01:01:01Z"
    missing = await client.bp("POST", f"{WEBHOOK}/999/simulate", json={"testData": {}})
    assert missing.status == 404
    too_many = await client.bp("POST", f"{WEBHOOK}/1-11/simulate", json={"testData": {}})
    assert too_many.status == 400


async def test_a_strict_account_refuses_what_is_not_documented(client: Client, receiver: Receiver) -> None:
    await client.ok("PATCH", "", {"strict": True})
    webhook_id = await subscribe(client, receiver, "product")
    assert (await client.bp("GET", f"{WEBHOOK}/{webhook_id}", params={"fields": "id"})).status == 400
    extra = await client.bp("POST", WEBHOOK, json={"subscribeTo": "product", "secret": "x"})
    assert (extra.status, extra.body["errors"][0]["message"]) == (400, "Unknown fields: secret")
    assert (await client.ok("GET", "/requests"))["refused"] == 2


async def test_a_full_queue_loses_events_and_says_so(client: Client, receiver: Receiver) -> None:
    account = client.sandbox.account("acme")
    account.hints.policy.queue_size = 1
    await subscribe(client, receiver, "product.created")
    account.create_products(1)
    account.create_products(1)  # the queue is not read until this test yields
    calls = await settle(client)
    assert sorted(call["outcome"] for call in calls) == ["delivered", "overflow"]
    assert (await client.ok("GET", "/hints"))["counts"] == {"delivered": 1, "overflow": 1}


@pytest.mark.parametrize("anywhere", [False, True])
async def test_relay_sandbox_calls_other_hosts_only_when_told(anywhere: bool) -> None:
    out = io.StringIO()
    task = asyncio.create_task(serve_sandbox_forever("127.0.0.1", 0, "demo", hints_to_any_host=anywhere, out=out))
    for _ in range(200):
        if out.getvalue().count("\n") >= 4:
            break
        await asyncio.sleep(0.01)
    control = dict(line.split(None, 1) for line in out.getvalue().splitlines())["control"]
    try:
        async with aiohttp.ClientSession() as http, http.get(control + "/accounts/demo/hints/policy") as reply:
            assert (await reply.json())["allow_remote"] is anywhere
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
