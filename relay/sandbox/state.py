"""The sandbox's state: its accounts by code, and the ``web.AppKey`` the app keeps it under.

In-process tests reach the same objects the HTTP handlers use through ``app[SANDBOX_STATE]`` (or
``SandboxServer.state``), so they can arrange an account directly instead of through the control API.
"""

import re
from collections.abc import Iterable

from aiohttp import web

from relay.sandbox.account import SandboxAccount
from subscriptions.core.errors import Conflict, InvalidInput, NotFound

ACCOUNT_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


class UnknownAccount(NotFound):
    """An account code the sandbox does not serve."""


class SandboxState:
    """Every account the sandbox serves."""

    def __init__(self, accounts: Iterable[SandboxAccount] = ()) -> None:
        self.accounts: dict[str, SandboxAccount] = {}
        for account in accounts:
            self.add(account)

    def add(self, account: SandboxAccount) -> SandboxAccount:
        """Serve ``account``; :class:`Conflict` if its code is taken, :class:`InvalidInput` if it cannot be one."""
        if not ACCOUNT_CODE.fullmatch(account.code):
            raise InvalidInput(f"account code {account.code!r} must be 1-64 letters, digits, '_' or '-'")
        if account.code in self.accounts:
            raise Conflict(f"account {account.code} already exists")
        self.accounts[account.code] = account
        return account

    def get(self, code: str) -> SandboxAccount | None:
        return self.accounts.get(code)

    def account(self, code: str) -> SandboxAccount:
        """The account with this code; :class:`UnknownAccount` if there is none."""
        account = self.accounts.get(code)
        if account is None:
            raise UnknownAccount(f"account {code} does not exist")
        return account


SANDBOX_STATE = web.AppKey("sandbox_state", SandboxState)


def base_url(origin: str, code: str) -> str:
    """``http://127.0.0.1:9100/public-api/acme``: where account ``code``'s Brightpearl API answers."""
    return f"{origin.rstrip('/')}/public-api/{code}"
