"""The smallest webhook receiver: answers 204 to every POST and counts them; ``GET /count`` tells how many.

python bench/receiver.py PORT
"""

import sys

from aiohttp import web

received = 0


async def hook(request: web.Request) -> web.Response:
    global received  # noqa: PLW0603 - one counter in a one-purpose process
    await request.read()
    received += 1
    return web.Response(status=204)


async def count(request: web.Request) -> web.Response:
    return web.json_response({"received": received})


if __name__ == "__main__":
    app = web.Application()
    app.router.add_post("/{tail:.*}", hook)
    app.router.add_get("/count", count)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
