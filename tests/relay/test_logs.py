"""Log lines: JSON objects, one a line, when RELAY_LOG_FORMAT=json; today's text otherwise."""

import io
import json
import logging
import os
import signal
import subprocess
import sys
import time

import pytest

from relay.logs import TEXT_FORMAT, json_formatter, log_level
from tests.relay.test_cli import LONG_TOKEN, relay


def format_with(formatter: logging.Formatter, emit: "type[Exception] | None" = None) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    log = logging.getLogger("relay.test-logs")
    log.addHandler(handler)
    log.propagate = False
    try:
        log.warning("polled %s", "acme", extra={"account": "acme", "requests": 3})
        if emit is not None:
            try:
                raise emit("it broke")
            except Exception:
                log.exception("sweep failed")
    finally:
        log.removeHandler(handler)
        log.propagate = True
    return stream.getvalue()


def test_json_lines_carry_the_fields_extras_and_the_exception() -> None:
    first, second = (json.loads(line) for line in format_with(json_formatter(), RuntimeError).splitlines())
    assert first["level"] == "WARNING"
    assert first["logger"] == "relay.test-logs"
    assert first["message"] == "polled acme"
    assert (first["account"], first["requests"]) == ("acme", 3)
    assert first["timestamp"].endswith("+00:00")
    assert "exception" not in first
    assert second["level"] == "ERROR"
    assert second["exception"].startswith("Traceback")
    assert "RuntimeError: it broke" in second["exception"]


def test_text_stays_as_it_was() -> None:
    line = format_with(logging.Formatter(TEXT_FORMAT)).strip()
    assert line.endswith(" WARNING relay.test-logs: polled acme")


@pytest.mark.parametrize(("name", "level"), [("info", logging.INFO), ("WARNING", logging.WARNING), ("Debug", 10)])
def test_levels_by_name(name: str, level: int) -> None:
    assert log_level(name) == level


def test_an_unknown_level_is_one_line() -> None:
    result = relay("run", env={"RELAY_LOG_LEVEL": "loud", "RELAY_API_TOKEN": LONG_TOKEN})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "relay: error: RELAY_LOG_LEVEL: expected one of DEBUG, INFO, WARNING, ERROR, CRITICAL, got 'loud'"
    ]


def test_relay_run_logs_json_lines() -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_")}
    env = {**clean, "RELAY_LOG_FORMAT": "json", "RELAY_API_TOKEN": LONG_TOKEN, "RELAY_PORT": "0"}
    process = subprocess.Popen(
        [sys.executable, "-m", "relay", "run"], stderr=subprocess.PIPE, text=True, env=env, cwd="/"
    )
    assert process.stderr is not None
    lines: list[str] = []
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            line = process.stderr.readline()
            if not line:
                break
            lines.append(line)
            if "worker running" in line:
                break
        process.send_signal(signal.SIGTERM)
        _, rest = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    lines += rest.splitlines()
    records = [json.loads(line) for line in lines if line.strip()]  # every line is one JSON object
    assert process.returncode == 0, lines
    messages = [r["message"] for r in records]
    assert any("embedded in-process store" in m for m in messages)
    assert any(m.startswith("API listening on http://127.0.0.1:") for m in messages)
    assert "stopping" in messages
    for record in records:
        assert {"timestamp", "level", "logger", "message"} <= set(record)
