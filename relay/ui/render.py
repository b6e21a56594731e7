"""Pages from Jinja2 templates, autoescaped, with headers that keep them to this origin.

One ``Environment`` and one ``page`` function are all the dashboard needs, so it uses Jinja2 directly rather
than through aiohttp-jinja2 (whose app-key setup and decorators would cost a dependency and save nothing).
Every value is escaped on output: response excerpts and payloads are text from the outside world.
"""

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web

from relay.ui import display

STATIC_DIR = Path(__file__).parent / "static"

# No script at all, styles from our own file only, forms back to us only, never framed.
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("relay.ui", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
ENV.filters["when"] = display.when
ENV.filters["percent"] = display.percent
ENV.filters["short_url"] = display.short_url
ENV.globals["ago"] = display.ago
ENV.globals["actual_interval"] = display.actual_interval
ENV.globals["delivery_badge"] = display.delivery_badge
ENV.globals["state_badge"] = display.state_badge


def page(
    template: str, values: Mapping[str, Any], *, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    """``template`` rendered with ``values`` as an HTML response (``headers`` added to the usual ones)."""
    text = ENV.get_template(template).render(values)
    return web.Response(text=text, status=status, content_type="text/html", headers={**HEADERS, **(headers or {})})
