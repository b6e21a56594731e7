"""The ``relay`` command as a user meets it: help everywhere, one-line errors, and the demo."""

import os
import subprocess
import sys

import pytest

COMMANDS = ["run", "api", "worker", "demo", "sandbox"]
LONG_TOKEN = "cli-admin-token-0123456789abcdefghij"  # RELAY_API_TOKEN needs 32 characters or more


def relay(*args: str, env: dict[str, str] | None = None, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_")}
    return subprocess.run(
        [sys.executable, "-m", "relay", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**clean, **(env or {})},
        cwd="/",
        check=False,
    )


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
        (["api"], {"RELAY_API_TOKEN": LONG_TOKEN}, "RELAY_REDIS_URL is not set"),
        (["worker"], {}, "RELAY_REDIS_URL is not set"),
        (["worker"], {"RELAY_RETRY_SCHEDULE_S": "5,soon"}, "RELAY_RETRY_SCHEDULE_S: expected comma-separated"),
        (["run"], {"RELAY_BUDGET_SHARE": "2"}, "RELAY_BUDGET_SHARE"),
        (["run"], {"RELAY_PORT": "http"}, "RELAY_PORT"),
        (["worker"], {"RELAY_REDIS_URL": "redis://127.0.0.1:1/0"}, "cannot reach Redis"),
    ],
)
def test_mistakes_get_one_line_naming_the_fix(args: list[str], env: dict[str, str], message: str) -> None:
    result = relay(*args, env=env)
    assert result.returncode == 2
    assert message in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("relay: error:")]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr


def test_a_port_in_use_is_one_line(redis_url: str) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = relay(
            "api", env={"RELAY_REDIS_URL": redis_url, "RELAY_API_TOKEN": LONG_TOKEN, "RELAY_PORT": str(port)}
        )
    assert result.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


def test_settings_accept_comma_separated_schedules() -> None:
    from relay.settings import Settings

    os.environ["RELAY_RETRY_SCHEDULE_S"] = "5, 300,1800"
    try:
        assert Settings().retry_schedule_s == (5.0, 300.0, 1800.0)
    finally:
        del os.environ["RELAY_RETRY_SCHEDULE_S"]


@pytest.mark.timeout(90)
def test_the_demo_shows_verified_order_webhooks() -> None:
    result = relay("demo", "--duration", "10", timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith("#")]
    assert len(lines) >= 3
    assert all("signature ok" in line for line in lines)
    assert any("order.created" in line for line in lines)
    assert "0 BAD" in result.stdout
    assert "nothing will survive a restart" in result.stderr


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
