"""The Brightpearl sandbox for ``bench/accounts.py``, in a process of its own, keeping when each account's searches
were answered.

    python bench/accounts_sandbox.py PORT

It is the sandbox as ``relay sandbox`` serves it (``create_sandbox_app``, the control API under ``/_sandbox``,
where the benchmark makes its accounts, products, contacts and orders), with no account to begin with and one
addition for the benchmark: ``GET /_bench/searches`` answers, for every account, the moments
(``time.monotonic()``, one system-wide clock on Linux, so the benchmark can compare them with its own) at which
each resource's search was answered, and how many Brightpearl requests the account was answered in all, with
the moment of each; ``?since=T`` keeps the ones after T. A poll of a resource starts with its search, so the
gaps between a resource's searches are its poll gaps as Brightpearl sees them. ``PUT /_bench/throttle`` sets
every account's request cap (``{"limit": 200}`` is Brightpearl's), so that registering many accounts does not
wait on it while the measurement runs at the real one.
"""

import asyncio
import sys
import time
from collections import defaultdict
from pathlib import Path

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from relay.sandbox.app import SHUTDOWN_TIMEOUT_S, create_sandbox_app
from relay.sandbox.state import SANDBOX_STATE

# The search a poll of each resource starts with (API.md: one search per resource, then GETs of what changed).
SEARCH_RESOURCES = {
    "order-service/order-search": "orders",
    "warehouse-service/goods-movement-search": "stock",
    "warehouse-service/goods-note/goods-out-search": "goods-out-notes",
    "product-service/product-search": "products",
    "contact-service/contact-search": "contacts",
}
PUBLIC_API = "/public-api/"

SearchTimes = defaultdict[str, defaultdict[str, list[float]]]


def create_app() -> web.Application:
    """The sandbox with no accounts, answering ``/_bench/searches`` and ``/_bench/throttle`` beside its own."""
    app = create_sandbox_app([])
    searches: SearchTimes = defaultdict(lambda: defaultdict(list))
    requests: defaultdict[str, list[float]] = defaultdict(list)

    async def note(request: web.Request, response: web.StreamResponse) -> None:
        if not request.path.startswith(PUBLIC_API):
            return
        code, _, path = request.path[len(PUBLIC_API) :].partition("/")
        answered = time.monotonic()
        requests[code].append(answered)
        resource = SEARCH_RESOURCES.get(path)
        if resource is not None:
            searches[code][resource].append(answered)

    async def show(request: web.Request) -> web.Response:
        since = float(request.query.get("since", "-inf"))
        return web.json_response(
            {
                "searches": {
                    code: {resource: [t for t in times if t > since] for resource, times in by_resource.items()}
                    for code, by_resource in searches.items()
                },
                "requests": {code: [t for t in times if t > since] for code, times in requests.items()},
            }
        )

    async def throttle(request: web.Request) -> web.Response:
        limit = int((await request.json())["limit"])
        accounts = request.app[SANDBOX_STATE].accounts.values()
        for account in accounts:
            account.throttle.limit = limit
            account.throttle.reset()
        return web.json_response({"limit": limit, "accounts": len(accounts)})

    app.on_response_prepare.append(note)
    app.router.add_get("/_bench/searches", show)
    app.router.add_put("/_bench/throttle", throttle)
    return app


async def serve(port: int) -> None:
    runner = web.AppRunner(create_app(), access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT_S)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, backlog=1024).start()
    try:
        await asyncio.Event().wait()  # until SIGTERM ends the process
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1])))
