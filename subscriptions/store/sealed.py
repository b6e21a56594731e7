"""Records stored as JSON in Redis, some of their fields encrypted at rest: reading them, and encrypting them
again under the first key of ``RELAY_ENCRYPTION_KEY`` (``RecordStore``, the base of the account and subscription
stores)."""

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

from pydantic import BaseModel
from redis.asyncio import Redis
from redis.exceptions import WatchError

from subscriptions.core.crypto import TokenCipher, TokenKeyError
from subscriptions.core.errors import NotFound

RecordT = TypeVar("RecordT", bound=BaseModel)
RESEAL_CHUNK = 500  # records read a command while looking for values to re-encrypt


@dataclass(frozen=True)
class Sealed(Generic[RecordT]):
    """A kind of record with fields encrypted at rest: where its records are, and how to open and seal one."""

    index: str  # ZSET of the ids of every record of the kind
    key_of: Callable[[str], str]
    model: type[RecordT]
    stored_values: Callable[[RecordT], list[str | None]]  # its encrypted fields, as stored
    open: Callable[[RecordT], RecordT]  # a record just read, decrypted (perhaps in place); TokenKeyError if it cannot
    to_json: Callable[[RecordT], str]  # an opened record's stored JSON, its fields encrypted under the first key


class RecordStore:
    """Records over one Redis connection pool (``decode_responses=True``), with the cipher of their sealed fields."""

    def __init__(self, redis: "Redis", cipher: TokenCipher | None = None) -> None:
        self.redis = redis
        self.cipher = cipher  # encrypts tokens and signing secrets at rest; None: stored as they are

    async def _load(self, model: type[RecordT], key_of: Any, ids: Sequence[str]) -> list[RecordT | None]:
        if not ids:
            return []
        raw = cast(list[str | None], await self.redis.mget([key_of(i) for i in ids]))
        return [model.model_validate_json(text) if text else None for text in raw]

    async def _get(self, model: type[RecordT], key: str, what: str) -> RecordT:
        text = cast(str | None, await self.redis.get(key))
        if text is None:
            raise NotFound(f"{what} does not exist")
        return model.model_validate_json(text)

    async def _reseal(self, kind: Sealed[RecordT]) -> tuple[int, list[str]]:
        """Encrypt again, under the first key, every record of ``kind`` with a field stored in plain text or
        under an older key; answer how many were re-encrypted and the ids of those the keys cannot decrypt.

        Records are read in chunks, and only those that need it are rewritten, each in a transaction that
        watches it: a record saved meanwhile (by a process that encrypts with its own first key) is left alone.
        """
        resealed = 0
        unreadable: list[str] = []
        ids = await cast(Awaitable[list[str]], self.redis.zrange(kind.index, 0, -1))
        for start in range(0, len(ids), RESEAL_CHUNK):
            chunk = ids[start : start + RESEAL_CHUNK]
            for record_id, stored in zip(chunk, await self._load(kind.model, kind.key_of, chunk), strict=True):
                if stored is None:
                    continue
                stale = self._stale(kind.stored_values(stored))  # (before opening: it may open in place)
                try:
                    kind.open(stored)
                except TokenKeyError:
                    unreadable.append(record_id)
                    continue
                if stale and await self._reseal_one(kind, record_id):
                    resealed += 1
        return resealed, unreadable

    def _stale(self, stored_values: list[str | None]) -> bool:
        """Whether any of these stored values is not encrypted under the first key (never, without a key)."""
        cipher = self.cipher
        return cipher is not None and any(v is not None and not cipher.is_current(v) for v in stored_values)

    async def _reseal_one(self, kind: Sealed[RecordT], record_id: str) -> bool:
        key = kind.key_of(record_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            await pipe.watch(key)
            text = cast(str | None, await pipe.get(key))
            if text is None:
                return False
            stored = kind.model.model_validate_json(text)
            if not self._stale(kind.stored_values(stored)):
                return False  # re-encrypted meanwhile by another process starting
            try:
                opened = kind.open(stored)
            except TokenKeyError:
                return False  # saved meanwhile under a key this process lacks: the next start reports it
            pipe.multi()  # type: ignore[no-untyped-call]
            pipe.set(key, kind.to_json(opened), xx=True)
            try:
                await pipe.execute()
            except WatchError:
                return False  # saved meanwhile, by a process that encrypts with its own key
        return True
