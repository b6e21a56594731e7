"""The gate: every request is checked against the access its route declares, before the handler reads anything.

Deny by default. The app factories register routes together with their :class:`~relay.api.access.Access`
(``relay.api.routing.install``, the dashboard's ``install``); a request whose route declares none, or declares
an access this app has no check for, is refused with a 403 and logged, whoever sends it. A request that matches
no route gets the access of the area its path falls in (``unmatched``): the API answers a request under
``/v1/`` without a valid token with 401, as for its real routes, so a caller without a token cannot tell which
endpoints exist; elsewhere it gets the 404 or 405 at once.

The checks themselves (which token, which key, which session) are in ``relay.api.auth`` and ``relay.ui.pages``;
each app gives its gate the checks of the accesses it serves.
"""

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from relay.api.access import Access
from relay.api.problems import Forbidden

log = logging.getLogger(__name__)

Check = Callable[[web.Request], Awaitable[None]]
"""Raises the error of a caller the access does not admit (``Unauthenticated``, ``Forbidden``, a redirect to
the login page); may put the caller on the request (``relay.api.access.PRINCIPAL_KEY``)."""


@dataclass
class Gate:
    """One app's access rules: the access each handler declares, and how each access is checked."""

    checks: dict[Access, Check]
    unmatched: tuple[tuple[str, Access], ...] = ()
    """The access a request matching no route needs, by path prefix (the first that matches); else open."""
    declared: dict[Any, Access] = field(default_factory=dict)
    """The access each registered handler declares (a handler, not a route: ``add_get`` also adds a HEAD route)."""

    def declare(self, handler: Any, access: Access) -> None:
        """Serve ``handler`` to the callers ``access`` admits; one handler cannot declare two accesses."""
        if self.declared.setdefault(handler, access) != access:
            raise ValueError(f"{handler!r} is declared both {self.declared[handler].value} and {access.value}")

    def access_of(self, request: web.Request) -> Access | None:
        """The access ``request`` needs: its route's declaration (None when it has none), or its area's."""
        match = request.match_info
        if match.http_exception is not None:
            return next((a for prefix, a in self.unmatched if request.path.startswith(prefix)), Access.OPEN)
        return self.declared.get(match.handler)


GATE = web.AppKey("relay_gate", Gate)


@web.middleware
async def gate(request: web.Request, handler: Any) -> web.StreamResponse:
    """Let ``request`` through only if its route's declared access admits the caller."""
    access = request.app[GATE].access_of(request)
    check = request.app[GATE].checks.get(access) if access is not None else None
    if check is None:
        log.error(
            "refused %s %s: its route declares no access this app can check (%s)", request.method, request.path, access
        )
        raise Forbidden(f"{request.method} {request.path} declares no access this server checks, so it serves nobody")
    await check(request)
    response: web.StreamResponse = await handler(request)
    return response
