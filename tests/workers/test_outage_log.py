"""While Redis is away a worker says so once, reminds now and then, and says when it is back: it used to log a
traceback five times a second (2,300 lines in 14 s), burying everything else."""

import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from tests.e2e import free_port, wait_for
from tests.faults.redis_server import redis_server
from workers.outage import RedisOutage


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_one_line_when_it_goes_a_reminder_a_minute_one_line_when_it_is_back(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    outage = RedisOutage(remind_every_s=60, clock=clock)
    refused = RedisConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")
    with caplog.at_level(logging.INFO, logger="relay.redis"):
        for _ in range(5 * 59):  # five failures a second, from three loops, for 59 s
            for doing in ("claiming deliveries", "scheduling polls", "running poll jobs"):
                assert outage.failed(refused, doing)
            clock.now += 0.2
        clock.now += 2
        assert outage.failed(refused, "scheduling polls")
        outage.ok()
        outage.ok()
    lines = [record.getMessage() for record in caplog.records]
    assert lines == [
        "Redis is unreachable (Error 111 connecting to 127.0.0.1:6379. Connection refused.) while claiming "
        "deliveries; the worker keeps trying and carries on when it is back",
        "Redis is still unreachable after 61 s (Error 111 connecting to 127.0.0.1:6379. Connection refused.)",
        "Redis is reachable again after 61 s",
    ]


def test_other_errors_are_left_to_the_caller_to_report_in_full() -> None:
    outage = RedisOutage()
    assert not outage.failed(ResponseError("WRONGTYPE Operation against a key holding the wrong kind"), "x")
    assert not outage.failed(ValueError("a bug"), "x")
    assert not outage.down


async def test_a_worker_says_redis_went_and_came_back_in_a_few_lines_and_stops_cleanly(tmp_path: Path) -> None:
    """A real ``relay worker`` process, its Redis killed for 8 s and started again, then killed again and the
    worker stopped while it is down: a handful of lines, no traceback, exit status 0."""
    async with redis_server(tmp_path / "redis") as server:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("RELAY_")},
            "RELAY_REDIS_URL": server.url,
            "RELAY_WORKER_PORT": str(free_port()),
            "PYTHONUNBUFFERED": "1",
        }
        log_path = tmp_path / "worker.log"
        with log_path.open("wb") as out:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "relay", "worker", env=env, stdout=out, stderr=asyncio.subprocess.STDOUT
            )
        try:
            await wait_for(lambda: b"worker running" in log_path.read_bytes(), 20, "the worker to start")
            await server.kill()
            await wait_for(lambda: b"Redis is unreachable" in log_path.read_bytes(), 10, "the outage to be noticed")
            await asyncio.sleep(8)
            await server.start()
            await wait_for(lambda: b"reachable again" in log_path.read_bytes(), 20, "the worker to notice it is back")
            await server.kill()
            await wait_for(lambda: log_path.read_bytes().count(b"Redis is unreachable") == 2, 10, "the second outage")
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(proc.wait(), 30) == 0
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    text = log_path.read_text()
    assert "Traceback" not in text, text
    lines = text.splitlines()
    assert len(lines) <= 10, text
