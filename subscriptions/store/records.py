"""Accounts, subscriptions, events and deliveries in Redis: reading, listing, creating, changing.

Accounts are ``subscriptions.store.accounts`` (``Store`` is an :class:`AccountStore` with the rest). The hot path
(fanning events out into deliveries, claiming due deliveries, recording attempts) lives in
``subscriptions.store.queue``; both use the key layout of ``subscriptions.store.keyspace``.
"""

from collections.abc import Awaitable, Sequence
from datetime import datetime
from typing import cast

from redis.asyncio import Redis
from redis.exceptions import WatchError

from subscriptions.core.crypto import TokenCipher, is_encrypted, seal, unseal
from subscriptions.core.errors import NotFound, TooMany
from subscriptions.core.events import pattern_matches
from subscriptions.core.models import (
    Attempt,
    DeliveryRecord,
    DeliveryStatus,
    EventRecord,
    SubscriptionRecord,
    SubscriptionState,
)
from subscriptions.core.times import ms
from subscriptions.store import keyspace
from subscriptions.store.accounts import AccountStore
from subscriptions.store.admission import Admissions
from subscriptions.store.health import queue_forget, queue_reset
from subscriptions.store.lua import Script
from subscriptions.store.paging import Page, newest_first
from subscriptions.store.sealed import Sealed

# A subscription, its place in the lists and in its account's set, unless the account has its limit already.
_CREATE_SUBSCRIPTION = Script.beside(__file__, "create_subscription.lua")


class Store(AccountStore):
    """The relay's records, over one Redis connection pool (``decode_responses=True``).

    With a cipher, Brightpearl tokens and webhook signing secrets (current and previous) are encrypted in what is
    stored, and decrypted in every record this class returns: the rest of the relay sees them in plain text.
    """

    def __init__(self, redis: "Redis", cipher: TokenCipher | None = None) -> None:
        self.redis = redis
        self.cipher = cipher  # encrypts tokens and signing secrets at rest; None: stored as they are

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
            keyspace.SUBSCRIPTIONS,
            keyspace.subscription,
            SubscriptionRecord,
            lambda s: [s.secret, s.previous_secret],
            self._open_subscription,
            self._subscription_json,
        )
        return await self._reseal(subscriptions)

    async def create_subscription(self, sub: SubscriptionRecord, *, limit: int | None = None) -> None:
        """Store a new subscription; :class:`TooMany` if its account already has ``limit`` (counted and added in
        one step, so that a burst of requests cannot pass the limit together)."""
        script_keys = [
            keyspace.subscription(sub.id),
            keyspace.SUBSCRIPTIONS,
            keyspace.account_subscriptions(sub.account),
        ]
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
        stored = await self._get(SubscriptionRecord, keyspace.subscription(sub_id), f"subscription {sub_id!r}")
        return self._open_subscription(stored)

    async def save_subscription(self, sub: SubscriptionRecord) -> None:
        if not await self.redis.set(keyspace.subscription(sub.id), self._subscription_json(sub), xx=True):
            raise NotFound(f"subscription {sub.id!r} does not exist")

    async def delete_subscription(self, sub_id: str) -> None:
        # (not get_subscription: removing needs no key to decrypt the secrets)
        stored = await self._get(SubscriptionRecord, keyspace.subscription(sub_id), f"subscription {sub_id!r}")
        # deliveries waiting for a slot go back to the due set, where they end as failed ("subscription deleted")
        await Admissions(self.redis).unpark(sub_id, None, now_ms=0)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(keyspace.subscription(sub_id))
            pipe.zrem(keyspace.SUBSCRIPTIONS, sub_id)
            pipe.srem(keyspace.account_subscriptions(stored.account), sub_id)
            queue_forget(pipe, sub_id)
            await pipe.execute()

    async def disable_subscription(self, sub_id: str, reason: str, now: datetime) -> bool:
        """Disable a subscription with the reason recorded, unless it is gone or already disabled; True if
        this call disabled it. Atomic against a concurrent change (a PATCH re-enabling it wins or loses whole).

        The stored record is changed as it is: its secrets stay encrypted as they were, and no key is needed.
        """
        key = keyspace.subscription(sub_id)
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
            pipe.set(keyspace.subscription(sub.id), self._subscription_json(sub), xx=True)
            queue_reset(pipe, sub.id)
            saved, *_ = await pipe.execute()
        if not saved:
            raise NotFound(f"subscription {sub.id!r} does not exist")

    async def list_subscriptions(
        self, *, limit: int, cursor: str | None, account: str | None = None
    ) -> Page[SubscriptionRecord]:
        return await newest_first(
            self.redis,
            keyspace.SUBSCRIPTIONS,
            limit=limit,
            cursor=cursor,
            load=self.load_subscriptions,
            keep=(lambda sub: sub.account == account) if account else None,
        )

    async def account_subscriptions(self, code: str) -> list[SubscriptionRecord]:
        """Every subscription of one account, the fan-out's audience."""
        ids = sorted(await cast(Awaitable[set[str]], self.redis.smembers(keyspace.account_subscriptions(code))))
        return [sub for sub in await self.load_subscriptions(ids) if sub is not None]

    async def load_subscriptions(self, ids: Sequence[str]) -> list[SubscriptionRecord | None]:
        """Subscriptions by id (None for one that is gone), their secrets decrypted."""
        loaded = await self._load(SubscriptionRecord, keyspace.subscription, ids)
        return [self._open_subscription(sub) if sub is not None else None for sub in loaded]

    # events --------------------------------------------------------------------------------------------

    async def get_event(self, event_id: str) -> EventRecord:
        return await self._get(EventRecord, keyspace.event(event_id), f"event {event_id!r}")

    async def load_events(self, ids: Sequence[str]) -> list[EventRecord | None]:
        return await self._load(EventRecord, keyspace.event, ids)

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
            keyspace.account_events(account) if account else keyspace.EVENTS,
            limit=limit,
            cursor=cursor,
            load=self.load_events,
            keep=(lambda event: pattern_matches(type_, event.type)) if type_ else None,
            min_score=ms(since) if since else None,
        )

    # deliveries ----------------------------------------------------------------------------------------

    async def get_delivery(self, delivery_id: str) -> DeliveryRecord:
        return await self._get(DeliveryRecord, keyspace.delivery(delivery_id), f"delivery {delivery_id!r}")

    async def load_deliveries(self, ids: Sequence[str]) -> list[DeliveryRecord | None]:
        return await self._load(DeliveryRecord, keyspace.delivery, ids)

    async def attempts(self, delivery_id: str) -> list[Attempt]:
        raw = await cast(Awaitable[list[str]], self.redis.lrange(keyspace.attempts(delivery_id), 0, -1))
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
            index = keyspace.event_deliveries(event_id)
        elif subscription:
            index = keyspace.subscription_deliveries(subscription)
        elif account:
            index = keyspace.account_deliveries(account)
        elif status:
            index = keyspace.status_deliveries(status)
        else:
            index = keyspace.DELIVERIES

        def keep(delivery: DeliveryRecord) -> bool:
            return (
                (account is None or delivery.account == account)
                and (subscription is None or delivery.subscription == subscription)
                and (event_id is None or delivery.event_id == event_id)
                and (type_ is None or pattern_matches(type_, delivery.type))
                and (status is None or delivery.status == status)
            )

        return await newest_first(self.redis, index, limit=limit, cursor=cursor, load=self.load_deliveries, keep=keep)
