"""Accounts in Redis: registering one with its baseline, reading, listing, changing and removing them, and the
status their polls record (their poll plans are ``subscriptions.store.polls``)."""

from collections.abc import Awaitable, Sequence
from typing import cast

from redis.asyncio.client import Pipeline

from subscriptions.core.crypto import seal, unseal
from subscriptions.core.errors import Conflict, NotFound
from subscriptions.core.models import RESOURCES, AccountRecord
from subscriptions.core.times import ms
from subscriptions.store import keyspace
from subscriptions.store.api_keys import ApiKeys
from subscriptions.store.oauth_tokens import OAuthTokenStore
from subscriptions.store.paging import Page, newest_first
from subscriptions.store.polls import PollPlan, Polls, queue_plan, queue_remove
from subscriptions.store.sealed import RecordStore, Sealed


class AccountStore(RecordStore):
    """Brightpearl accounts; with a cipher, their tokens encrypted in what is stored and decrypted in what is read."""

    async def create_account(
        self,
        account: AccountRecord,
        positions: dict[str, str],
        first_poll_ms: int,
        stock_figures: dict[int, str] | None = None,
    ) -> None:
        """Store a new account with the baseline of its resources (positions by name, stock figures by product)
        and schedule its first poll."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(keyspace.account(account.code), self._account_json(account), nx=True)
            pipe.zadd(keyspace.ACCOUNTS, {account.code: ms(account.created_at)})
            _write_baseline(pipe, account.code, positions, stock_figures or {})
            queue_plan(pipe, account.code, PollPlan().due_at(account.resources, first_poll_ms), idle_ms=first_poll_ms)
            created, *_ = await pipe.execute()
        if not created:
            raise Conflict(f"account {account.code!r} is already registered")

    async def account_exists(self, code: str) -> bool:
        return bool(await self.redis.exists(keyspace.account(code)))

    async def get_account(self, code: str) -> AccountRecord:
        """One account with its token decrypted; :class:`TokenKeyError` when the configured keys cannot."""
        return self._open_account(await self._get(AccountRecord, keyspace.account(code), f"account {code!r}"))

    def account_from_json(self, text: str) -> AccountRecord:
        """An account from its stored JSON (read with other things in one round trip), its token decrypted;
        :class:`TokenKeyError` when the configured keys cannot."""
        return self._open_account(AccountRecord.model_validate_json(text))

    async def list_accounts(self, *, limit: int, cursor: str | None) -> Page[AccountRecord]:
        return await newest_first(
            self.redis,
            keyspace.ACCOUNTS,
            limit=limit,
            cursor=cursor,
            load=self._load_accounts,
        )

    async def _load_accounts(self, codes: Sequence[str]) -> list[AccountRecord | None]:
        return [self._open_account(a) if a else None for a in await self._load(AccountRecord, keyspace.account, codes)]

    def _account_json(self, account: AccountRecord) -> str:
        """The stored JSON of an account: its token (and its hint token) encrypted when there is a key."""
        sealed = {"token": seal(account.token, self.cipher)}
        if account.hint_token:
            sealed["hint_token"] = seal(account.hint_token, self.cipher)
        return account.model_copy(update=sealed).model_dump_json()

    def _open_account(self, stored: AccountRecord) -> AccountRecord:
        """A stored account as the rest of the relay sees it: its token in plain text."""
        token = unseal(stored.token, self.cipher, f"the Brightpearl token of account {stored.code!r}")
        opened = {"token": token}
        if stored.hint_token:
            opened["hint_token"] = unseal(stored.hint_token, self.cipher, f"the hint token of account {stored.code!r}")
        return stored.model_copy(update=opened)

    async def reseal_account_tokens(self) -> tuple[int, list[str]]:
        """Encrypt every stored token that is not yet under the first key (a plain one, or one under an older
        key), OAuth accounts' tokens too; answer how many records were re-encrypted (an OAuth account's record and
        its tokens count one each) and the codes of the accounts whose tokens cannot be decrypted.

        Safe beside other processes: an account changed meanwhile is left to whoever changed it.
        """
        accounts = Sealed(
            keyspace.ACCOUNTS,
            keyspace.account,
            AccountRecord,
            lambda a: [a.token, a.hint_token] if a.hint_token else [a.token],
            self._open_account,
            self._account_json,
        )
        resealed, unreadable = await self._reseal(accounts)
        oauth_resealed, oauth_unreadable = await OAuthTokenStore(self.redis, self.cipher).reseal_tokens()
        return resealed + oauth_resealed, unreadable + [c for c in oauth_unreadable if c not in unreadable]

    async def save_account(
        self,
        account: AccountRecord,
        positions: dict[str, str],
        first_poll_ms: int,
        stock_figures: dict[int, str] | None = None,
    ) -> None:
        """Replace an account; resources newly watched start from their baseline, dropped ones stop polling,
        and every resource is due at once (new credentials end a backoff after Brightpearl refused the old)."""
        plan = (await Polls(self.redis).plan(account.code)).due_at(account.resources, first_poll_ms)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(keyspace.account(account.code), self._account_json(account), xx=True)
            _write_baseline(pipe, account.code, positions, stock_figures or {})
            dropped = [r for r in RESOURCES if r not in account.resources]
            queue_plan(pipe, account.code, plan, idle_ms=first_poll_ms)
            saved, *_ = await pipe.execute()
        if not saved:
            raise NotFound(f"account {account.code!r} does not exist")
        await self._unlink_matching([p for r in dropped for p in keyspace.resource_state(account.code, r)])

    async def delete_account(self, code: str) -> None:
        """Remove an account, stop its polling and remove its subscriptions (their deliveries stay visible)."""
        if not await self.account_exists(code):  # (not get_account: removing needs no key to decrypt the token)
            raise NotFound(f"account {code!r} does not exist")
        sub_ids = await cast(Awaitable[set[str]], self.redis.smembers(keyspace.account_subscriptions(code)))
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(
                keyspace.account(code),
                keyspace.account_status(code),
                keyspace.account_subscriptions(code),
                keyspace.budget(code),
                keyspace.oauth_tokens(code),
                keyspace.oauth_states(code),
            )
            pipe.zrem(keyspace.ACCOUNTS, code)
            queue_remove(pipe, code)
            for sub_id in sub_ids:
                pipe.delete(keyspace.subscription(sub_id))
                pipe.zrem(keyspace.SUBSCRIPTIONS, sub_id)
            await pipe.execute()
        await ApiKeys(self.redis).revoke_account(code)  # after the account is gone: a key made meanwhile is seen
        await self._unlink_matching([p for r in RESOURCES for p in keyspace.resource_state(code, r)])

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
        return await cast(Awaitable[dict[str, str]], self.redis.hgetall(keyspace.account_status(code)))

    async def update_account_status(self, code: str, fields: dict[str, str]) -> None:
        await cast(Awaitable[int], self.redis.hset(keyspace.account_status(code), mapping=fields))

    async def get_position(self, code: str, name: str) -> str | None:
        """Where one of the account's pollings stands (``keyspace.position``), as stored."""
        return cast(str | None, await self.redis.get(keyspace.position(code, name)))


def _write_baseline(pipe: Pipeline, code: str, positions: dict[str, str], stock_figures: dict[int, str]) -> None:
    """Queue the writes of a baseline: positions by name, stock figures by product."""
    for name, position in positions.items():
        pipe.set(keyspace.position(code, name), position)
    if stock_figures:
        pipe.hset(keyspace.stock_figures(code), mapping={str(k): v for k, v in stock_figures.items()})
