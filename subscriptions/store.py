"""Accounts, subscriptions, events and deliveries in Redis: reading, listing, creating, changing.

The hot path (fanning events out into deliveries, claiming due deliveries, recording attempts) lives in
``subscriptions.outbox``; both use the key layout of ``subscriptions.keys``.
"""

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar, cast

from pydantic import BaseModel
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import WatchError

from subscriptions import keys
from subscriptions.admission import Admissions
from subscriptions.api_keys import ApiKeys
from subscriptions.crypto import TokenCipher, TokenKeyError, is_encrypted, seal, unseal
from subscriptions.due import ms
from subscriptions.errors import Conflict, NotFound, TooMany
from subscriptions.events import pattern_matches
from subscriptions.health import queue_forget, queue_reset
from subscriptions.lua import Script
from subscriptions.models import (
    RESOURCES,
    AccountRecord,
    Attempt,
    DeliveryRecord,
    DeliveryStatus,
    EventRecord,
    SubscriptionRecord,
    SubscriptionState,
)
from subscriptions.paging import Page, newest_first

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


# A subscription, its place in the lists and in its account's set, unless the account has its limit already.
_CREATE_SUBSCRIPTION = Script.beside(__file__, "create_subscription.lua")


class Store:
    """The relay's records, over one Redis connection pool (``decode_responses=True``).

    With a cipher, Brightpearl tokens and webhook signing secrets (current and previous) are encrypted in what is
    stored, and decrypted in every record this class returns: the rest of the relay sees them in plain text.
    """

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

    # accounts ------------------------------------------------------------------------------------------

    async def create_account(
        self,
        account: AccountRecord,
        cursors: dict[str, str],
        first_poll_ms: int,
        stock_figures: dict[int, str] | None = None,
    ) -> None:
        """Store a new account with the baseline of its resources (cursors by name, stock figures by product)
        and schedule its first poll."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(keys.account(account.code), self._account_json(account), nx=True)
            pipe.zadd(keys.ACCOUNTS, {account.code: ms(account.created_at)})
            _write_baseline(pipe, account.code, cursors, stock_figures or {})
            pipe.zadd(keys.POLLS, {account.code: first_poll_ms})
            created, *_ = await pipe.execute()
        if not created:
            raise Conflict(f"account {account.code!r} is already registered")

    async def account_exists(self, code: str) -> bool:
        return bool(await self.redis.exists(keys.account(code)))

    async def get_account(self, code: str) -> AccountRecord:
        """One account with its token decrypted; :class:`TokenKeyError` when the configured keys cannot."""
        return self._open_account(await self._get(AccountRecord, keys.account(code), f"account {code!r}"))

    async def list_accounts(self, *, limit: int, cursor: str | None) -> Page[AccountRecord]:
        return await newest_first(
            self.redis,
            keys.ACCOUNTS,
            limit=limit,
            cursor=cursor,
            load=self._load_accounts,
        )

    async def _load_accounts(self, codes: Sequence[str]) -> list[AccountRecord | None]:
        return [self._open_account(a) if a else None for a in await self._load(AccountRecord, keys.account, codes)]

    def _account_json(self, account: AccountRecord) -> str:
        """The stored JSON of an account: its token encrypted when there is a key."""
        return account.model_copy(update={"token": seal(account.token, self.cipher)}).model_dump_json()

    def _open_account(self, stored: AccountRecord) -> AccountRecord:
        """A stored account as the rest of the relay sees it: its token in plain text."""
        token = unseal(stored.token, self.cipher, f"the Brightpearl token of account {stored.code!r}")
        return stored.model_copy(update={"token": token})

    async def reseal_account_tokens(self) -> tuple[int, list[str]]:
        """Encrypt every stored token that is not yet under the first key (a plain one, or one under an older
        key); answer how many accounts were re-encrypted and the codes of those whose tokens cannot be decrypted.

        Safe beside other processes: an account changed meanwhile is left to whoever changed it.
        """
        accounts = Sealed(
            keys.ACCOUNTS, keys.account, AccountRecord, lambda a: [a.token], self._open_account, self._account_json
        )
        return await self._reseal(accounts)

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

    async def save_account(
        self,
        account: AccountRecord,
        cursors: dict[str, str],
        first_poll_ms: int,
        stock_figures: dict[int, str] | None = None,
    ) -> None:
        """Replace an account; resources newly watched start from their baseline, dropped ones stop polling,
        and every resource is due at once (new credentials end a backoff after Brightpearl refused the old)."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(keys.account(account.code), self._account_json(account), xx=True)
            _write_baseline(pipe, account.code, cursors, stock_figures or {})
            dropped = [r for r in RESOURCES if r not in account.resources]
            pipe.delete(keys.resource_due(account.code))
            pipe.zadd(keys.POLLS, {account.code: first_poll_ms}, xx=True)
            saved, *_ = await pipe.execute()
        if not saved:
            raise NotFound(f"account {account.code!r} does not exist")
        await self._unlink_matching([p for r in dropped for p in keys.resource_state(account.code, r)])

    async def delete_account(self, code: str) -> None:
        """Remove an account, stop its polling and remove its subscriptions (their deliveries stay visible)."""
        if not await self.account_exists(code):  # (not get_account: removing needs no key to decrypt the token)
            raise NotFound(f"account {code!r} does not exist")
        sub_ids = await cast(Awaitable[set[str]], self.redis.smembers(keys.account_subscriptions(code)))
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(
                keys.account(code), keys.account_status(code), keys.account_subscriptions(code), keys.budget(code)
            )
            pipe.zrem(keys.ACCOUNTS, code)
            pipe.zrem(keys.POLLS, code)
            pipe.delete(keys.resource_due(code))
            for sub_id in sub_ids:
                pipe.delete(keys.subscription(sub_id))
                pipe.zrem(keys.SUBSCRIPTIONS, sub_id)
            await pipe.execute()
        await ApiKeys(self.redis).revoke_account(code)  # after the account is gone: a key made meanwhile is seen
        await self._unlink_matching([p for r in RESOURCES for p in keys.resource_state(code, r)])

    async def _unlink_matching(self, patterns: Sequence[str]) -> None:
        """Remove the keys matching ``patterns`` (glob-style), in batches; a plain key matches itself."""
        for pattern in patterns:
            batch: list[str] = []
            async for key in self.redis.scan_iter(match=pattern, count=1000):
                batch.append(key)
                if len(batch) >= 500:
                    await self.redis.unlink(*batch)
                    batch.clear()
            if batch:
                await self.redis.unlink(*batch)

    async def account_status(self, code: str) -> dict[str, str]:
        return await cast(Awaitable[dict[str, str]], self.redis.hgetall(keys.account_status(code)))

    async def update_account_status(self, code: str, fields: dict[str, str]) -> None:
        await cast(Awaitable[int], self.redis.hset(keys.account_status(code), mapping=fields))

    async def resource_dues(self, code: str) -> dict[str, int]:
        """When each resource of an account is next polled (Unix ms); a resource not listed is due now."""
        raw = await cast(Awaitable[dict[str, str]], self.redis.hgetall(keys.resource_due(code)))
        return {resource: int(due) for resource, due in raw.items()}

    async def set_resource_dues(self, code: str, dues: dict[str, int]) -> None:
        if dues and await self.account_exists(code):
            await cast(Awaitable[int], self.redis.hset(keys.resource_due(code), mapping=dues))

    async def get_cursor(self, code: str, resource: str) -> str | None:
        return cast(str | None, await self.redis.get(keys.cursor(code, resource)))

    # subscriptions -------------------------------------------------------------------------------------

    def _subscription_json(self, sub: SubscriptionRecord) -> str:
        """The stored JSON of a subscription: its signing secrets encrypted when there is a key."""
        previous = sub.previous_secret
        sealed = {
            "secret": seal(sub.secret, self.cipher),
            "previous_secret": seal(previous, self.cipher) if previous is not None else None,
        }
        return sub.model_copy(update=sealed).model_dump_json()

    def _open_subscription(self, stored: SubscriptionRecord) -> SubscriptionRecord:
        """A subscription just read, as the rest of the relay sees it: its signing secrets in plain text.

        Opened in place (the record was parsed for this call alone), and the cipher remembers what it decrypted:
        the subscriptions the delivery loop reads for every batch cost a dictionary lookup a secret, not a
        decryption and a copy."""
        cipher, previous = self.cipher, stored.previous_secret
        if cipher is None and not is_encrypted(stored.secret) and not (previous and is_encrypted(previous)):
            return stored  # no key and nothing encrypted: the record as it is
        of = f"signing secret of subscription {stored.id!r}"
        stored.secret = unseal(stored.secret, cipher, f"the {of}")
        if previous is not None:
            stored.previous_secret = unseal(previous, cipher, f"the previous {of}")
        return stored

    async def reseal_subscription_secrets(self) -> tuple[int, list[str]]:
        """Encrypt every stored signing secret (current or previous) not yet under the first key; answer how many
        subscriptions were re-encrypted and the ids of those whose secrets cannot be decrypted.

        Safe beside other processes: a subscription changed meanwhile is left to whoever changed it.
        """
        subscriptions = Sealed(
            keys.SUBSCRIPTIONS,
            keys.subscription,
            SubscriptionRecord,
            lambda s: [s.secret, s.previous_secret],
            self._open_subscription,
            self._subscription_json,
        )
        return await self._reseal(subscriptions)

    async def create_subscription(self, sub: SubscriptionRecord, *, limit: int | None = None) -> None:
        """Store a new subscription; :class:`TooMany` if its account already has ``limit`` (counted and added in
        one step, so that a burst of requests cannot pass the limit together)."""
        script_keys = [keys.subscription(sub.id), keys.SUBSCRIPTIONS, keys.account_subscriptions(sub.account)]
        record = self._subscription_json(sub)
        args = {"id": sub.id, "record": record, "created_ms": ms(sub.created_at), "limit": limit or 0}
        created = await _CREATE_SUBSCRIPTION.run(self.redis, script_keys, args)
        if not created:
            raise TooMany(
                f"account {sub.account!r} already has {limit} subscriptions, the most it may have "
                "(RELAY_MAX_SUBSCRIPTIONS_PER_ACCOUNT); delete one it no longer needs first"
            )

    async def get_subscription(self, sub_id: str) -> SubscriptionRecord:
        """One subscription with its secrets decrypted; :class:`TokenKeyError` when the configured keys cannot."""
        stored = await self._get(SubscriptionRecord, keys.subscription(sub_id), f"subscription {sub_id!r}")
        return self._open_subscription(stored)

    async def save_subscription(self, sub: SubscriptionRecord) -> None:
        if not await self.redis.set(keys.subscription(sub.id), self._subscription_json(sub), xx=True):
            raise NotFound(f"subscription {sub.id!r} does not exist")

    async def delete_subscription(self, sub_id: str) -> None:
        # (not get_subscription: removing needs no key to decrypt the secrets)
        stored = await self._get(SubscriptionRecord, keys.subscription(sub_id), f"subscription {sub_id!r}")
        # deliveries waiting for a slot go back to the due set, where they end as failed ("subscription deleted")
        await Admissions(self.redis).unpark(sub_id, None, now_ms=0)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(keys.subscription(sub_id))
            pipe.zrem(keys.SUBSCRIPTIONS, sub_id)
            pipe.srem(keys.account_subscriptions(stored.account), sub_id)
            queue_forget(pipe, sub_id)
            await pipe.execute()

    async def disable_subscription(self, sub_id: str, reason: str, now: datetime) -> bool:
        """Disable a subscription with the reason recorded, unless it is gone or already disabled; True if
        this call disabled it. Atomic against a concurrent change (a PATCH re-enabling it wins or loses whole).

        The stored record is changed as it is: its secrets stay encrypted as they were, and no key is needed.
        """
        key = keys.subscription(sub_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            try:
                await pipe.watch(key)
                text = await pipe.get(key)
                if text is None:
                    return False
                sub = SubscriptionRecord.model_validate_json(text)
                if sub.state == SubscriptionState.disabled:
                    return False
                disabled = sub.model_copy(
                    update={
                        "state": SubscriptionState.disabled,
                        "disabled_reason": reason,
                        "disabled_at": now,
                        "updated_at": now,
                    }
                )
                pipe.multi()  # type: ignore[no-untyped-call]
                pipe.set(key, disabled.model_dump_json(), xx=True)
                await pipe.execute()
            except WatchError:
                return False  # changed meanwhile; the next failure decides again
        return True

    async def reenable_subscription(self, sub: SubscriptionRecord) -> None:
        """Save a subscription PATCHed back to active, forgetting that it was failing."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(keys.subscription(sub.id), self._subscription_json(sub), xx=True)
            queue_reset(pipe, sub.id)
            saved, *_ = await pipe.execute()
        if not saved:
            raise NotFound(f"subscription {sub.id!r} does not exist")

    async def list_subscriptions(
        self, *, limit: int, cursor: str | None, account: str | None = None
    ) -> Page[SubscriptionRecord]:
        return await newest_first(
            self.redis,
            keys.SUBSCRIPTIONS,
            limit=limit,
            cursor=cursor,
            load=self.load_subscriptions,
            keep=(lambda sub: sub.account == account) if account else None,
        )

    async def account_subscriptions(self, code: str) -> list[SubscriptionRecord]:
        """Every subscription of one account, the fan-out's audience."""
        ids = sorted(await cast(Awaitable[set[str]], self.redis.smembers(keys.account_subscriptions(code))))
        return [sub for sub in await self.load_subscriptions(ids) if sub is not None]

    async def load_subscriptions(self, ids: Sequence[str]) -> list[SubscriptionRecord | None]:
        """Subscriptions by id (None for one that is gone), their secrets decrypted."""
        loaded = await self._load(SubscriptionRecord, keys.subscription, ids)
        return [self._open_subscription(sub) if sub is not None else None for sub in loaded]

    # events --------------------------------------------------------------------------------------------

    async def get_event(self, event_id: str) -> EventRecord:
        return await self._get(EventRecord, keys.event(event_id), f"event {event_id!r}")

    async def load_events(self, ids: Sequence[str]) -> list[EventRecord | None]:
        return await self._load(EventRecord, keys.event, ids)

    async def list_events(
        self,
        *,
        limit: int,
        cursor: str | None,
        account: str | None = None,
        type_: str | None = None,
        since: datetime | None = None,
    ) -> Page[EventRecord]:
        return await newest_first(
            self.redis,
            keys.account_events(account) if account else keys.EVENTS,
            limit=limit,
            cursor=cursor,
            load=self.load_events,
            keep=(lambda event: pattern_matches(type_, event.type)) if type_ else None,
            min_score=ms(since) if since else None,
        )

    # deliveries ----------------------------------------------------------------------------------------

    async def get_delivery(self, delivery_id: str) -> DeliveryRecord:
        return await self._get(DeliveryRecord, keys.delivery(delivery_id), f"delivery {delivery_id!r}")

    async def load_deliveries(self, ids: Sequence[str]) -> list[DeliveryRecord | None]:
        return await self._load(DeliveryRecord, keys.delivery, ids)

    async def attempts(self, delivery_id: str) -> list[Attempt]:
        raw = await cast(Awaitable[list[str]], self.redis.lrange(keys.attempts(delivery_id), 0, -1))
        return [Attempt.model_validate_json(text) for text in raw]

    async def list_deliveries(
        self,
        *,
        limit: int,
        cursor: str | None,
        subscription: str | None = None,
        event_id: str | None = None,
        type_: str | None = None,
        status: DeliveryStatus | None = None,
        account: str | None = None,
    ) -> Page[DeliveryRecord]:
        """Deliveries newest first; the most selective filter picks the index, the others filter it."""
        if event_id:
            index = keys.event_deliveries(event_id)
        elif subscription:
            index = keys.subscription_deliveries(subscription)
        elif account:
            index = keys.account_deliveries(account)
        elif status:
            index = keys.status_deliveries(status)
        else:
            index = keys.DELIVERIES

        def keep(delivery: DeliveryRecord) -> bool:
            return (
                (account is None or delivery.account == account)
                and (subscription is None or delivery.subscription == subscription)
                and (event_id is None or delivery.event_id == event_id)
                and (type_ is None or pattern_matches(type_, delivery.type))
                and (status is None or delivery.status == status)
            )

        return await newest_first(self.redis, index, limit=limit, cursor=cursor, load=self.load_deliveries, keep=keep)


def _write_baseline(pipe: Pipeline, code: str, cursors: dict[str, str], stock_figures: dict[int, str]) -> None:
    """Queue the writes of a baseline: cursors by name, stock figures by product."""
    for name, cursor in cursors.items():
        pipe.set(keys.cursor(code, name), cursor)
    if stock_figures:
        pipe.hset(keys.stock_figures(code), mapping={str(k): v for k, v in stock_figures.items()})
