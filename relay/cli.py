"""The ``relay`` command: ``run``, ``api``, ``worker``, ``demo`` and ``sandbox``.

Errors a person can fix (a missing token, a bad setting, a port in use) end the command with one line saying
what to change and exit status 2, never a traceback.
"""

import argparse
import asyncio
import gc
import logging
import math
import sys
from collections.abc import Callable, Sequence

from pydantic import ValidationError

from relay.logs import configure_logging
from relay.settings import Settings, describe_error

DESCRIPTION = "Brightpearl webhook relay: polls Brightpearl accounts and delivers every change as a signed webhook."


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="relay", description=DESCRIPTION)
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")
    commands.add_parser(
        "run",
        help="API and workers in one process (single machine)",
        description="The HTTP API and the workers in one process. Uses RELAY_REDIS_URL; without "
        "it, an embedded in-process store that keeps nothing across restarts.",
    )
    commands.add_parser(
        "api",
        help="the HTTP API alone (stateless; run as many as you like)",
        description="The HTTP API alone. Needs RELAY_REDIS_URL and RELAY_API_TOKEN; listens on RELAY_HOST:RELAY_PORT.",
    )
    commands.add_parser(
        "worker",
        help="pollers and deliveries alone (an arq worker; run as many as you like)",
        description="Pollers and deliveries alone. Needs RELAY_REDIS_URL; serves /healthz and "
        "/metrics on RELAY_WORKER_PORT.",
    )
    demo = commands.add_parser(
        "demo",
        help="the whole pipeline on one machine, nothing to configure",
        description="Starts a Brightpearl sandbox, the relay and a receiver; registers an "
        "account and a subscription to '*'; makes orders happen; prints each "
        "webhook as it arrives with its signature check.",
    )
    demo.add_argument(
        "--duration",
        type=float,
        default=None,
        metavar="SECONDS",
        help="stop after this many seconds (default: run until interrupted)",
    )
    demo.add_argument(
        "--oauth",
        action="store_true",
        help='connect the account as the sandbox\'s OAuth instance app: register it with "auth": "oauth", '
        "follow its authorize URL as the admin's browser would, with short-lived access tokens so that "
        "refreshes show (default: a private app's token)",
    )
    sandbox = commands.add_parser(
        "sandbox",
        help="the Brightpearl sandbox alone, to develop against",
        description="A Brightpearl API sandbox that answers like the real one, with a "
        "control API under /_sandbox to make changes and inject faults.",
    )
    sandbox.add_argument("--port", type=int, default=9100, help="port to listen on (default 9100)")
    sandbox.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    sandbox.add_argument("--account", default="acme", help="account code (default acme)")
    sandbox.add_argument(
        "--strict",
        action="store_true",
        help="refuse, as Brightpearl refuses, everything it is not known to take (ranges in IDSET filters, "
        "several sort keys, unknown filters...); refusals are listed at /_sandbox/accounts/{code}/requests",
    )
    sandbox.add_argument(
        "--hints-to-any-host",
        action="store_true",
        help="let the account's native webhooks call any host, not only loopback ones (a relay in another "
        "container, e.g. RELAY_PUBLIC_URL=http://api:8080 in compose)",
    )
    return parser


def _fail(message: str) -> int:
    print(f"relay: error: {message}", file=sys.stderr)
    return 2


def _option_error(args: argparse.Namespace) -> str | None:
    """What is wrong with an option argparse accepted but the command cannot use; None when nothing is."""
    duration = getattr(args, "duration", None)
    if duration is not None and not (math.isfinite(duration) and duration > 0):
        return (
            f"--duration must be a positive number of seconds, not {duration:g}; leave it out to run until interrupted"
        )
    return None


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if problem := _option_error(args):
        return _fail(problem)
    try:
        settings = Settings()
    except ValidationError as error:
        return _fail(describe_error(error))
    try:
        configure_logging(settings.log_level, settings.log_format)
    except ValueError as error:
        return _fail(f"RELAY_LOG_LEVEL: {error}")
    logging.getLogger("arq").setLevel(logging.WARNING)  # arq logs every job at INFO: one line per poll
    from relay.service import StartupError, serve  # noqa: PLC0415 - keep `relay --help` fast

    try:
        if args.command == "sandbox":
            from relay.sandbox.app import serve_sandbox_forever  # noqa: PLC0415

            asyncio.run(
                serve_sandbox_forever(
                    args.host, args.port, args.account, strict=args.strict, hints_to_any_host=args.hints_to_any_host
                )
            )
            return 0
        if args.command == "demo":
            from relay.demo import run_demo  # noqa: PLC0415

            return asyncio.run(run_demo(settings, duration_s=args.duration, oauth=args.oauth))
        api = args.command in ("run", "api")
        worker = args.command in ("run", "worker")
        collect_less_often()
        with asyncio.Runner(loop_factory=fast_loop_factory()) as runner:
            runner.run(serve(settings, api=api, worker=worker))
    except StartupError as error:
        return _fail(str(error))
    except KeyboardInterrupt:
        return 130
    return 0


def collect_less_often() -> None:
    """Run Python's cycle collector far less often than by default, for a service that allocates fast.

    Reference counting frees almost everything a delivery or a request allocates; the collector only finds
    cycles. At its default threshold (700 net allocations) it ran every few deliveries and walked every
    live object each time it reached the older generations: about a fifth of a busy worker's CPU. What
    exists at start-up (modules, settings) is frozen out of its walks, and it runs after 50,000.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


def fast_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop where it is installed (it is a dependency on Linux and macOS), else asyncio's."""
    try:
        import uvloop  # noqa: PLC0415
    except ImportError:
        return None
    return uvloop.new_event_loop


if __name__ == "__main__":
    raise SystemExit(main())
