"""The container's HEALTHCHECK: asks the ``relay`` command running as PID 1 whether it is alive.

    python /opt/relay/healthcheck.py                 # the command is read from /proc/1/cmdline
    python /opt/relay/healthcheck.py worker          # or named here (compose files, tests)

Exits 0 when the health path answers 200 within 3 s, 1 otherwise, as Docker expects. The slim image has no curl,
so this uses the standard library alone. What it asks depends on the command, as the README's settings say:
``api`` and ``run`` serve ``/healthz`` on ``RELAY_PORT`` (8080), ``worker`` on ``RELAY_WORKER_PORT`` (8081),
``sandbox`` answers ``/_sandbox/accounts`` on its ``--port`` (9100). ``demo`` picks free ports: nothing to ask.
Kubernetes ignores HEALTHCHECK and uses the probes in deploy/k8s instead.
"""

import os
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence

COMMANDS = ("run", "api", "worker", "sandbox", "demo")
WILDCARDS = ("", "0.0.0.0", "::")  # noqa: S104 - addresses to listen on, turned into loopback to connect to
TIMEOUT_S = 3.0


def option(argv: Sequence[str], name: str, default: str) -> str:
    """The value of ``--name VALUE`` or ``--name=VALUE`` in ``argv``."""
    for i, arg in enumerate(argv):
        if arg == name and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return default


def connect_host(listen_host: str) -> str:
    """Where to connect to reach a server listening on ``listen_host``."""
    host = "127.0.0.1" if listen_host in WILDCARDS else listen_host
    return f"[{host}]" if ":" in host else host


def probe_url(argv: Sequence[str], env: Mapping[str, str]) -> str | None:
    """The URL that answers 200 while the ``relay`` command line ``argv`` is healthy; None when there is none."""
    command = next((arg for arg in argv if arg in COMMANDS), None)
    if command in ("api", "run"):
        host, port, path = env.get("RELAY_HOST", "127.0.0.1"), env.get("RELAY_PORT", "8080"), "/healthz"
    elif command == "worker":
        host, port, path = env.get("RELAY_HOST", "127.0.0.1"), env.get("RELAY_WORKER_PORT", "8081"), "/healthz"
    elif command == "sandbox":
        host, port, path = option(argv, "--host", "127.0.0.1"), option(argv, "--port", "9100"), "/_sandbox/accounts"
    else:
        return None
    return f"http://{connect_host(host)}:{port}{path}"


def command_line() -> list[str]:
    """The command line of PID 1: the process the container runs."""
    with open("/proc/1/cmdline", "rb") as cmdline:
        return [part.decode(errors="replace") for part in cmdline.read().split(b"\0") if part]


def main(argv: Sequence[str]) -> int:
    url = probe_url(argv or command_line(), os.environ)
    if url is None:
        return 0
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as answer:  # noqa: S310 - an http URL built above
            healthy = answer.status == 200
    except (urllib.error.URLError, OSError) as error:
        print(f"healthcheck: {url}: {error}", file=sys.stderr)
        return 1
    if not healthy:
        print(f"healthcheck: {url} answered {answer.status}", file=sys.stderr)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
