"""Redis servers of the fault suite's own.

A ``redis-server`` with its own port and directory, append-only file on, so it can be shut down or killed and
started again on the same data while the relay keeps running; optionally a replica of another, or also listening
on a Unix socket. And a Sentinel group: a primary, its replica and sentinels (Debian's ``redis-sentinel``) that
promote the replica within seconds of the primary going away.
"""

import asyncio
import contextlib
import secrets
import shutil
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from tests.e2e import free_port, wait_for


class RedisServer:
    def __init__(self, directory: Path, *, replica_of: "RedisServer | None" = None, socket: Path | None = None) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.port = free_port()
        self.replica_of = replica_of  # started as its replica (a sentinel may make it a primary later)
        self.socket = socket  # a Unix socket to listen on too (keep its path short: 107 bytes at most)
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
                "--repl-diskless-sync-delay", "0",  # a replica syncs at once, not after 5 s
                *(["--replicaof", "127.0.0.1", str(self.replica_of.port)] if self.replica_of else []),
                *(["--unixsocket", str(self.socket), "--unixsocketperm", "700"] if self.socket else []),
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

    async def command(self, *args: str) -> Any:
        """One command on a connection of its own; its answer, decoded."""
        client = Redis.from_url(self.url, socket_connect_timeout=0.5, socket_timeout=2, decode_responses=True)
        try:
            return await client.execute_command(*args)
        finally:
            await client.aclose()

    async def replication(self) -> dict[str, Any]:
        """What ``INFO replication`` says: ``role`` (``master`` or ``slave``), ``master_link_status``, …"""
        return dict(await self.command("INFO", "replication"))

    async def role(self) -> str:
        return str((await self.replication())["role"])

    async def synced(self) -> bool:
        """Whether this replica has loaded its primary's data and follows it."""
        return (await self.replication()).get("master_link_status") == "up"

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

    def freeze(self) -> None:
        """SIGSTOP: a machine gone silent. Connections stay open and unanswered; nothing tells a client it is gone."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT: it answers again, still believing what it believed when it froze."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    async def _exited(self) -> None:
        assert self.proc is not None
        await asyncio.wait_for(self.proc.wait(), 10)

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()  # SIGKILL ends a frozen process too
            await self.proc.wait()


@contextlib.asynccontextmanager
async def redis_server(
    directory: Path, *, replica_of: RedisServer | None = None, socket: Path | None = None
) -> AsyncIterator[RedisServer]:
    server = RedisServer(directory, replica_of=replica_of, socket=socket)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


SERVICE = "relay"


class RedisSentinel:
    """One ``redis-sentinel`` watching a primary as the service ``relay``. Its config file is its own (a sentinel
    rewrites it as it learns); it starts knowing the replica and the other sentinels, rather than finding them over
    the next seconds, so that the group can fail over as soon as it has started."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.port = free_port()
        self.myid = secrets.token_hex(20)
        self.config = directory / "sentinel.conf"
        self.proc: asyncio.subprocess.Process | None = None
        self.client = Redis(
            host="127.0.0.1", port=self.port, socket_connect_timeout=0.5, socket_timeout=2, decode_responses=True
        )

    def configure(self, group: "SentinelGroup", *, quorum: int, down_after_ms: int, failover_timeout_ms: int) -> None:
        peers = "".join(
            f"sentinel known-sentinel {SERVICE} 127.0.0.1 {peer.port} {peer.myid}\n"
            for peer in group.sentinels
            if peer is not self
        )
        self.config.write_text(
            f"port {self.port}\n"
            "bind 127.0.0.1\n"
            f"dir {self.directory}\n"
            f"sentinel myid {self.myid}\n"
            f"sentinel monitor {SERVICE} 127.0.0.1 {group.primary.port} {quorum}\n"
            f"sentinel down-after-milliseconds {SERVICE} {down_after_ms}\n"
            f"sentinel failover-timeout {SERVICE} {failover_timeout_ms}\n"
            f"sentinel parallel-syncs {SERVICE} 1\n"
            f"sentinel known-replica {SERVICE} 127.0.0.1 {group.replica.port}\n" + peers
        )

    async def start(self) -> None:
        sentinel, server = shutil.which("redis-sentinel"), shutil.which("redis-server")
        if sentinel is not None:
            command = [sentinel, str(self.config)]
        elif server is not None:  # the same program: redis-sentinel is redis-server in sentinel mode
            command = [server, str(self.config), "--sentinel"]
        else:
            pytest.skip("redis-sentinel is not installed (Debian: apt-get install redis-sentinel)")
        with (self.directory / "sentinel.log").open("ab") as log:
            self.proc = await asyncio.create_subprocess_exec(*command, stdout=log, stderr=asyncio.subprocess.STDOUT)
        await wait_for(self.answers, 10, f"redis-sentinel on port {self.port}")

    async def answers(self) -> bool:
        try:
            return bool(await self.client.ping())
        except Exception:  # not listening yet
            return False

    async def primary_port(self) -> int | None:
        """The port of the primary this sentinel names for the service (None while it names none)."""
        try:
            address = await self.client.sentinel_get_master_addr_by_name(SERVICE)
        except Exception:  # it does not answer: it names none
            return None
        return int(address[1]) if address else None

    async def sees(self, replicas: int, sentinels: int) -> bool:
        """Whether this sentinel knows ``replicas`` healthy replicas and ``sentinels`` other sentinels."""
        known = await self.client.sentinel_slaves(SERVICE)
        healthy = [r for r in known if not r["is_sdown"] and r.get("master-link-status") == "ok"]
        return len(healthy) >= replicas and len(await self.client.sentinel_sentinels(SERVICE)) >= sentinels

    async def stop(self) -> None:
        await self.client.aclose()
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()


@dataclass
class SentinelGroup:
    """A primary, its replica, and the sentinels that watch them."""

    primary: RedisServer
    replica: RedisServer
    sentinels: list[RedisSentinel]

    @property
    def url(self) -> str:
        """The relay's ``RELAY_REDIS_URL``: every sentinel, the service, database 0."""
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        return f"redis+sentinel://{hosts}/{SERVICE}/0"

    async def named_by(self, server: RedisServer) -> bool:
        """Whether every sentinel names ``server`` as the primary, and it says it is one."""
        ports = await asyncio.gather(*(s.primary_port() for s in self.sentinels))
        return all(port == server.port for port in ports) and await server.role() == "master"

    async def demoted(self, server: RedisServer) -> bool:
        """Whether ``server`` (a primary once) now says it is a replica."""
        try:
            return await server.role() == "slave"
        except Exception:  # not answering yet
            return False

    async def ready(self, timeout_s: float = 15) -> None:
        """Until every sentinel knows the replica and the other sentinels (so that they can elect a leader)."""
        others = len(self.sentinels) - 1

        async def ready() -> bool:
            try:
                seen = await asyncio.gather(*(s.sees(1, others) for s in self.sentinels))
            except Exception:  # a sentinel still starting
                return False
            return all(seen)

        await wait_for(ready, timeout_s, "the sentinels to see the replica and each other")


@contextlib.asynccontextmanager
async def sentinel_group(
    directory: Path, *, sentinels: int = 3, quorum: int = 2, down_after_ms: int = 1000, failover_timeout_ms: int = 3000
) -> AsyncIterator[SentinelGroup]:
    """A primary, its replica and ``sentinels`` sentinels (``quorum`` of them must agree the primary is down), every
    one on a free loopback port with a directory under ``directory``; ready to fail over when this yields."""
    primary = RedisServer(directory / "primary")
    replica = RedisServer(directory / "replica", replica_of=primary)
    group = SentinelGroup(primary, replica, [RedisSentinel(directory / f"sentinel-{n}") for n in range(sentinels)])
    try:
        await primary.start()
        await replica.start()
        await wait_for(replica.synced, 10, "the replica to sync with the primary")
        for sentinel in group.sentinels:
            sentinel.configure(
                group, quorum=quorum, down_after_ms=down_after_ms, failover_timeout_ms=failover_timeout_ms
            )
        await asyncio.gather(*(s.start() for s in group.sentinels))
        await group.ready()
        yield group
    finally:
        await asyncio.gather(*(s.stop() for s in group.sentinels))
        await replica.stop()
        await primary.stop()
