"""A shop's back office happening in the sandbox, for the demo: orders, stock, goods-out notes through their stages,
products and contacts made and changed, through the sandbox's control API."""

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

STAGES = ("printed", "picked", "packed", "shipped")
# the opening act's note: each stage reached, undone and reached again (a new event, under a new id), then shipped
NOTE_WALK = (
    ("stage", "printed"),
    ("unstage", "printed"),
    ("stage", "printed"),
    ("stage", "picked"),
    ("unstage", "picked"),
    ("stage", "picked"),
    ("stage", "packed"),
    ("unstage", "packed"),
    ("stage", "packed"),
    ("stage", "shipped"),
)
WAREHOUSE_ID = 2  # the sandbox account's first warehouse, where the catalogue's stock is
INVOICED, NEW_WEB_ORDER = 4, 2  # sales order statuses of the sandbox


async def call(
    session: aiohttp.ClientSession, method: str, url: str, token: str | None = None, body: Any = None
) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with session.request(method, url, json=body, headers=headers) as response:
        payload = await response.json(content_type=None)
        if response.status >= 400:
            raise RuntimeError(f"{method} {url} answered {response.status}: {payload}")
        return payload


async def pause(stop: asyncio.Event, seconds: float) -> None:
    """Wait ``seconds``, or less if ``stop`` is set."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


class BackOffice:
    """What a shop's back office does, in the sandbox, through its control API (``control``: the account's URL
    under ``/_sandbox``): orders (some in bursts sharing one timestamp, allocating stock), status and reference
    changes, goods received, goods-out notes printed, picked, packed and shipped, products and contacts made and
    edited."""

    def __init__(self, session: aiohttp.ClientSession, control: str, rng: random.Random, products: list[int]) -> None:
        self.session = session
        self.control = control
        self.rng = rng
        self.products = products  # the catalogue's, with stock
        self.orders: list[int] = []
        self.without_note: list[int] = []  # orders with no goods-out note yet
        self.notes: dict[int, int] = {}  # open goods-out note -> index of its next stage
        self.contacts: list[int] = []
        self.new_products: list[int] = []

    async def act(self, method: str, path: str, body: Any = None) -> Any:
        """One change; None when the sandbox refuses it (say, more stock allocated than there is)."""
        with contextlib.suppress(RuntimeError):
            return await call(self.session, method, f"{self.control}{path}", body=body)
        return None

    async def new_orders(self, count: int, quantity: int) -> list[int]:
        rows = [{"product_id": self.rng.choice(self.products), "quantity": quantity}]
        created = await self.act("POST", "/orders", {"count": count, "rows": rows, "allocate": True})
        ids: list[int] = created["ids"] if created else []
        self.orders += ids
        self.without_note += ids
        return ids

    async def new_note(self, order_id: int) -> int | None:
        with contextlib.suppress(ValueError):
            self.without_note.remove(order_id)
        note = await self.act("POST", f"/orders/{order_id}/goods-out-notes")
        if note is None:
            return None
        self.notes[note["id"]] = 0
        return int(note["id"])

    async def next_stage(self, note_id: int, *, straight_to_shipped: bool = False) -> None:
        stage = len(STAGES) - 1 if straight_to_shipped else self.notes[note_id]
        await self.act("POST", f"/goods-out-notes/{note_id}/stage", {"stage": STAGES[stage]})
        if stage == len(STAGES) - 1:
            del self.notes[note_id]
        else:
            self.notes[note_id] = stage + 1

    async def new_contact(self, first_name: str | None = None, last_name: str = "Customer") -> int | None:
        body: dict[str, Any] = {"count": 1, "last_name": last_name} | ({"first_name": first_name} if first_name else {})
        created = await self.act("POST", "/contacts", body)
        if created is None:
            return None
        self.contacts += created["ids"]
        return int(created["ids"][0])

    async def new_product(self, name: str) -> int | None:
        created = await self.act("POST", "/products", {"count": 1, "name": name})
        if created is None:
            return None
        self.new_products += created["ids"]
        return int(created["ids"][0])

    async def receive(self, product_id: int, quantity: int) -> None:
        body = {"product_id": product_id, "warehouse_id": WAREHOUSE_ID, "quantity": quantity}
        await self.act("POST", "/stock/receive", body)

    async def opening_act(self, stop: asyncio.Event, seen: Callable[[str, int], Awaitable[None]]) -> None:
        """Every kind of event once, early in the run, whatever the random activity later does: a product, a
        customer and an order appear (and goods arrive); once the relay has seen them, each changes, and the
        order's goods-out note goes through every stage, back and forth, while another note is edited and deleted.
        ``seen(event_type, n)`` waits until ``n`` of that event arrived:
        what changes before its ``created`` was polled would be part of that ``created``, not a change."""
        product = await self.new_product("Demo hoodie")
        contact = await self.new_contact("Ada", "Lovelace")
        orders = await self.new_orders(2, 2)
        await self.receive(self.products[0], 12)
        await asyncio.gather(*(seen(kind, 1) for kind in ("product.created", "contact.created", "order.created")))
        if stop.is_set():
            return
        if product is not None:
            await self.act("PATCH", f"/products/{product}", {"name": "Demo hoodie, navy"})
        if contact is not None:
            await self.act("PATCH", f"/contacts/{contact}", {"last_name": "King"})
        if len(orders) < 2:
            return
        order, other = orders
        await self.act("PUT", f"/orders/{order}/status", {"status_id": INVOICED})
        await pause(stop, 1.0)
        await self.act("PATCH", f"/orders/{order}", {"reference": "PO-1843"})
        note, spare = await self.new_note(order), await self.new_note(other)
        await seen("goods-out-note.created", 2)  # a note changed before the relay saw it would just be created so
        await asyncio.gather(self._walk(note, stop), self._edit_then_delete(spare, stop, seen))

    async def _walk(self, note: int | None, stop: asyncio.Event) -> None:
        """A note's stages reached, undone and reached again, half a second apart, then shipped."""
        for action, stage in NOTE_WALK if note is not None else ():
            if stop.is_set():
                return
            await self.act("POST", f"/goods-out-notes/{note}/{action}", {"stage": stage})
            await pause(stop, 0.5)
        self.notes.pop(note or 0, None)

    async def _edit_then_delete(
        self, note: int | None, stop: asyncio.Event, seen: Callable[[str, int], Awaitable[None]]
    ) -> None:
        """A note given priority and a box count, then, once that edit was seen, deleted."""
        if note is None or stop.is_set():
            return
        await self.act("PATCH", f"/goods-out-notes/{note}", {"priority": True, "boxes": 2})
        await seen("goods-out-note.modified", 1)
        self.notes.pop(note, None)
        if not stop.is_set():
            await self.act("DELETE", f"/goods-out-notes/{note}")

    async def random_step(self) -> None:
        """One thing a back office might do next."""
        rng = self.rng
        choice = rng.random()
        if choice < 0.30 or not self.orders:
            await self.new_orders(rng.choice([1, 1, 2, 3]), rng.randint(1, 3))
        elif choice < 0.40:
            status = rng.choice([NEW_WEB_ORDER, INVOICED])
            await self.act("PUT", f"/orders/{rng.choice(self.orders)}/status", {"status_id": status})
        elif choice < 0.46:
            await self.act("PATCH", f"/orders/{rng.choice(self.orders)}", {"reference": f"PO-{rng.randint(1, 9999)}"})
        elif choice < 0.58:
            await self.receive(rng.choice(self.products), rng.randint(5, 20))
        elif choice < 0.70 and self.without_note:
            await self.new_note(rng.choice(self.without_note))
        elif choice < 0.86 and self.notes:
            await self.next_stage(rng.choice(list(self.notes)), straight_to_shipped=rng.random() < 0.2)
        elif choice < 0.91:
            await self.act(
                "PATCH",
                f"/products/{rng.choice(self.products + self.new_products)}",
                {"name": f"Shirt, batch {rng.randint(1, 99)}"},
            )
        elif choice < 0.94:
            await self.new_product(f"Scarf, colour {rng.randint(1, 99)}")
        elif choice < 0.97 or not self.contacts:
            await self.new_contact()
        else:
            await self.act(
                "PATCH", f"/contacts/{rng.choice(self.contacts)}", {"telephone": f"0{rng.randint(10**9, 10**10 - 1)}"}
            )

    async def run(self, stop: asyncio.Event, seen: Callable[[str, int], Awaitable[None]]) -> int:
        """The opening act, then random activity until ``stop``; returns how many orders it made."""
        await self.opening_act(stop, seen)
        while not stop.is_set():
            await self.random_step()
            await pause(stop, self.rng.uniform(0.8, 1.6))
        return len(self.orders)
