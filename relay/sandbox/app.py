"""The Brightpearl sandbox as an aiohttp application, and a runner for it on a real port.

``create_sandbox_app`` builds the app (Brightpearl's API under ``/public-api/{account}/``, its OAuth server
under ``/oauth``, the control API under ``/_sandbox``); ``start_sandbox`` serves it on loopback (port 0 picks a
free port) and returns a :class:`SandboxServer`; ``serve_sandbox_forever`` is the ``relay sandbox`` command.
"""

import asyncio
import sys
from collections.abc import Sequence
from dataclasses import replace
from types import TracebackType
from typing import Self, TextIO

from aiohttp import web

from relay.sandbox.account import SandboxAccount
from relay.sandbox.control import add_control_routes, control_errors
from relay.sandbox.control_requests import PREFIX
from relay.sandbox.gateway import date_by_account_clock, handle_brightpearl
from relay.sandbox.oauth_api import add_oauth_routes
from relay.sandbox.state import ACCOUNT_CODE, SANDBOX_STATE, SandboxState, base_url
from relay.service import StartupError, cannot_listen

DEFAULT_ACCOUNT_CODE = "acme"
MAX_PORT = 65535
SHUTDOWN_TIMEOUT_S = 1.0  # a request held by a "slow" fault must not hold up closing for aiohttp's default 60 s


def create_sandbox_app(accounts: Sequence[SandboxAccount]) -> web.Application:
    """The sandbox app serving ``accounts``; its state is ``app[SANDBOX_STATE]``."""
    app = web.Application(middlewares=[control_errors])
    app[SANDBOX_STATE] = SandboxState(accounts)
    app.router.add_route("*", "/public-api/{account}", handle_brightpearl)
    app.router.add_route("*", "/public-api/{account}/{path:.*}", handle_brightpearl)
    add_oauth_routes(app)
    add_control_routes(app)
    app.on_response_prepare.append(date_by_account_clock)
    app.on_cleanup.append(_stop_hints)
    return app


async def _stop_hints(app: web.Application) -> None:
    """Stop every account's hint sender (its task and client session) as the app closes."""
    for account in app[SANDBOX_STATE].accounts.values():
        await account.hints.close()


class SandboxServer:
    """A running sandbox: where it listens, its accounts, and how to stop it."""

    def __init__(self, runner: web.AppRunner, url: str) -> None:
        self.runner = runner
        self.url = url  # http://127.0.0.1:9100

    @property
    def state(self) -> SandboxState:
        return self.runner.app[SANDBOX_STATE]

    @property
    def control_url(self) -> str:
        return self.url + PREFIX

    @property
    def oauth_url(self) -> str:
        """``http://127.0.0.1:9100/oauth``: authorize at ``{this}/authorize/{account}``, tokens at
        ``{this}/token/{account}`` (``RELAY_BRIGHTPEARL_OAUTH_URL``)."""
        return self.url + "/oauth"

    def base_url(self, code: str = DEFAULT_ACCOUNT_CODE) -> str:
        """``http://127.0.0.1:9100/public-api/acme``: the base URL a Brightpearl client is given."""
        return base_url(self.url, code)

    def account(self, code: str = DEFAULT_ACCOUNT_CODE) -> SandboxAccount:
        """The account with this code (``UnknownAccount`` if there is none)."""
        return self.state.account(code)

    async def close(self) -> None:
        await self.runner.cleanup()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self.close()


async def start_sandbox(
    host: str = "127.0.0.1", port: int = 0, accounts: Sequence[SandboxAccount] | None = None
) -> SandboxServer:
    """Serve a sandbox on ``host:port`` (0: a free port) with ``accounts`` (default: one account ``acme``)."""
    app = create_sandbox_app(accounts if accounts is not None else [SandboxAccount(DEFAULT_ACCOUNT_CODE)])
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT_S)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except BaseException:
        await runner.cleanup()
        raise
    bound_port = int(runner.addresses[0][1])
    url_host = f"[{host}]" if ":" in host else host
    return SandboxServer(runner, f"http://{url_host}:{bound_port}")


async def serve_sandbox_forever(
    host: str = "127.0.0.1",
    port: int = 9100,
    account_code: str = DEFAULT_ACCOUNT_CODE,
    *,
    strict: bool = False,
    hints_to_any_host: bool = False,
    out: TextIO | None = None,
) -> None:
    """Serve a sandbox with one account (``strict``: refusing everything doubtful; ``hints_to_any_host``: its
    native webhooks may call hosts other than loopback ones) until cancelled, after printing what a client needs
    to reach it: as the private app (base URL, app ref, account token) and as the OAuth app (the OAuth server's
    URL, client id, client secret, dev ref).

    A value that cannot work (an account code Brightpearl would not have, a port out of range, an address this
    machine cannot listen on) is a :class:`~relay.service.StartupError` naming the option to change."""
    out = out or sys.stdout
    if not ACCOUNT_CODE.fullmatch(account_code):
        raise StartupError(
            f"--account {account_code!r} is not an account code: 1 to 64 letters, digits, '_' or '-', "
            "starting with a letter or digit (e.g. acme)"
        )
    if not 0 <= port <= MAX_PORT:
        raise StartupError(f"--port must be from 0 to {MAX_PORT} (0 picks a free port), not {port}")
    if not host.strip():
        raise StartupError("--host is empty; give an address to listen on, e.g. 127.0.0.1 or 0.0.0.0")
    try:
        server = await start_sandbox(host, port, [SandboxAccount(account_code, strict=strict)])
    except OSError as error:
        raise cannot_listen(error, host, port, "sandbox", host_setting="--host", port_setting="--port") from None
    try:
        account = server.account(account_code)
        if hints_to_any_host:
            account.hints.policy = replace(account.hints.policy, allow_remote=True)
        print(f"base_url      {server.base_url(account_code)}", file=out)
        print(f"app_ref       {account.app_ref}", file=out)
        print(f"account_token {account.account_token}", file=out)
        print(f"oauth_url     {server.oauth_url}", file=out)
        print(f"client_id     {account.oauth.app.client_id}", file=out)
        print(f"client_secret {account.oauth.app.client_secret}", file=out)
        print(f"dev_ref       {account.oauth.app.dev_ref}", file=out)
        print(f"control       {server.control_url}", file=out, flush=True)
        await asyncio.Event().wait()
    finally:
        await server.close()
