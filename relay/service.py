"""The long-running processes: the API, the worker, and both in one (``relay run``).

Each builds its parts from settings over one set of connections, serves until SIGINT or SIGTERM, then stops
in order: stop accepting, finish or give back the work under way, close connections.
"""

import asyncio
import contextlib
import errno
import logging
import signal
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import aiohttp
from aiohttp import web
from redis.asyncio import Redis
from redis.exceptions import RedisError

from relay.api.app import create_app, create_probe_app
from relay.api.context import ApiContext
from relay.api.liveness_views import ProcessProbes
from relay.connections import Connections, connect
from relay.redis_url import redacted
from relay.settings import Settings
from subscriptions.core.crypto import TokenCipher
from subscriptions.core.errors import RelayError
from subscriptions.store.hints import HintLimits
from subscriptions.store.records import Store
from workers.budget import requests_per_minute
from workers.dispatcher import DeliveryPolicy
from workers.metrics import Metrics
from workers.oauth_accounts import OAuthConfig
from workers.poller import PollPolicy
from workers.runtime import JobLoop, WorkerRuntime, create_worker
from workers.sender import delivery_session

log = logging.getLogger("relay")


class StartupError(RelayError):
    """The process cannot start; the message is the one line the CLI prints."""


def utc_now() -> datetime:
    return datetime.now(UTC)


def brightpearl_session(connections: int = 100) -> aiohttp.ClientSession:
    """The session for Brightpearl, with up to ``connections`` open at once (a worker: one for each poll it may run);
    proxies come from ``workers.brightpearl.proxies``, read once, not from the environment and ``.netrc`` on every
    request (``trust_env``)."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=connections), trust_env=False)


def warn_about(settings: Settings, connections: Connections) -> None:
    if connections.embedded:
        log.warning("no RELAY_REDIS_URL set: using an embedded in-process store; nothing will survive a restart")
    if settings.encryption_key is None:
        log.warning(
            "RELAY_ENCRYPTION_KEY is not set: Brightpearl tokens and webhook signing secrets are stored "
            "unencrypted in Redis"
        )


@dataclass
class Parts:
    """Everything a process runs, for tests and the demo to reach into."""

    connections: Connections
    api: ApiContext | None
    runtime: WorkerRuntime | None
    api_url: str | None


def require_token(settings: Settings) -> str:
    token = settings.token()
    if not token:
        raise StartupError(
            "RELAY_API_TOKEN is not set; set it to a long random secret, e.g. "
            "export RELAY_API_TOKEN=$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )
    return token


def api_context(
    settings: Settings,
    connections: Connections,
    session: aiohttp.ClientSession,
    metrics: Metrics,
    cipher: TokenCipher | None = None,
) -> ApiContext:
    return ApiContext(
        redis=connections.redis,
        admin_token=require_token(settings),
        brightpearl_session=session,
        budget_per_minute=requests_per_minute(settings.budget_share),
        allow_private_targets=settings.allow_private_targets,
        clock=utc_now,
        metrics=metrics,
        sweep_interval_s=settings.stock_sweep_interval_s,
        brightpearl_timeout_s=settings.brightpearl_timeout_s,
        cipher=cipher,
        jobs=connections.arq,
        secret_grace_s=settings.secret_grace_s,
        max_subscriptions_per_account=settings.max_subscriptions_per_account,
        test_pings_per_minute=settings.test_pings_per_minute,
        metrics_token=metrics_token(settings),
        public_url=settings.public_url,
        hint_limits=HintLimits(per_minute=settings.hints_per_minute, coalesce_ms=settings.hint_coalesce_ms),
        oauth_config=oauth_config(settings),
    )


def worker_runtime(
    settings: Settings, connections: Connections, metrics: Metrics, cipher: TokenCipher | None = None
) -> WorkerRuntime:
    return WorkerRuntime(
        redis=connections.redis,
        arq=connections.arq,
        brightpearl_session=brightpearl_session(settings.poll_concurrency),
        delivery_session=delivery_session(
            allow_private=settings.allow_private_targets,
            max_connections=settings.max_in_flight,
            per_host=settings.connections_per_host,
        ),
        poll_policy=PollPolicy(
            overlap_s=settings.poll_overlap_s,
            budget_per_minute=requests_per_minute(settings.budget_share),
            sweep_interval_s=settings.stock_sweep_interval_s,
            brightpearl_timeout_s=settings.brightpearl_timeout_s,
            status_sweep_interval_s=settings.status_sweep_interval_s,
            hint_coalesce_ms=settings.hint_coalesce_ms,
            concurrency=settings.poll_concurrency,
        ),
        delivery_policy=DeliveryPolicy(
            retry_schedule_s=settings.retry_schedule_s,
            timeout_s=settings.delivery_timeout_s,
            max_in_flight=settings.max_in_flight,
            per_subscription=settings.subscription_concurrency,
            per_account=settings.account_in_flight(),
            connections_per_host=settings.connections_per_host,
            rate_per_s=settings.subscription_rate_per_s,
            retry_after_max_s=settings.retry_after_max_s,
            disable_after_s=settings.disable_after_s,
            allow_private_targets=settings.allow_private_targets,
        ),
        clock=utc_now,
        metrics=metrics,
        retention_s=settings.retention_s,
        cipher=cipher,
        public_url=settings.public_url,
        oauth_config=oauth_config(settings),
    )


def oauth_config(settings: Settings) -> OAuthConfig:
    """The OAuth app the settings describe (its values empty where unset)."""
    secret = settings.brightpearl_client_secret
    return OAuthConfig(
        oauth_url=settings.brightpearl_oauth_url,
        app_ref=settings.brightpearl_app_ref or "",
        client_secret=secret.get_secret_value() if secret else "",
        dev_ref=settings.brightpearl_dev_ref or "",
        budget_share=settings.oauth_budget_share,
    )


async def listen(
    app: web.Application, host: str, port: int, what: str, *, host_setting: str, port_setting: str
) -> web.AppRunner:
    """Serve ``app`` on ``host:port``; a :class:`StartupError` naming the setting to change when that fails."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as error:
        await runner.cleanup()
        raise cannot_listen(error, host, port, what, host_setting=host_setting, port_setting=port_setting) from None
    return runner


def cannot_listen(
    error: OSError, host: str, port: int, what: str, *, host_setting: str, port_setting: str
) -> StartupError:
    """The one line for a server that could not listen: what went wrong, and which setting (or option) to change."""
    if isinstance(error, socket.gaierror):
        reason = f"{host!r} is not an address or host name this machine can resolve"
        fix = f"set {host_setting} to an address of this machine, e.g. 127.0.0.1 or 0.0.0.0"
    elif error.errno == errno.EADDRINUSE:
        reason = f"port {port} is in use by another process"
        fix = f"set {port_setting} to a free port"
    elif error.errno == errno.EACCES:
        reason = f"permission denied for port {port} (ports below 1024 need privileges)"
        fix = f"set {port_setting} to a port above 1023"
    elif error.errno == errno.EADDRNOTAVAIL:
        reason = f"{host} is not an address of this machine"
        fix = f"set {host_setting} to one, e.g. 127.0.0.1 or 0.0.0.0"
    else:
        reason = str(error.strerror or error)
        fix = f"check {host_setting} and {port_setting}"
    return StartupError(f"cannot listen on {host}:{port} for the {what}: {reason}; {fix}")


def metrics_token(settings: Settings) -> str | None:
    """RELAY_METRICS_TOKEN, or None when /metrics is open."""
    return settings.metrics_token.get_secret_value().strip() if settings.metrics_token else None


def health_app(
    metrics: Metrics,
    redis: "Redis",
    clock: Callable[[], datetime] = utc_now,
    *,
    metrics_token: str | None = None,
) -> web.Application:
    """The worker's own small server: the API's liveness and metrics views (the backlog gauges read from
    ``redis``), metrics needing ``metrics_token`` as a bearer token when it is set."""
    return create_probe_app(ProcessProbes(redis=redis, metrics=metrics, clock=clock, metrics_token=metrics_token))


async def connect_checked(settings: Settings) -> Connections:
    """The process's connections, once Redis answers."""
    connections = await connect(settings.redis_url)
    try:
        await connections.redis.ping()
    except Exception as error:
        await connections.close()
        raise StartupError(f"cannot reach Redis at {redacted(settings.redis_url or '')}: {error}") from None
    return connections


async def token_cipher(settings: Settings, connections: Connections) -> TokenCipher | None:
    """The cipher of RELAY_ENCRYPTION_KEY, once the stored Brightpearl tokens and webhook signing secrets are all
    under its first key.

    Tokens and secrets stored in plain text (before a key was set) or under an older key are encrypted again; one
    the keys cannot decrypt stops the start, since this process could neither poll its account nor sign for its
    subscription.
    """
    cipher = settings.cipher()
    store = Store(connections.redis, cipher)
    accounts, unreadable_accounts = await store.reseal_account_tokens()
    subscriptions, unreadable_subscriptions = await store.reseal_subscription_secrets()
    unreadable = [
        described(what, ids)
        for what, ids in (
            ("the Brightpearl tokens of {} stored account(s)", unreadable_accounts),
            ("the signing secrets of {} subscription(s)", unreadable_subscriptions),
        )
        if ids
    ]
    if unreadable:
        await connections.close()
        stored = " and ".join(unreadable)
        if cipher is None:
            problem = f"{stored} are encrypted but RELAY_ENCRYPTION_KEY is not set"
        else:
            problem = f"RELAY_ENCRYPTION_KEY cannot decrypt {stored}: none of its keys is the one that encrypted them"
        raise StartupError(
            f"{problem}; set RELAY_ENCRYPTION_KEY to that key (while rotating: the new key, a comma, the old one)"
        )
    if accounts:
        log.info("encrypted %d stored Brightpearl token(s) with the first key of RELAY_ENCRYPTION_KEY", accounts)
    if subscriptions:
        log.info(
            "encrypted the signing secrets of %d subscription(s) with the first key of RELAY_ENCRYPTION_KEY",
            subscriptions,
        )
    return cipher


def described(what: str, ids: list[str]) -> str:
    """``what`` (with a ``{}`` for the count) followed by up to three of ``ids``, e.g. "… 4 subscription(s)
    ('sub_a', 'sub_b', 'sub_c' and more)"."""
    which = ", ".join(repr(i) for i in ids[:3]) + (" and more" if len(ids) > 3 else "")
    return f"{what.format(len(ids))} ({which})"


def check_settings(settings: Settings, *, api: bool, worker: bool) -> None:
    """Refuse, with the line to print, what cannot start: the API without a token, a lone part without Redis."""
    if api:
        require_token(settings)
    if not settings.redis_url and not (api and worker):
        raise StartupError(
            "RELAY_REDIS_URL is not set; `relay api` and `relay worker` share state through "
            "Redis, e.g. export RELAY_REDIS_URL=redis://127.0.0.1:6379/0 (or use `relay run`)"
        )


@contextlib.asynccontextmanager
async def running(
    settings: Settings, *, api: bool, worker: bool, api_port: int | None = None, worker_port: int | None = None
) -> AsyncIterator[Parts]:
    """The API and/or the worker, serving until the block ends, then stopped in order."""
    check_settings(settings, api=api, worker=worker)
    connections = await connect_checked(settings)
    warn_about(settings, connections)
    cipher = await token_cipher(settings, connections)
    metrics = Metrics()
    session = brightpearl_session()
    runners: list[web.AppRunner] = []
    runtime = worker_runtime(settings, connections, metrics, cipher) if worker else None
    jobs = job_loop(runtime) if runtime else None
    jobs_task: asyncio.Task[None] | None = None
    ctx = None
    api_url = None
    try:
        if api:
            ctx = api_context(settings, connections, session, metrics, cipher)
            if runtime is not None:
                ctx.on_deliveries = runtime.dispatcher.wake
            runner, api_url = await serve_api(settings, ctx, api_port)
            runners.append(runner)
        if jobs is not None:
            if not api:
                runners.append(await serve_worker_health(settings, metrics, connections, worker_port))
            jobs_task = asyncio.create_task(jobs.run(), name="arq-worker")
            log.info("worker running")
        yield Parts(connections, ctx, runtime, api_url)
    finally:
        for runner in runners:
            await runner.cleanup()
        if jobs is not None and runtime is not None:
            await stop_worker(jobs, runtime)
        if jobs_task is not None:
            jobs_task.cancel()
            await asyncio.gather(jobs_task, return_exceptions=True)
        await session.close()
        if runtime is not None:
            await runtime.brightpearl_session.close()
            await runtime.delivery_session.close()
        await connections.close()


def job_loop(runtime: WorkerRuntime) -> JobLoop:
    """arq's job loop over the runtime, built afresh whenever Redis is lost under it."""
    return JobLoop(lambda: create_worker(runtime, handle_signals=False), outage=runtime.outage)


async def serve_api(settings: Settings, ctx: ApiContext, api_port: int | None) -> tuple[web.AppRunner, str]:
    """The API, listening; with the URL it answers at."""
    port = settings.port if api_port is None else api_port
    runner = await listen(
        create_app(ctx), settings.host, port, "API", host_setting="RELAY_HOST", port_setting="RELAY_PORT"
    )
    api_url = f"http://{settings.host}:{bound_port(runner) or port}"
    log.info("API listening on %s", api_url)
    return runner, api_url


async def serve_worker_health(
    settings: Settings, metrics: Metrics, connections: Connections, worker_port: int | None
) -> web.AppRunner:
    """The worker's /healthz and /metrics, listening (a worker without the API in its process)."""
    port = settings.worker_port if worker_port is None else worker_port
    app = health_app(metrics, connections.redis, metrics_token=metrics_token(settings))
    return await listen(
        app,
        settings.host,
        port,
        "worker's /healthz and /metrics",
        host_setting="RELAY_HOST",
        port_setting="RELAY_WORKER_PORT",
    )


async def stop_worker(jobs: JobLoop, runtime: WorkerRuntime) -> None:
    """Stop arq and the runtime's loops, giving back what they hold; also while Redis does not answer (arq then
    stops before its shutdown hook, so the runtime is stopped here)."""
    try:
        await jobs.close()  # runs on_shutdown: the runtime stops and gives back what it holds
    except (RedisError, OSError) as error:
        log.warning("stopping while Redis is unreachable (%s): what cannot be given back waits for its lease", error)
        await runtime.stop()


def free_loopback_port() -> int:
    """A loopback port free now (for a server whose URL must be known before it starts, as the demo's API is)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bound_port(runner: web.AppRunner) -> int | None:
    """The port a runner listens on (when it was asked for port 0)."""
    for address in runner.addresses:
        if isinstance(address, tuple):
            return int(address[1])
    return None


async def serve(settings: Settings, *, api: bool, worker: bool) -> None:
    """Serve until SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with running(settings, api=api, worker=worker):
        await stop.wait()
        log.info("stopping")
