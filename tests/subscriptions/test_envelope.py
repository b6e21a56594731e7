"""The one event builder: ids, timestamps and bodies exactly as receivers have always seen them.

Every expected id and body below was produced by the code that built events by hand in each detector and in the
API's ping, before :mod:`subscriptions.core.envelope` took the job over: an upgrade must not change them, or a
receiver would see a change detected again after the upgrade as a new one.
"""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest

from subscriptions.core.envelope import (
    NewEvent,
    build_event,
    event_body,
    format_timestamp,
    ping_event,
    resource_event,
)
from subscriptions.core.events import EVENT_TYPES

ORDER = {
    "id": 7,
    "orderStatus": {"orderStatusId": 4},
    "createdOn": "2026-11-26T04:15:02.000-06:00",
    "updatedOn": "2026-11-26T10:20:00.250Z",
    "version": 3,
    "reference": "caf\u00e9",
}
ORDER_JSON = (
    r'{"id":7,"orderStatus":{"orderStatusId":4},"createdOn":"2026-11-26T04:15:02.000-06:00",'
    r'"updatedOn":"2026-11-26T10:20:00.250Z","version":3,"reference":"caf\u00e9"}'
)
NOTE = {
    "createdOn": "2026-11-26T09:00:00.000+00:00",
    "status": {"printed": True, "printedOn": "2026-11-26T09:30:00.500+00:00", "picked": "true", "pickedOn": None},
}
NOTE_JSON = (
    '{"createdOn":"2026-11-26T09:00:00.000+00:00",'
    '"status":{"printed":true,"printedOn":"2026-11-26T09:30:00.500+00:00","picked":"true","pickedOn":null}}'
)
FIGURES = {"total": {"onHand": 5}, "warehouses": {"2": {"onHand": 5}}}
FIGURES_JSON = '{"total":{"onHand":5},"warehouses":{"2":{"onHand":5}}}'
AT = datetime(2026, 11, 26, 10, 15, 2, tzinfo=UTC)
AT_MS = datetime(2026, 11, 26, 10, 15, 2, 970_000, tzinfo=UTC)
STOCK = "product.modified.on-hand-modified"


def _header(account: str, kind: str, resource_id: int, lifecycle: str, full: str) -> str:
    return (
        f'"data":{{"accountCode":"{account}","resourceType":"{kind}","id":{resource_id},'
        f'"lifecycleEvent":"{lifecycle}","fullEvent":"{full}"'
    )


# (name, builder call, id, type, account, resource id, timestamp, body)
CASES: list[tuple[str, Callable[[], NewEvent], str, str, str, int | None, str, str]] = [
    (
        "order created",
        lambda: resource_event("acme", "order.created", 7, ORDER, AT),
        "evt_z66y3d076czwmbezczqg5tj67a",
        "order.created",
        "acme",
        7,
        "2026-11-26T10:15:02Z",
        '{"type":"order.created","timestamp":"2026-11-26T10:15:02Z",'
        + _header("acme", "order", 7, "created", "order.created")
        + f',"resource":{ORDER_JSON}}}}}',
    ),
    (
        "order status changed",
        lambda: resource_event(
            "acme",
            "order.modified.order-status",
            7,
            ORDER,
            datetime(2026, 11, 26, 10, 20, 0, 250_000, tzinfo=UTC),
            state_after={"state": 3},
            more={"changes": {"orderStatus": {"before": {"orderStatusId": 2}, "after": {"orderStatusId": 4}}}},
        ),
        "evt_f0z4bjemps9v7rkss772vem84y",
        "order.modified.order-status",
        "acme",
        7,
        "2026-11-26T10:20:00.250Z",
        '{"type":"order.modified.order-status","timestamp":"2026-11-26T10:20:00.250Z",'
        + _header("acme", "order", 7, "modified", "order.modified.order-status")
        + f',"resource":{ORDER_JSON},'
        + '"changes":{"orderStatus":{"before":{"orderStatusId":2},"after":{"orderStatusId":4}}}}}',
    ),
    (
        "modified with no earlier state: changes null",
        lambda: resource_event(
            "acme",
            "order.modified",
            7,
            ORDER,
            datetime(2026, 11, 26, 10, 20, 0, 250_000, tzinfo=UTC),
            state_after={"state": 3},
            more={"changes": None},
        ),
        "evt_7rqjdw6j9hvtt7me0r686ps8vk",
        "order.modified",
        "acme",
        7,
        "2026-11-26T10:20:00.250Z",
        '{"type":"order.modified","timestamp":"2026-11-26T10:20:00.250Z",'
        + _header("acme", "order", 7, "modified", "order.modified")
        + f',"resource":{ORDER_JSON},"changes":null}}}}',
    ),
    (
        "contact created, in another offset",
        lambda: resource_event(
            "beta",
            "contact.created",
            205,
            {"contactId": 205, "createdOn": "2026-11-26T10:15:02+01:00", "updatedOn": None, "firstName": "Ann"},
            datetime(2026, 11, 26, 10, 15, 2, tzinfo=timezone(timedelta(hours=1))),
        ),
        "evt_dsqc66qczk6pkbvnx726zqr4de",
        "contact.created",
        "beta",
        205,
        "2026-11-26T09:15:02Z",
        '{"type":"contact.created","timestamp":"2026-11-26T09:15:02Z",'
        + _header("beta", "contact", 205, "created", "contact.created")
        + ',"resource":{"contactId":205,"createdOn":"2026-11-26T10:15:02+01:00","updatedOn":null,'
        + '"firstName":"Ann"}}}',
    ),
    (
        "goods-out note created",
        lambda: resource_event("acme", "goods-out-note.created", 31, NOTE, datetime(2026, 11, 26, 9, tzinfo=UTC)),
        "evt_dgb9786jfjp3rnq04t3e07rn8v",
        "goods-out-note.created",
        "acme",
        31,
        "2026-11-26T09:00:00Z",
        '{"type":"goods-out-note.created","timestamp":"2026-11-26T09:00:00Z",'
        + _header("acme", "goods-out-note", 31, "created", "goods-out-note.created")
        + f',"resource":{NOTE_JSON}}}}}',
    ),
    (
        "goods-out note printed",
        lambda: resource_event(
            "acme", "goods-out-note.modified.printed", 31, NOTE, datetime(2026, 11, 26, 9, 30, 0, 500_000, tzinfo=UTC)
        ),
        "evt_7een9sjd5nd5wnng3ch4y2t2b9",
        "goods-out-note.modified.printed",
        "acme",
        31,
        "2026-11-26T09:30:00.500Z",
        '{"type":"goods-out-note.modified.printed","timestamp":"2026-11-26T09:30:00.500Z",'
        + _header("acme", "goods-out-note", 31, "modified", "goods-out-note.modified.printed")
        + f',"resource":{NOTE_JSON}}}}}',
    ),
    (
        "stock figures first seen",
        lambda: resource_event(
            "acme",
            STOCK,
            44,
            FIGURES,
            AT_MS,
            state_after={"after": FIGURES, "change": 1},
            more={"before": None, "after": FIGURES},
        ),
        "evt_ecmq35c2qpggaec3fv27kvpbc4",
        STOCK,
        "acme",
        44,
        "2026-11-26T10:15:02.970Z",
        f'{{"type":"{STOCK}","timestamp":"2026-11-26T10:15:02.970Z",'
        + _header("acme", "product", 44, "modified", STOCK)
        + f',"resource":{FIGURES_JSON},"before":null,"after":{FIGURES_JSON}}}}}',
    ),
    (
        "stock figures moving again",
        lambda: resource_event(
            "acme",
            STOCK,
            44,
            FIGURES,
            AT,
            state_after={"change": 2, "after": FIGURES},  # key order does not matter
            more={"before": {"total": {"onHand": 4}}, "after": FIGURES},
        ),
        "evt_r1ejtssee77g3e0xakpykdj1hj",
        STOCK,
        "acme",
        44,
        "2026-11-26T10:15:02Z",
        f'{{"type":"{STOCK}","timestamp":"2026-11-26T10:15:02Z",'
        + _header("acme", "product", 44, "modified", STOCK)
        + f',"resource":{FIGURES_JSON},"before":{{"total":{{"onHand":4}}}},"after":{FIGURES_JSON}}}}}',
    ),
    (
        "ping, stamped to the second",
        lambda: ping_event("acme", "sub_acme", AT_MS, "evt_random"),
        "evt_random",
        "ping",
        "acme",
        None,
        "2026-11-26T10:15:02Z",
        '{"type":"ping","timestamp":"2026-11-26T10:15:02Z","data":{"accountCode":"acme","subscription":"sub_acme",'
        '"message":"a test webhook from the relay"}}',
    ),
]


@pytest.mark.parametrize(
    ("make", "event_id", "event_type", "account", "resource_id", "timestamp", "body"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_events_are_built_as_they_always_were(
    make: Callable[[], NewEvent],
    event_id: str,
    event_type: str,
    account: str,
    resource_id: int | None,
    timestamp: str,
    body: str,
) -> None:
    event = make()
    assert event == NewEvent(event_id, event_type, account, resource_id, timestamp, body)
    assert make() == event  # the same change built twice is the same event


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (datetime(2026, 11, 26, 10, 15, 2, tzinfo=UTC), "2026-11-26T10:15:02Z"),
        (datetime(2026, 11, 26, 10, 15, 2, 970_000, tzinfo=UTC), "2026-11-26T10:15:02.970Z"),
        (datetime(2026, 11, 26, 10, 15, 2, 999, tzinfo=UTC), "2026-11-26T10:15:02.000Z"),  # microseconds dropped
        (datetime(2026, 11, 26, 4, 15, 2, tzinfo=timezone(timedelta(hours=-6))), "2026-11-26T10:15:02Z"),
        (datetime(2026, 11, 27, 0, 30, tzinfo=timezone(timedelta(hours=11))), "2026-11-26T13:30:00Z"),
    ],
)
def test_timestamps_are_utc_with_milliseconds_only_when_any(value: datetime, text: str) -> None:
    assert format_timestamp(value) == text


def test_the_body_is_compact_json_in_a_fixed_order() -> None:
    assert event_body("ping", "t", {"b": 1, "a": [1, 2]}) == '{"type":"ping","timestamp":"t","data":{"b":1,"a":[1,2]}}'


def test_two_states_after_give_two_ids() -> None:
    def stock(change: int) -> NewEvent:
        return resource_event("acme", STOCK, 44, FIGURES, AT, state_after={"after": FIGURES, "change": change})

    assert stock(1).id != stock(2).id
    assert stock(1).id == stock(1).id


def test_an_event_without_the_time_it_happened_is_refused() -> None:
    """A receiver parses ``timestamp`` as the documented UTC time: an empty one would crash it (issue 14)."""
    with pytest.raises(TypeError, match="needs the time it happened"):
        resource_event("acme", "order.created", 8, {"id": 8}, None)  # type: ignore[arg-type]


def test_an_event_the_relay_does_not_send_is_refused() -> None:
    with pytest.raises(ValueError, match=r"order\.deleted"):
        resource_event("acme", "order.deleted", 7, ORDER, AT)
    with pytest.raises(ValueError, match="needs an event id"):
        build_event(account="acme", event_type="ping", resource_id=None, at=AT, data={})


@pytest.mark.parametrize("event_type", [name for name in EVENT_TYPES if name != "ping"])
def test_every_resource_event_names_its_resource_and_lifecycle(event_type: str) -> None:
    event = resource_event("acme", event_type, 1, {"id": 1}, AT)
    resource_type, lifecycle = event_type.split(".")[:2]
    prefix = f'"data":{{"accountCode":"acme","resourceType":"{resource_type}","id":1,"lifecycleEvent":"{lifecycle}"'
    assert prefix in event.body
