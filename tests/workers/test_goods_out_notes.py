"""Goods-out notes as they really live, against the sandbox and a real Redis: stages undone and reached again,
shipping that fills in stages, edits, deleted notes, many open notes, and an upgrade from the old stored format."""

import json
from typing import Any

import pytest

from subscriptions.store import keyspace
from tests.harness import Harness
from workers import goods_out
from workers.brightpearl.idset import parse_id_set
from workers.brightpearl.timestamps import parse_timestamp

GET = "warehouse-service/order/*/goods-note/goods-out/"


def types(bodies: list[dict[str, Any]]) -> list[str]:
    return [b["type"] for b in bodies]


async def new_note(harness: Harness) -> int:
    (product_id,) = (await harness.sandbox_call("POST", "/products", {"count": 1, "stock": {"2": 10}}))["ids"]
    (order_id,) = await harness.create_orders(1, rows=[{"product_id": product_id, "quantity": 1}])
    return int((await harness.sandbox_call("POST", f"/orders/{order_id}/goods-out-notes"))["id"])


async def stage(harness: Harness, note_id: int, name: str, *, undo: bool = False) -> None:
    action = "unstage" if undo else "stage"
    await harness.sandbox_call("POST", f"/goods-out-notes/{note_id}/{action}", {"stage": name})


async def event_ids(harness: Harness, event_type: str) -> list[str]:
    page = await harness.store.list_events(limit=1000, cursor=None, account="acme", type_=event_type)
    return [event.id for event in reversed(page.items)]


async def note_reads(harness: Harness) -> list[list[int]]:
    """The ids each note GET asked for since the log was last reset."""
    paths = (await harness.sandbox_call("GET", "/requests"))["by_path"]
    return [parse_id_set(path.removeprefix(GET)) for path in paths if path.startswith(GET)]


async def test_picked_unpicked_and_picked_again(harness: Harness) -> None:
    await harness.register(resources=("goods-out-notes",))
    note_id = await new_note(harness)
    await harness.poll()
    await stage(harness, note_id, "picked")
    await harness.poll()
    await stage(harness, note_id, "picked", undo=True)
    await harness.poll()
    await stage(harness, note_id, "picked")
    await harness.poll()
    await harness.poll()  # nothing more
    assert types(await harness.bodies()) == [
        "goods-out-note.created",
        "goods-out-note.modified.picked",
        "goods-out-note.modified.un-picked",
        "goods-out-note.modified.picked",
    ]
    picked = await event_ids(harness, "goods-out-note.modified.picked")
    assert len(set(picked)) == 2  # two webhook-ids: a receiver deduping on them sees both


async def test_undone_and_redone_between_two_polls(harness: Harness) -> None:
    await harness.register(resources=("goods-out-notes",))
    note_id = await new_note(harness)
    await stage(harness, note_id, "printed")
    await harness.poll()
    first = len(await harness.bodies())
    await stage(harness, note_id, "printed", undo=True)
    await stage(harness, note_id, "printed")  # the flags look as they did: only the note's log shows it
    await stage(harness, note_id, "packed")
    await harness.poll()
    # (events committed together are listed in no particular order; their order is tested in test_note_changes)
    assert sorted(types((await harness.bodies())[first:])) == [
        "goods-out-note.modified.packed",
        "goods-out-note.modified.printed",
        "goods-out-note.modified.un-printed",
    ]
    assert len(set(await event_ids(harness, "goods-out-note.modified.printed"))) == 2


async def test_shipped_without_picking_reports_every_stage_with_a_real_time(harness: Harness) -> None:
    await harness.register(resources=("goods-out-notes",))
    note_id = await new_note(harness)
    await harness.poll()
    await stage(harness, note_id, "shipped")
    await harness.poll()
    bodies = (await harness.bodies())[1:]
    assert sorted(types(bodies)) == [f"goods-out-note.modified.{s}" for s in ("packed", "picked", "printed", "shipped")]
    for body in bodies:
        assert body["timestamp"], body
        parse_timestamp(body["timestamp"])
    await stage(harness, await new_note(harness), "printed")
    await harness.poll()  # the shipped note is followed no further
    assert note_id not in {int(k) for k in json.loads(await position(harness, goods_out.OPEN_KEY))["notes"]}


async def position(harness: Harness, name: str) -> str:
    stored = await harness.store.get_position("acme", name)
    assert stored is not None
    return stored


async def test_a_deleted_note_is_destroyed_and_new_notes_are_still_seen(harness: Harness) -> None:
    await harness.register(resources=("goods-out-notes",))
    note_id = await new_note(harness)
    await harness.poll()
    await stage(harness, note_id, "printed")
    await harness.poll()
    await harness.sandbox_call("DELETE", f"/goods-out-notes/{note_id}")
    await harness.sandbox_call("DELETE", "/requests")
    await harness.poll()  # its only followed note is gone: Brightpearl answers the GET 404
    assert await note_reads(harness) == [[note_id]]
    (destroyed,) = await harness.bodies("goods-out-note.destroyed")
    assert destroyed["data"]["id"] == note_id
    assert destroyed["data"]["resource"]["status"]["printed"] is True  # the note as last seen
    assert destroyed["timestamp"]
    assert (await harness.status())["last_error"] == ""  # the poll succeeded
    newer = await new_note(harness)
    await harness.sandbox_call("DELETE", "/requests")
    await harness.poll()
    created = [b["data"]["id"] for b in await harness.bodies("goods-out-note.created")]
    assert created == [note_id, newer]
    assert all(note_id not in read for read in await note_reads(harness))  # followed no further
    await harness.poll()
    assert len(await harness.bodies("goods-out-note.destroyed")) == 1


async def test_the_404_for_notes_that_all_vanished_does_not_stop_the_lane(harness: Harness) -> None:
    await harness.register(resources=("goods-out-notes",))
    first, second = await new_note(harness), await new_note(harness)
    await harness.poll()
    for note_id in (first, second):
        await harness.sandbox_call("DELETE", f"/goods-out-notes/{note_id}")
    await harness.poll()
    assert (await harness.status())["last_error"] == ""
    newer = await new_note(harness)
    await stage(harness, newer, "printed")
    await harness.poll()
    assert sorted(b["data"]["id"] for b in await harness.bodies("goods-out-note.destroyed")) == [first, second]
    assert types(await harness.bodies())[-2:] == ["goods-out-note.created", "goods-out-note.modified.printed"]


async def test_edits_of_priority_and_shipping(harness: Harness) -> None:
    await harness.register(resources=("goods-out-notes",))
    note_id = await new_note(harness)
    await harness.poll()
    await harness.sandbox_call("PATCH", f"/goods-out-notes/{note_id}", {"priority": True})
    await harness.poll()
    await harness.sandbox_call("PATCH", f"/goods-out-notes/{note_id}", {"shipping_method_id": 7, "boxes": 2})
    await harness.poll()
    await harness.poll()
    first, second = await harness.bodies("goods-out-note.modified")
    assert first["data"]["changes"] == {"priority": {"before": False, "after": True}}
    assert second["data"]["changes"] == {
        "shipping": {
            "before": {"reference": "", "shippingMethodId": 0},
            "after": {"reference": "", "shippingMethodId": 7, "boxes": 2},
        }
    }
    assert second["data"]["resource"]["shipping"]["boxes"] == 2
    assert all(b["timestamp"] for b in (first, second))


async def test_many_open_notes_the_newest_are_read_every_poll(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(goods_out, "FOLLOW_BATCH", 2)
    await harness.register(resources=("goods-out-notes",))
    notes = [await new_note(harness) for _ in range(7)]
    await harness.poll()
    oldest, newest = notes[0], notes[-1]
    for _ in range(3):
        await harness.sandbox_call("DELETE", "/requests")
        await stage(harness, newest, "printed")
        await harness.poll()
        reads = await note_reads(harness)
        assert len(reads) == 2  # the newest two, and two older ones in rotation: a poll's cost is bounded
        assert sorted(notes[-2:]) in [sorted(read) for read in reads]
        assert (await harness.bodies())[-1]["type"] == "goods-out-note.modified.printed"
        await stage(harness, newest, "printed", undo=True)
        await harness.poll()
        assert (await harness.bodies())[-1]["type"] == "goods-out-note.modified.un-printed"
    await stage(harness, oldest, "picked")
    for _ in range(3):  # five older notes, two a poll: each read within three polls
        await harness.poll()
    assert oldest in [b["data"]["id"] for b in await harness.bodies("goods-out-note.modified.picked")]


async def test_an_upgrade_from_the_old_stored_format(harness: Harness) -> None:
    await harness.register(resources=("goods-out-notes",))
    note_id, other = await new_note(harness), await new_note(harness)
    await stage(harness, note_id, "printed")
    await harness.poll()
    before = len(await harness.bodies())
    # what the relay kept before issue 14: the number of stages each open note had reached
    old = json.dumps({str(note_id): 1, str(other): 0})
    await harness.redis.set(keyspace.position("acme", goods_out.OPEN_KEY), old)
    for followed in (note_id, other):
        await harness.redis.delete(keyspace.snapshot("acme", goods_out.SNAPSHOTS, followed))
    await harness.poll()
    assert len(await harness.bodies()) == before  # nothing sent twice
    await stage(harness, note_id, "picked")
    await stage(harness, other, "printed")
    await harness.poll()
    assert sorted((b["type"], b["data"]["id"]) for b in (await harness.bodies())[before:]) == [
        ("goods-out-note.modified.picked", note_id),
        ("goods-out-note.modified.printed", other),
    ]
    assert set(json.loads(await position(harness, goods_out.OPEN_KEY))["notes"]) == {str(note_id), str(other)}


async def test_notes_from_before_registration_are_followed_without_their_past(harness: Harness) -> None:
    shipped, printed, fresh = await new_note(harness), await new_note(harness), await new_note(harness)
    await stage(harness, shipped, "shipped")
    await stage(harness, printed, "printed")
    await harness.register(resources=("goods-out-notes",))
    followed = json.loads(await position(harness, goods_out.OPEN_KEY))["notes"]
    assert sorted(int(note_id) for note_id in followed) == sorted([printed, fresh])  # not the shipped one
    await harness.poll()
    assert await harness.bodies() == []
    await stage(harness, printed, "printed", undo=True)
    await stage(harness, fresh, "picked")
    await harness.poll()
    assert sorted((b["type"], b["data"]["id"]) for b in await harness.bodies()) == [
        ("goods-out-note.modified.picked", fresh),
        ("goods-out-note.modified.un-printed", printed),
    ]


async def test_a_quiet_poll_costs_the_search_and_one_note_get(harness: Harness) -> None:
    await harness.register(resources=("goods-out-notes",))
    await new_note(harness)
    await new_note(harness)
    await harness.poll()
    await harness.poll()  # the notes as first seen are kept
    for _ in range(2):
        await harness.sandbox_call("DELETE", "/requests")
        await harness.poll()
        requests = await harness.sandbox_call("GET", "/requests")
        assert requests["total"] == 2, requests["by_path"]
        assert len(await note_reads(harness)) == 1
