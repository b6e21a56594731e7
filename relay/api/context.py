"""What the API's handlers share, reachable from any request through one typed app key."""

import asyncio
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

import aiohttp
from aiohttp import web
from arq.connections import ArqRedis
from redis.asyncio import Redis

from subscriptions.core.crypto import TokenCipher
from subscriptions.core.models import AccountRecord
from subscriptions.store.hints import HintLimits, Hints
from subscriptions.store.queue import DeliveryQueue
from subscriptions.store.records import Store
from workers.budget import Budgets
from workers.hint_subscriptions import HintSubscriber
from workers.metrics import Metrics
from workers.oauth_accounts import OAuthConfig, budget_per_minute

Resolve = Callable[[str], Awaitable[list[str]]]
API_BUDGET_WAIT_S = 10.0  # the longest subscribing hints waits for the budget while a request waits for it


async def resolve_host(host: str) -> list[str]:
    """The addresses ``host`` resolves to now; none if it does not resolve within two seconds."""
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(loop.getaddrinfo(host, None, type=socket.SOCK_STREAM), 2.0)
    except (OSError, TimeoutError):
        return []
    return sorted({str(info[4][0]) for info in infos})


@dataclass
class ApiContext:
    redis: "Redis"
    admin_token: str
    brightpearl_session: aiohttp.ClientSession
    budget_per_minute: int
    allow_private_targets: bool
    clock: Callable[[], datetime]
    metrics: Metrics = field(default_factory=Metrics)
    sweep_interval_s: float = 3600.0
    brightpearl_timeout_s: float = 30.0  # RELAY_BRIGHTPEARL_TIMEOUT_S: registration's requests too
    on_deliveries: Callable[[], None] = lambda: None  # wakes a dispatcher in this process, if there is one
    resolve: Resolve = resolve_host
    cipher: TokenCipher | None = None  # encrypts Brightpearl tokens at rest; None: stored unencrypted
    jobs: ArqRedis | None = None  # where background jobs (recoveries) go to the workers
    secret_grace_s: float = 86_400.0
    max_subscriptions_per_account: int = 100
    test_pings_per_minute: int = 30
    metrics_token: str | None = None  # RELAY_METRICS_TOKEN: when set, /metrics needs it as a bearer token
    public_url: str | None = None  # RELAY_PUBLIC_URL: where Brightpearl posts hints; None: no hints
    hint_limits: HintLimits = field(default_factory=HintLimits)  # RELAY_HINTS_PER_MINUTE, RELAY_HINT_COALESCE_MS
    oauth_config: OAuthConfig = field(default_factory=OAuthConfig)  # the OAuth app; unset: OAuth accounts refused

    def __post_init__(self) -> None:
        self.store = Store(self.redis, self.cipher)
        self.oauth = self.oauth_config.access(
            self.redis,
            self.brightpearl_session,
            self.cipher,
            self.clock,
            on_reauthorization_required=lambda code: self.metrics.oauth_reauthorizations.inc(),
        )
        self.queue = DeliveryQueue(self.redis)
        self.budgets = Budgets(self.redis, self.budget_per_minute, self.clock)
        self.hints = Hints(self.redis, self.hint_limits)
        self.subscriber = HintSubscriber(
            self.store,
            self.brightpearl_session,
            self.budgets,
            self.public_url,
            clock=self.clock,
            timeout_s=self.brightpearl_timeout_s,
            max_budget_wait_s=API_BUDGET_WAIT_S,
            priority="normal",
            oauth=self.oauth,
        )

    def budget_of(self, account: AccountRecord) -> int:
        """The account's requests a minute: the private apps' share, or an OAuth app's of its own pool."""
        return budget_per_minute(account, self.budget_per_minute, self.oauth)


CONTEXT = web.AppKey("relay_context", ApiContext)


def context(request: web.Request) -> ApiContext:
    return request.app[CONTEXT]
