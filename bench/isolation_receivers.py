"""The receivers of ``bench/isolation.py``, in a process of their own: one aiohttp app on several loopback ports,
every subscriber told apart by path (healthy ones answer 204 at once, the hanging one never answers, the failing
one answers 500), with a control path that gives the figures and forgets them.

    .venv/bin/python bench/isolation_receivers.py COUNT

listens on ``COUNT`` ports, prints them as one JSON line, and serves until its stdin closes; :func:`receivers`
runs it so. Both processes read ``time.monotonic()``, one system-wide clock on Linux, so arrival times here and
commit times there can be subtracted.
"""

import asyncio
import contextlib
import json
import socket
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiohttp import web

HANGING, FAILING = "hanging", "failing"
CONTROL = "_control"


@dataclass
class ReceiverState:
    arrivals: dict[str, float]  # "subscriber webhook-id" -> first arrival, time.monotonic()
    duplicates: int = 0
    hanging_open: int = 0
    hanging_max_open: int = 0
    hanging_requests: int = 0
    failing_requests: int = 0


def receiver_app(state: ReceiverState) -> web.Application:
    """Every subscriber on one app, told apart by path: ``/healthy-N`` answers 204 at once, ``/hanging`` never
    answers, ``/failing`` answers 500; ``/_control`` gives the figures (GET) and forgets them (DELETE)."""

    async def hook(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        await request.read()
        if name.startswith(HANGING):
            state.hanging_requests += 1
            state.hanging_open += 1
            state.hanging_max_open = max(state.hanging_max_open, state.hanging_open)
            try:
                await asyncio.Event().wait()  # until the sender gives up and the handler is cancelled
            finally:
                state.hanging_open -= 1
        if name == FAILING:
            state.failing_requests += 1
            return web.Response(status=500, text="always failing")
        key = f"{name} {request.headers.get('webhook-id', '')}"
        if key in state.arrivals:
            state.duplicates += 1
        else:
            state.arrivals[key] = time.monotonic()
        return web.Response(status=204)

    async def figures(request: web.Request) -> web.Response:
        if request.query.get("count"):
            return web.json_response({"arrivals": len(state.arrivals)})
        fields = {k: v for k, v in vars(state).items() if k != "arrivals"}
        return web.json_response({"arrivals": state.arrivals, **fields})

    async def forget(request: web.Request) -> web.Response:
        state.arrivals.clear()
        for name in ("duplicates", "hanging_max_open", "hanging_requests", "failing_requests"):
            setattr(state, name, 0)
        return web.Response(status=204)

    app = web.Application(client_max_size=1 << 20)
    app.router.add_get(f"/{CONTROL}", figures)
    app.router.add_delete(f"/{CONTROL}", forget)
    app.router.add_post("/{name}", hook)
    return app


async def serve_receivers(count: int) -> None:
    """Listen on ``count`` loopback ports, print them as one JSON line, and serve until stdin closes."""
    runner = web.AppRunner(receiver_app(ReceiverState({})), handler_cancellation=True, access_log=None)
    await runner.setup()
    ports = []
    for _ in range(count):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        ports.append(sock.getsockname()[1])
        await web.SockSite(runner, sock, backlog=1024).start()
    print(json.dumps(ports), flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)  # the parent closes our stdin when it is done
    await runner.cleanup()


@contextlib.asynccontextmanager
async def receivers(count: int) -> AsyncIterator[list[int]]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        str(count),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 15)
        if not line:
            raise RuntimeError("the receiver process exited before listening")
        yield json.loads(line)
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), 5)
        except TimeoutError:
            proc.kill()
            await proc.wait()


if __name__ == "__main__":
    asyncio.run(serve_receivers(int(sys.argv[1])))
