"""Newest-first pages over a sorted-set index, with opaque cursors that survive inserts.

Every list in the API reads an index (a ZSET of ids scored by creation time in ms), newest first. A cursor
names the last item returned, ``(score, member)``, so items created between two requests neither shift nor
repeat a page. Items with equal scores come in reverse lexicographic order of their ids, which the cursor
also respects.
"""

import base64
import binascii
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

from redis.asyncio import Redis

from subscriptions.core.errors import InvalidInput

T = TypeVar("T")

MAX_LIMIT = 1000
DEFAULT_LIMIT = 100
MAX_SCAN = 20_000  # index entries one request may look at when filters discard most of them


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


@dataclass(frozen=True)
class Position:
    score: int
    member: str

    def encode(self) -> str:
        return base64.urlsafe_b64encode(f"{self.score}:{self.member}".encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, cursor: str) -> "Position":
        try:
            text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
            score, member = text.split(":", 1)
            return cls(int(score), member)
        except (binascii.Error, UnicodeDecodeError, ValueError) as error:
            raise InvalidInput(
                "cursor is not one this API returned; pass next_cursor from the previous page"
            ) from error


def check_limit(limit: int) -> int:
    """``limit`` if within 1..1000, else :class:`InvalidInput`."""
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}, got {limit}")
    return limit


async def newest_first(
    redis: "Redis",
    index_key: str,
    *,
    limit: int,
    cursor: str | None,
    load: Callable[[Sequence[str]], Awaitable[Sequence[T | None]]],
    keep: Callable[[T], bool] | None = None,
    min_score: int | None = None,
) -> Page[T]:
    """One page of the records in ``index_key``, newest first, loaded by ``load`` and filtered by ``keep``."""
    check_limit(limit)
    after = Position.decode(cursor) if cursor else None
    max_score: int | str = after.score if after else "+inf"
    lowest: int | str = min_score if min_score is not None else "-inf"
    chunk_size = min(max(limit + 1, 100), MAX_LIMIT + 1)
    found: list[tuple[Position, T]] = []
    last_scanned: Position | None = None
    offset = 0
    exhausted = False
    while len(found) <= limit and offset < MAX_SCAN:
        chunk = cast(
            list[tuple[Any, float]],
            await redis.zrevrangebyscore(index_key, max_score, lowest, start=offset, num=chunk_size, withscores=True),
        )
        offset += len(chunk)
        positions = [Position(int(score), _text(member)) for member, score in chunk]
        if after is not None:
            positions = [p for p in positions if p.score < after.score or p.member < after.member]
        records = await load([p.member for p in positions]) if positions else []
        for position, record in zip(positions, records, strict=True):
            last_scanned = position
            if record is not None and (keep is None or keep(record)):
                found.append((position, record))
                if len(found) > limit:
                    break
        if len(chunk) < chunk_size:
            exhausted = True
            break
    if len(found) > limit:
        return Page([record for _, record in found[:limit]], found[limit - 1][0].encode())
    items = [record for _, record in found]
    if exhausted or last_scanned is None:
        return Page(items, None)
    # looked at as many entries as one request may: the caller goes on from here
    return Page(items, last_scanned.encode())


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value
