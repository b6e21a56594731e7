"""A ``redis-server`` of the fault suite's own: its own port and directory, append-only file on, so it can be
shut down or killed and started again on the same data while the relay keeps running."""

import asyncio
import contextlib
import shutil
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from tests.e2e import free_port, wait_for


class RedisServer:
    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.port = free_port()
        self.proc: asyncio.subprocess.Process | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("redis-server is not installed (Debian: apt-get install redis-server)")
        self.starts += 1
        log = (self.directory / "redis.log").open("ab")
        with log:
            self.proc = await asyncio.create_subprocess_exec(
                binary,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--dir", str(self.directory),
                "--appendonly", "yes",
                "--appendfsync", "everysec",
                "--save", "",
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
            )  # fmt: skip
        await wait_for(self.answers, 10, f"redis-server on port {self.port} (start {self.starts})")

    async def answers(self) -> bool:
        client = Redis.from_url(self.url, socket_connect_timeout=0.5)
        try:
            return bool(await client.ping())
        except Exception:  # refused, reset, still loading its append-only file: not yet
            return False
        finally:
            await client.aclose()

    async def shutdown(self) -> None:
        """``SHUTDOWN``: the append-only file is written out first, so nothing acknowledged is lost."""
        client = Redis.from_url(self.url)
        with contextlib.suppress(Exception):  # the connection drops as the server exits
            await client.shutdown()
        await client.aclose()
        await self._exited()

    async def kill(self) -> None:
        """SIGKILL: what the append-only file had not yet synced (up to a second) is gone."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        await self._exited()

    async def _exited(self) -> None:
        assert self.proc is not None
        await asyncio.wait_for(self.proc.wait(), 10)

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()


@contextlib.asynccontextmanager
async def redis_server(directory: Path) -> AsyncIterator[RedisServer]:
    server = RedisServer(directory)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
