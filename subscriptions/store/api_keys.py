"""API keys scoped to one account: created by the admin, shown once, stored only as a hash.

A key is ``rk_`` + 43 URL-safe characters (256 random bits). Redis holds its SHA-256 digest, never the key:
an index from digest to key id finds the caller of a request in one lookup, whatever the number of keys.
Revoking deletes the record and the index entry in one transaction, so the very next request with the key
is refused; the dashboard sessions opened with the key go in the same transaction (and a session opened while
it ran is refused anyway: every page checks that its key still exists).
"""

import hashlib
import secrets
from collections.abc import Awaitable, Sequence
from datetime import datetime, timedelta
from typing import cast

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import WatchError

from subscriptions.core.errors import InvalidInput, NotFound
from subscriptions.core.ids import random_id
from subscriptions.core.models import Record
from subscriptions.core.times import ms
from subscriptions.store import keyspace
from subscriptions.store.paging import Page, newest_first

KEY_PREFIX = "rk_"
LAST_USED_RESOLUTION = timedelta(minutes=1)  # record use at most this often: no write on every request
WATCH_ATTEMPTS = 5  # tries at creating a key while its account keeps changing


class ApiKeyRecord(Record):
    """A key that may act on one account's objects; ``hash`` is the SHA-256 hex digest of the key."""

    id: str
    account: str
    description: str = ""
    hash: str
    created_at: datetime
    last_used_at: datetime | None = None


def key_digest(key: str) -> str:
    """The stored form of a key.

    A plain fast hash is the right choice here, unlike for passwords: the key is 256 random bits, so there
    is nothing to guess from a leaked digest and a slow hash (bcrypt, scrypt) would only add latency to
    every request without adding safety.
    """
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


class ApiKeys:
    """The API keys, over one Redis connection pool (``decode_responses=True``)."""

    def __init__(self, redis: "Redis") -> None:
        self.redis = redis

    async def create(self, account: str, description: str, now: datetime) -> tuple[ApiKeyRecord, str]:
        """A new key for ``account``: its record, and the key itself, which nothing can show again.

        Raises :class:`InvalidInput` if the account is not registered. The account's record is watched while
        the key is written, so a key cannot outlive an account deleted at the same moment.
        """
        key = new_key()
        record = ApiKeyRecord(
            id=random_id("key"), account=account, description=description, hash=key_digest(key), created_at=now
        )
        for _ in range(WATCH_ATTEMPTS):
            async with self.redis.pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(keyspace.account(account))
                    if not await pipe.exists(keyspace.account(account)):
                        break
                    pipe.multi()  # type: ignore[no-untyped-call]
                    pipe.set(keyspace.api_key(record.id), record.model_dump_json())
                    pipe.set(keyspace.api_key_hash(record.hash), record.id)
                    pipe.zadd(keyspace.API_KEYS, {record.id: ms(now)})
                    pipe.zadd(keyspace.account_api_keys(account), {record.id: ms(now)})
                    await pipe.execute()
                    return record, key
                except WatchError:
                    continue  # the account changed meanwhile (a PATCH, or its deletion): look again
        raise InvalidInput(f"account {account!r} is not registered; POST /v1/accounts first")

    async def find(self, key: str) -> ApiKeyRecord | None:
        """The record of ``key``, or None if it is not a key or has been revoked."""
        if not key.startswith(KEY_PREFIX):
            return None
        key_id = cast(str | None, await self.redis.get(keyspace.api_key_hash(key_digest(key))))
        if key_id is None:
            return None
        text = cast(str | None, await self.redis.get(keyspace.api_key(key_id)))
        return ApiKeyRecord.model_validate_json(text) if text else None

    async def touch(self, record: ApiKeyRecord, now: datetime) -> None:
        """Note that ``record``'s key was used at ``now`` (to the minute); never brings a revoked key back."""
        if record.last_used_at is not None and now - record.last_used_at < LAST_USED_RESOLUTION:
            return
        used = record.model_copy(update={"last_used_at": now})
        await self.redis.set(keyspace.api_key(record.id), used.model_dump_json(), xx=True)

    async def get(self, key_id: str) -> ApiKeyRecord:
        text = cast(str | None, await self.redis.get(keyspace.api_key(key_id)))
        if text is None:
            raise NotFound(f"API key {key_id!r} does not exist")
        return ApiKeyRecord.model_validate_json(text)

    async def list_keys(self, *, limit: int, cursor: str | None, account: str | None = None) -> Page[ApiKeyRecord]:
        """Keys newest first, all of them or one account's."""
        return await newest_first(
            self.redis,
            keyspace.account_api_keys(account) if account else keyspace.API_KEYS,
            limit=limit,
            cursor=cursor,
            load=self._load,
        )

    async def revoke(self, key_id: str) -> None:
        """Delete a key and its hash index entry at once; :class:`NotFound` if there is no such key."""
        record = await self.get(key_id)
        await self._delete([record])

    async def revoke_account(self, account: str) -> int:
        """Revoke every key of ``account`` at once; how many there were."""
        ids = await cast(Awaitable[list[str]], self.redis.zrange(keyspace.account_api_keys(account), 0, -1))
        records = [r for r in await self._load(ids) if r is not None]
        sessions = await self._sessions(records)
        async with self.redis.pipeline(transaction=True) as pipe:
            _queue_delete(pipe, records, sessions)
            if ids:
                pipe.zrem(keyspace.API_KEYS, *ids)
            pipe.delete(keyspace.account_api_keys(account))
            await pipe.execute()
        return len(records)

    async def _delete(self, records: Sequence[ApiKeyRecord]) -> None:
        sessions = await self._sessions(records)
        async with self.redis.pipeline(transaction=True) as pipe:
            _queue_delete(pipe, records, sessions)
            await pipe.execute()

    async def _sessions(self, records: Sequence[ApiKeyRecord]) -> list[str]:
        """The keys of the dashboard sessions opened with ``records``' keys."""
        if not records:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for record in records:
                pipe.smembers(keyspace.api_key_dashboard_sessions(record.id))
            found = cast(list[set[str]], await pipe.execute())
        return [keyspace.dashboard_session(digest) for digests in found for digest in digests]

    async def _load(self, ids: Sequence[str]) -> list[ApiKeyRecord | None]:
        if not ids:
            return []
        raw = cast(list[str | None], await self.redis.mget([keyspace.api_key(i) for i in ids]))
        return [ApiKeyRecord.model_validate_json(text) if text else None for text in raw]


def _queue_delete(pipe: Pipeline, records: Sequence[ApiKeyRecord], sessions: Sequence[str]) -> None:
    """Queue the removal of keys: record, hash index entry, list entries and dashboard sessions together."""
    for record in records:
        pipe.delete(keyspace.api_key(record.id), keyspace.api_key_hash(record.hash))
        pipe.delete(keyspace.api_key_dashboard_sessions(record.id))
        pipe.zrem(keyspace.API_KEYS, record.id)
        pipe.zrem(keyspace.account_api_keys(record.account), record.id)
    if sessions:
        pipe.delete(*sessions)
