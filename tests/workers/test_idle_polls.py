"""An idle account spends its budget on its searches alone: a second is closed by Brightpearl's own clock (the
``Date`` on every answer), so the newest records are not read again on every poll, and their products' stock is
not read either. Brightpearl's clock is the sandbox account's, stepped by hand."""

from collections import Counter
from datetime import UTC, datetime, timedelta

from tests.harness import Harness
from workers.brightpearl.client import BrightpearlClient, Credentials

ALL = ("orders", "stock", "goods-out-notes", "products", "contacts")
START = datetime(2026, 11, 26, 10, 0, 0, tzinfo=UTC)
SEARCHES = {
    "order-service/order-search",
    "product-service/product-search",
    "contact-service/contact-search",
    "warehouse-service/goods-movement-search",
    "warehouse-service/goods-note/goods-out-search",
}


class Clock:
    """The sandbox account's clock, moved by the test."""

    def __init__(self, harness: Harness, at: datetime = START) -> None:
        self.at = at
        harness.sandbox.account().clock = lambda: self.at

    def step(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)


async def requests_of_polls(harness: Harness, clock: Clock, polls: int, *, every_s: float = 2.0) -> Counter[str]:
    """The requests, by route, that ``polls`` polls make, Brightpearl's clock moving ``every_s`` between them."""
    await harness.sandbox_call("DELETE", "/requests")
    for _ in range(polls):
        clock.step(every_s)
        await harness.poll()
    return Counter((await harness.sandbox_call("GET", "/requests"))["by_route"])


async def a_changed_account(harness: Harness, clock: Clock) -> int:
    """All five resources watched; an order on a product, a contact and products made, then the order's status
    changed: the order and its product are the account's newest records. The order's id."""
    await harness.register(resources=ALL)
    (product,) = (await harness.sandbox_call("POST", "/products", {"count": 1}))["ids"]
    await harness.sandbox_call("POST", "/contacts", {"count": 1})
    (order,) = await harness.create_orders(1, rows=[{"product_id": product}])
    clock.step(1.2)
    await harness.poll()
    clock.step(0.3)
    await harness.sandbox_call("PUT", f"/orders/{order}/status", {"status_id": 4})
    await harness.poll()
    return order


async def test_an_idle_account_makes_only_its_searches(harness: Harness) -> None:
    clock = Clock(harness)
    await a_changed_account(harness, clock)
    await requests_of_polls(harness, clock, 2)  # the change settles: read once more after its second is over
    served = await requests_of_polls(harness, clock, 4)
    assert set(served) <= SEARCHES, served  # no order, product or contact read again, no product-availability
    assert served["order-service/order-search"] == 4 * 2  # created and updated streams, nothing more


async def test_a_change_within_the_second_of_the_one_before_is_still_caught(harness: Harness) -> None:
    """The order changes twice within one second; the poll between them reads the first. Brightpearl's clock
    had not passed that second, so the order is read again once it has, and the second change is reported."""
    clock = Clock(harness)
    order = await a_changed_account(harness, clock)  # status 4 at 10:00:01.5, read while it was 10:00:01
    clock.step(0.4)
    await harness.sandbox_call("PUT", f"/orders/{order}/status", {"status_id": 5})  # the same second
    await requests_of_polls(harness, clock, 2)
    statuses = [
        body["data"]["changes"]["orderStatus"]["after"]["orderStatusId"]
        for body in await harness.bodies("order.modified.order-status")
    ]
    assert statuses == [4, 5]
    served = await requests_of_polls(harness, clock, 3)
    assert set(served) <= SEARCHES, served  # and then the account is idle again


async def test_a_record_read_after_brightpearls_clock_passed_its_second_is_not_read_again(harness: Harness) -> None:
    clock = Clock(harness)
    await harness.register(resources=("orders",))
    (order,) = await harness.create_orders(1)
    await harness.poll()
    await harness.sandbox_call("PUT", f"/orders/{order}/status", {"status_id": 4})
    clock.step(5)  # the poll comes seconds after the change: what it reads is final
    await harness.poll()
    served = await requests_of_polls(harness, clock, 3)
    assert served == {"order-service/order-search": 6}
    assert len(await harness.bodies("order.modified.order-status")) == 1


async def test_without_a_date_header_the_newest_records_are_read_again_as_before(harness: Harness) -> None:
    """Answers without ``Date`` (a proxy stripped it) say nothing of Brightpearl's clock: the newest order stays
    open and is read again at every poll, and a second change within its second is still caught."""
    clock = Clock(harness)
    await harness.sandbox_call("PATCH", "", {"sends_date": False})
    order = await a_changed_account(harness, clock)  # status 4 at 10:00:01.5
    clock.step(0.3)
    await harness.sandbox_call("PUT", f"/orders/{order}/status", {"status_id": 5})  # the same stamp as status 4
    served = await requests_of_polls(harness, clock, 3)
    assert served["order-service/order/{ids}"] == 3  # read again at every poll, as before
    # the first re-read found the second change; the later ones found the order as it was, and left its stock be
    assert served["warehouse-service/product-availability/{ids}"] == 1, served
    statuses = [
        body["data"]["changes"]["orderStatus"]["after"]["orderStatusId"]
        for body in await harness.bodies("order.modified.order-status")
    ]
    assert statuses == [4, 5]


async def test_the_sandbox_dates_answers_by_the_accounts_clock_or_not_at_all(harness: Harness) -> None:
    """The client reads Brightpearl's clock from every answer; the sandbox's is the account's (skew included)."""
    clock = Clock(harness, START + timedelta(seconds=90.7))
    account = harness.sandbox.account()
    credentials = Credentials(harness.sandbox.base_url(), account.app_ref, account.account_token)
    client = BrightpearlClient(harness.http, credentials)
    await client.get("order-service/order-status")
    assert client.rate.server_time == datetime(2026, 11, 26, 10, 1, 30, tzinfo=UTC)
    await harness.sandbox_call("PATCH", "", {"clock_skew_s": -20})
    clock.step(1)
    await client.get("order-service/order-status")
    assert client.rate.server_time == datetime(2026, 11, 26, 10, 1, 11, tzinfo=UTC)
    shown = await harness.sandbox_call("PATCH", "", {"sends_date": False})
    assert shown["sends_date"] is False
    await client.get("order-service/order-status")
    assert client.rate.server_time is None


async def test_a_second_passed_again_after_the_clock_stepped_back_is_read_again(harness: Harness) -> None:
    """An order read after Brightpearl's clock passed its second is closed; then the clock steps back 20 s (an
    NTP correction) and passes that second again, and the order changes within it, keeping its stamp. The
    ``Date`` shows the step: what the clock has not passed again is read again, so the change is still caught."""
    clock = Clock(harness, START + timedelta(seconds=28))
    await harness.register(resources=("orders",))
    (order,) = await harness.create_orders(1)
    await harness.poll()
    clock.step(2.2)
    await harness.sandbox_call("PUT", f"/orders/{order}/status", {"status_id": 4})  # updatedOn 10:00:30
    clock.step(3)
    await harness.poll()  # read at 10:00:33: final for 10:00:30, closed
    assert (await requests_of_polls(harness, clock, 1, every_s=1)) == {"order-service/order-search": 2}
    clock.at = START + timedelta(seconds=14)  # stepped back
    await harness.poll()
    clock.at = START + timedelta(seconds=30, milliseconds=500)  # 10:00:30 again
    await harness.sandbox_call("PUT", f"/orders/{order}/status", {"status_id": 5})  # updatedOn 10:00:30 again
    clock.step(4)
    await harness.poll()
    statuses = [
        body["data"]["changes"]["orderStatus"]["after"]["orderStatusId"]
        for body in await harness.bodies("order.modified.order-status")
    ]
    assert statuses == [4, 5]
