"""Records as the relay last saw them, so that a change can say what each field was before.

A snapshot is the record's JSON, compressed (the README says what it costs per record). Writes are queued on
the poll's commit transaction, so a snapshot never runs ahead of the events derived from it. A snapshot may
expire (a closed order after a quiet spell): a later change to that record then reports ``changes: null``, as
for a record that existed before the account was registered and has not changed since.
"""

import base64
import json
import zlib
from collections.abc import Sequence
from typing import Any, cast

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from subscriptions.store import keyspace
from workers.stream import Write


def pack(record: dict[str, Any]) -> str:
    """Compressed JSON as base64 text (the relay's Redis connection speaks text)."""
    return base64.b64encode(zlib.compress(json.dumps(record, separators=(",", ":")).encode(), 6)).decode()


def unpack(text: str) -> dict[str, Any]:
    return cast(dict[str, Any], json.loads(zlib.decompress(base64.b64decode(text))))


class Snapshots:
    """The snapshots of one resource of one account."""

    def __init__(self, redis: "Redis", account: str, resource: str) -> None:
        self.redis = redis
        self.account = account
        self.resource = resource

    def key(self, record_id: int) -> str:
        return keyspace.snapshot(self.account, self.resource, record_id)

    async def load(self, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        """The snapshots that exist among ``ids``."""
        if not ids:
            return {}
        raw = cast(list[str | None], await self.redis.mget([self.key(i) for i in ids]))
        return {i: unpack(text) for i, text in zip(ids, raw, strict=True) if text is not None}

    def write(self, record_id: int, record: dict[str, Any], ttl_s: int | None) -> Write:
        text = pack(record)

        def apply(pipe: Pipeline) -> None:
            pipe.set(self.key(record_id), text, ex=ttl_s)

        return apply
