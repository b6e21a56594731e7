"""The ``relay`` command as a user meets it: help everywhere, one-line errors, and the demo."""

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Callable

import pytest

from subscriptions.core.events import EVENT_TYPES  # the demo makes every one happen within its 30 s

COMMANDS = ["run", "api", "worker", "demo", "sandbox"]
LONG_TOKEN = "cli-admin-token-0123456789abcdefghij"  # RELAY_API_TOKEN needs 32 characters or more
NO_SUCH_HOST = "no-such-host.invalid"  # .invalid never resolves (RFC 6761)
UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"


def relay_env(env: dict[str, str] | None) -> dict[str, str]:
    """This process's environment without its RELAY_ variables, plus ``env``."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_")}
    return {**clean, **(env or {})}


def relay(*args: str, env: dict[str, str] | None = None, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "relay", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=relay_env(env),
        cwd="/",
        check=False,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], *names: str) -> None:
    """Exit status 2, no traceback, and exactly one ``relay: error:`` line on stderr, naming each of ``names``."""
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("relay: error:")]
    assert len(errors) == 1, result.stderr
    for name in names:
        assert name in errors[0], errors[0]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_help_lists_every_command() -> None:
    result = relay("--help")
    assert result.returncode == 0
    for command in COMMANDS:
        assert command in result.stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command: str) -> None:
    result = relay(command, "--help")
    assert result.returncode == 0
    assert f"relay {command}" in result.stdout


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["api"], {"RELAY_REDIS_URL": "redis://127.0.0.1:6379/15"}, "RELAY_API_TOKEN is not set"),
        (["run"], {}, "RELAY_API_TOKEN is not set"),
        (["run"], {"RELAY_API_TOKEN": "too-short"}, "RELAY_API_TOKEN: must be at least 32 characters"),
        (["api"], {"RELAY_API_TOKEN": LONG_TOKEN}, "RELAY_REDIS_URL is not set"),
        (["worker"], {}, "RELAY_REDIS_URL is not set"),
        (["worker"], {"RELAY_RETRY_SCHEDULE_S": "5,soon"}, "RELAY_RETRY_SCHEDULE_S: expected comma-separated"),
        (["run"], {"RELAY_BUDGET_SHARE": "2"}, "RELAY_BUDGET_SHARE"),
        (["run"], {"RELAY_PORT": "http"}, "RELAY_PORT"),
        (["run"], {"RELAY_API_TOKEN": LONG_TOKEN, "RELAY_PORT": "99999"}, "RELAY_PORT"),
        (["run"], {"RELAY_API_TOKEN": LONG_TOKEN, "RELAY_HOST": NO_SUCH_HOST}, "set RELAY_HOST"),
        (["worker"], {"RELAY_REDIS_URL": UNREACHABLE_REDIS}, "cannot reach Redis"),
        (["api"], {"RELAY_API_TOKEN": LONG_TOKEN, "RELAY_REDIS_URL": UNREACHABLE_REDIS}, "cannot reach Redis"),
        (["sandbox", "--port", "99999"], {}, "--port must be from 0 to 65535"),
        (["sandbox", "--port", "-1"], {}, "--port must be from 0 to 65535"),
        (["sandbox", "--account", "a b"], {}, "--account 'a b' is not an account code"),
        (["sandbox", "--account", ""], {}, "--account '' is not an account code"),
        (["sandbox", "--host", NO_SUCH_HOST], {}, "set --host"),
        (["sandbox", "--host", ""], {}, "--host is empty"),
        (["demo", "--duration", "-1"], {}, "--duration must be a positive number of seconds"),
        (["demo", "--duration", "0"], {}, "--duration must be a positive number of seconds"),
        (["demo", "--duration", "nan"], {}, "--duration must be a positive number of seconds"),
    ],
)
def test_mistakes_get_one_line_naming_the_fix(args: list[str], env: dict[str, str], message: str) -> None:
    assert_one_line_error(relay(*args, env=env), message)


# each command that listens: how to run it on a port, and the setting (or option) that chooses that port
Command = Callable[[int, str], tuple[list[str], dict[str, str]]]
LISTENERS: dict[str, tuple[Command, str]] = {
    "run": (lambda port, _: (["run"], {"RELAY_API_TOKEN": LONG_TOKEN, "RELAY_PORT": str(port)}), "RELAY_PORT"),
    "api": (
        lambda port, redis: (
            ["api"],
            {"RELAY_API_TOKEN": LONG_TOKEN, "RELAY_REDIS_URL": redis, "RELAY_PORT": str(port)},
        ),
        "RELAY_PORT",
    ),
    "worker": (
        lambda port, redis: (["worker"], {"RELAY_REDIS_URL": redis, "RELAY_WORKER_PORT": str(port)}),
        "RELAY_WORKER_PORT",
    ),
    "sandbox": (lambda port, _: (["sandbox", "--port", str(port)], {}), "--port"),
}


@pytest.mark.parametrize("command", list(LISTENERS))
def test_a_port_in_use_is_one_line_naming_the_setting(command: str, redis_url: str) -> None:
    how, setting = LISTENERS[command]
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        args, env = how(port, redis_url)
        result = relay(*args, env=env)
    assert_one_line_error(result, f"cannot listen on 127.0.0.1:{port}", "in use", f"set {setting} to a free port")


def test_a_second_worker_on_one_host_is_told_to_set_relay_worker_port(redis_url: str) -> None:
    port = free_port()
    env = {"RELAY_REDIS_URL": redis_url, "RELAY_WORKER_PORT": str(port)}
    first = subprocess.Popen(
        [sys.executable, "-m", "relay", "worker"],
        env=relay_env(env),
        cwd="/",
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:  # until the first worker serves its /healthz
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                    break
            except OSError:
                assert first.poll() is None, "the first worker stopped"
                assert time.monotonic() < deadline, "the first worker never served /healthz"
                time.sleep(0.1)
        second = relay("worker", env=env)
    finally:
        first.send_signal(signal.SIGINT)
        first.wait(timeout=20)
    assert_one_line_error(second, f"port {port} is in use", "set RELAY_WORKER_PORT to a free port")


def test_settings_accept_comma_separated_schedules() -> None:
    from relay.settings import Settings

    os.environ["RELAY_RETRY_SCHEDULE_S"] = "5, 300,1800"
    try:
        assert Settings().retry_schedule_s == (5.0, 300.0, 1800.0)
    finally:
        del os.environ["RELAY_RETRY_SCHEDULE_S"]


@pytest.mark.timeout(150)
def test_the_demo_shows_every_event_type_within_its_default_run_and_counts_each() -> None:
    result = relay("demo", "--duration", "30", timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    webhooks = [line for line in result.stdout.splitlines() if line.startswith("#")]
    assert webhooks
    assert all("signature ok" in line for line in webhooks)
    arrived = Counter(line.split()[1] for line in webhooks)
    assert [kind for kind in EVENT_TYPES if not arrived[kind]] == [], result.stdout
    summary = result.stdout.split("\nsummary: ", 1)[1]
    assert summary.startswith(f"{len(webhooks)} webhooks in ")
    assert f"{len(webhooks)} signatures verified, 0 BAD" in summary
    counted = {match[1]: int(match[2]) for match in re.finditer(r"^  (\S+) +(\d+)", summary, re.MULTILINE)}
    assert {kind: n for kind, n in counted.items() if n} == dict(arrived)
    assert "nothing will survive a restart" in result.stderr


@pytest.mark.timeout(150)
def test_the_demo_with_oauth_connects_through_the_authorize_url_and_refreshes_its_tokens() -> None:
    result = relay("demo", "--oauth", "--duration", "30", timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    authorize = re.search(r"^authorize +(http://127\.0\.0\.1:\d+/oauth/authorize/acme\?\S+)$", out, re.MULTILINE)
    assert authorize, out
    assert "client_id=relay_oauth" in authorize[1]
    assert "redirect_uri=http%3A%2F%2F127.0.0.1" in authorize[1]
    assert re.search(r"^callback +200 Connected: account acme connected \(auth_state active\)", out, re.MULTILINE), out
    webhooks = [line for line in out.splitlines() if line.startswith("#")]
    assert all("signature ok" in line for line in webhooks)
    arrived = Counter(line.split()[1] for line in webhooks)
    assert [kind for kind in EVENT_TYPES if not arrived[kind]] == [], out  # polled and hinted with Bearer tokens
    # the sandbox's OAuth server: one code exchanged (the authorize URL's), then refreshes, none refused
    counters = re.search(
        r"^oauth: (\d+) authorization code exchanged, (\d+) refresh(?:es)? \(access tokens live [\d.]+ s\), "
        r"401s: \d+.*, token errors: none; (\d+) API requests with a Bearer token$",
        out,
        re.MULTILINE,
    )
    assert counters, out
    assert int(counters[1]) == 1
    assert int(counters[2]) >= 1
    assert int(counters[3]) > 0


def test_the_demo_oauth_flag_takes_no_value() -> None:
    result = relay("demo", "--oauth=yes")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert errors == ["relay demo: error: argument --oauth: ignored explicit argument 'yes'"]


MALFORMED_REDIS_URL = (
    "relay: error: RELAY_REDIS_URL: expected redis://host:port/db, rediss://…, unix://… or "
    "redis+sentinel://host:port[,host:port]/service[/db], got 'localhost:6379'"
)


@pytest.mark.parametrize("command", ["run", "api", "worker", "demo"])
def test_a_malformed_redis_url_is_one_line_for_every_command(command: str) -> None:
    result = relay(command, env={"RELAY_REDIS_URL": "localhost:6379", "RELAY_API_TOKEN": LONG_TOKEN})
    assert result.returncode == 2
    assert result.stderr.splitlines() == [MALFORMED_REDIS_URL]


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:hunter2@127.0.0.1:1/0", "cannot reach Redis at redis://:***@127.0.0.1:1/0: Error 111"),
        (
            "redis+sentinel://:hunter2@127.0.0.1:1/relay?sentinel_password=hunter3",
            "cannot reach Redis at redis+sentinel://:***@127.0.0.1:1/relay?sentinel_password=***: no sentinel names "
            "a primary for 'relay' (127.0.0.1:1: Error 111",
        ),
        ("redis://:hunter2@127.0.0.1:port/0", "RELAY_REDIS_URL: expected redis://host:port/db (a port is"),
        (
            "redis+sentinel://:hunter2@127.0.0.1:6379/relay",
            "(127.0.0.1:6379: unknown command 'SENTINEL'",
        ),  # no sentinel
    ],
)
def test_a_redis_that_cannot_be_reached_is_one_line_without_its_password(url: str, shown: str) -> None:
    result = relay("api", env={"RELAY_REDIS_URL": url, "RELAY_API_TOKEN": LONG_TOKEN})
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith("relay: error: ")
    assert shown in line
    assert "hunter" not in line
