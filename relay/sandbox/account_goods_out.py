"""A sandbox account's goods-out notes: making one for a sales order (allocating the order first if need be),
taking it through its stages and back, editing and deleting it; shipping logs goods movements, takes the goods
out of allocated stock and changes the order's shipping status."""

from relay.sandbox.account_errors import OrderStateConflict, UnknownGoodsOutNote
from relay.sandbox.account_orders import AccountOrders
from relay.sandbox.account_products import ON_HAND_MODIFIED
from relay.sandbox.goods_out import GoodsOutNote, NoteLine, NoteShipped, ShippingChange, Stage
from relay.sandbox.orders import whole_second
from relay.sandbox.stock import GoodsMovement


class AccountGoodsOut(AccountOrders):
    """What an account does with goods-out notes: where notes, orders and stock meet."""

    def goods_out_note(self, note_id: int) -> GoodsOutNote:
        """The goods-out note with this id; :class:`UnknownGoodsOutNote` if there is none."""
        try:
            return self.goods_out_notes[note_id]
        except KeyError:
            raise UnknownGoodsOutNote(f"goods-out note {note_id} does not exist in account {self.code}") from None

    def _next_event_version(self) -> int:
        self._event_version += 1
        return self._event_version

    def create_goods_out_note(self, order_id: int) -> GoodsOutNote:
        """A goods-out note for a sales order's stock-tracked rows not yet on one, allocating the order first if it
        is not (a new order version then); the note starts with a ``PLA`` event."""
        order = self.order(order_id)
        if order.order_type != "SO":
            raise OrderStateConflict(f"order {order_id} is a {order.order_type}; only sales orders are shipped")
        rows = [row for row in order.stock_rows if row.id not in order.noted_row_ids]
        if not rows:
            raise OrderStateConflict(f"order {order_id} has no stock-tracked rows left to put on a goods-out note")
        if not order.allocated:
            self.allocate_order(order_id)
        now = whole_second(self.now())
        note = GoodsOutNote(
            id=self._new_goods_note_id(),
            order_id=order.id,
            warehouse_id=order.warehouse_id,
            created_on=now,
            # The recorded note's location id is its warehouse's; the sandbox keeps one location per warehouse.
            lines=tuple(NoteLine(row.id, row.product_id, row.quantity, order.warehouse_id) for row in rows),
            sequence=1 + sum(1 for other in self.goods_out_notes.values() if other.order_id == order.id),
            last_event_version=self._next_event_version(),
        )
        self.goods_out_notes[note.id] = note
        order.noted_row_ids.update(row.id for row in rows)
        self._hint("goods-out-note.created", [note.id])
        return note

    def set_note_stage(self, note_id: int, stage: Stage) -> tuple[GoodsOutNote, list[GoodsMovement]]:
        """Take a note to ``stage``. Shipping (which sets the earlier stages still missing) logs a ``GO`` movement
        per line, takes the goods out of allocated stock and changes the order's shipping status."""
        note = self.goods_out_note(note_id)
        now = whole_second(self.now())
        newly_set = note.set_stage(stage, now, self._next_event_version)
        for reached in newly_set:
            self._hint(f"goods-out-note.modified.{reached.value}", [note_id])
        if Stage.SHIPPED not in newly_set:
            return note, []
        movements = [
            self.stock.ship(line.product_id, note.warehouse_id, line.quantity, note.id, now) for line in note.lines
        ]
        self.order(note.order_id).mark_shipped((line.row_id for line in note.lines), now)
        self._hint(ON_HAND_MODIFIED, (line.product_id for line in note.lines))
        self._hint("order.modified", [note.order_id])
        return note, movements

    def unset_note_stage(self, note_id: int, stage: Stage) -> GoodsOutNote:
        """Undo a stage of a note not shipped yet (``UPR``, ``UPI`` or ``UPA`` logged); it can be reached again."""
        note = self.goods_out_note(note_id)
        note.unset_stage(stage, whole_second(self.now()), self._next_event_version)
        self._hint(f"goods-out-note.modified.un-{stage.value}", [note_id])
        return note

    def edit_goods_out_note(
        self, note_id: int, *, priority: bool | None = None, shipping: ShippingChange | None = None
    ) -> GoodsOutNote:
        """Change a note's priority or shipping details (what Brightpearl's ``goods-out-note.modified`` names)."""
        note = self.goods_out_note(note_id)
        note.edit(priority=priority, shipping=shipping)
        self._hint("goods-out-note.modified", [note_id])
        return note

    def delete_goods_out_note(self, note_id: int) -> None:
        """Delete a note not shipped yet: GETs and searches no longer show it, and its order's rows may go on a
        new note. (A shipped note has moved stock; the sandbox does not take that back.)"""
        note = self.goods_out_note(note_id)
        if note.shipped:
            raise NoteShipped(f"goods-out note {note_id} has shipped; the sandbox does not delete shipped notes")
        del self.goods_out_notes[note_id]
        self.order(note.order_id).noted_row_ids.difference_update(line.row_id for line in note.lines)
        self._hint("goods-out-note.destroyed", [note_id])
