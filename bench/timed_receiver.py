"""A webhook receiver that records when each request arrived: answers 204 to every POST, on one or more ports.

    python bench/timed_receiver.py PORT [PORT ...]

Each POST is kept as ``[arrival, path, webhook-id, resource id]``: ``arrival`` is ``time.monotonic()``, one
system-wide clock on Linux, so a benchmark in another process can subtract its own readings from it; the
resource id is the body's ``data.id`` when there is one. ``GET /_arrivals`` answers them all (``?count=1``: how
many), ``DELETE /_arrivals`` forgets them. It runs in a process of its own, as a subscriber would, so that it
takes no CPU from the relay's or the benchmark's event loop; ``create_app`` serves the same in-process.
"""

import asyncio
import json
import sys
import time
from typing import Any

from aiohttp import web

ARRIVALS = "/_arrivals"
Arrival = tuple[float, str, str, Any]  # when, path, webhook-id, the body's data.id (or None)


def resource_id(body: bytes) -> Any:
    """The ``data.id`` of a webhook body, or None when it has none."""
    try:
        data = json.loads(body).get("data")
    except (ValueError, AttributeError):
        return None
    return data.get("id") if isinstance(data, dict) else None


def create_app(arrivals: list[Arrival]) -> web.Application:
    """The receiver, appending to ``arrivals`` (an in-process caller may read the list directly)."""

    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        arrived = time.monotonic()
        arrivals.append((arrived, request.path, request.headers.get("webhook-id", ""), resource_id(body)))
        return web.Response(status=204)

    async def show(request: web.Request) -> web.Response:
        if request.query.get("count"):
            return web.json_response({"count": len(arrivals)})
        return web.json_response({"arrivals": arrivals})

    async def forget(request: web.Request) -> web.Response:
        arrivals.clear()
        return web.Response(status=204)

    app = web.Application(client_max_size=1 << 22)
    app.router.add_get(ARRIVALS, show)
    app.router.add_delete(ARRIVALS, forget)
    app.router.add_post("/{tail:.*}", hook)
    return app


async def serve(ports: list[int]) -> None:
    runner = web.AppRunner(create_app([]), access_log=None)
    await runner.setup()
    for port in ports:
        await web.TCPSite(runner, "127.0.0.1", port, backlog=1024).start()
    try:
        await asyncio.Event().wait()  # until SIGTERM ends the process
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(serve([int(port) for port in sys.argv[1:]]))
