"""Declared routes: one declaration gives aiohttp its handler, the gate its access rule and OpenAPI its
description.

``@route(...)`` turns a handler into a :class:`Route` (it registers nothing); each views module lists its routes
in a ``ROUTES`` tuple and the app factory (``relay.api.app``) installs them with :func:`install`. Every route
declares its :class:`~relay.api.access.Access`; the gate checks that declaration before the handler runs.

A handler's parameters say what it takes: path parameters by name (``code: str``), ``body: SomeModel`` for a
JSON body and ``query: SomeModel`` for query parameters; its return annotation is the answer's model. The
wrapper parses and validates input (problems on failure) and serialises the answer, so handlers see typed
values only and the OpenAPI document cannot drift from what the handlers do.

Path parameters are ids chosen by the caller, and ids become Redis key names: each is checked against its
alphabet (by the parameter's name, see ``PATH_IDS``) before the handler runs, and one that does not fit gets
exactly the 404 of an id that fits but does not exist. That check comes after the body and query are parsed,
as a lookup would, so a malformed id and a missing one give the same answer to every request.
"""

import inspect
import json
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, get_type_hints

from aiohttp import web
from pydantic import BaseModel, ValidationError

from relay.api.access import Access
from relay.api.gate import GATE
from relay.api.problems import json_problem, validation_problem
from relay.api.schemas import CODE_PATTERN
from subscriptions.core import ids
from subscriptions.core.errors import NotFound

Handler = Callable[..., Awaitable[Any]]


@dataclass(frozen=True)
class Route:
    """One endpoint: what it answers to, who may call it, what it takes and gives (see the module's docstring)."""

    method: str
    path: str
    handler: Handler
    summary: str
    status: int
    access: Access
    tag: str
    errors: tuple[int, ...]
    body: type[BaseModel] | None
    query: type[BaseModel] | None
    response: type[BaseModel] | None
    path_params: tuple[str, ...]
    media_type: str = "application/json"


@dataclass(frozen=True)
class PathId:
    """What a path parameter names (``noun``, as the store's not-found answers say it) and its alphabet."""

    noun: str
    pattern: str

    def check(self, value: str) -> None:
        """Raise the not-found answer of an object named ``value`` unless ``value`` could name one."""
        if re.fullmatch(self.pattern.removeprefix("^").removesuffix("$"), value) is None:
            raise NotFound(f"{self.noun} {value!r} does not exist")


PATH_IDS = {
    "code": PathId("account", CODE_PATTERN),
    "sub_id": PathId("subscription", ids.id_pattern(ids.SUBSCRIPTION_PREFIX)),
    "delivery_id": PathId("delivery", ids.id_pattern(ids.DELIVERY_PREFIX)),
    "event_id": PathId("event", ids.id_pattern(ids.EVENT_PREFIX)),
    "key_id": PathId("API key", ids.id_pattern(ids.API_KEY_PREFIX)),
    "rec_id": PathId("recovery", ids.id_pattern(ids.RECOVERY_PREFIX)),
}
"""The alphabet of each path parameter, by name; a name not listed here gets ``OTHER_PATH_ID``'s."""

OTHER_PATH_ID = r"^[0-9A-Za-z_-]{1,128}$"  # no ':' (the key separator), '.', '/', '%' or anything non-ASCII


def path_id(name: str) -> PathId:
    return PATH_IDS.get(name) or PathId(name.replace("_", " "), OTHER_PATH_ID)


def _model(annotation: Any) -> type[BaseModel] | None:
    return annotation if inspect.isclass(annotation) and issubclass(annotation, BaseModel) else None


def route(
    method: str,
    path: str,
    *,
    summary: str,
    access: Access,
    status: int = 200,
    tag: str = "",
    errors: tuple[int, ...] = (),
    media_type: str = "application/json",
) -> Callable[[Handler], Route]:
    """The declaration of ``handler`` as the endpoint ``method path``, read from its signature (see above)."""

    def declare(handler: Handler) -> Route:
        hints = get_type_hints(handler)
        params = [p for p in inspect.signature(handler).parameters if p != "request"]
        return Route(
            method=method,
            path=path,
            handler=handler,
            summary=summary,
            status=status,
            access=access,
            tag=tag,
            errors=errors,
            body=_model(hints.get("body")),
            query=_model(hints.get("query")),
            response=_model(hints.get("return")),
            path_params=tuple(p for p in params if p not in ("body", "query")),
            media_type=media_type,
        )

    return declare


APP_ROUTES: web.AppKey[tuple[Route, ...]] = web.AppKey("relay_routes")
"""The routes an app serves, as declared (what its OpenAPI document describes)."""


def install(app: web.Application, routes: Sequence[Route]) -> None:
    """Serve ``routes`` on ``app``, each behind the access it declares; a route declaring none stops the start.

    The app must already hold its gate (``relay.api.gate.GATE``).
    """
    undeclared = [f"{r.method} {r.path}" for r in routes if not isinstance(r.access, Access)]
    if undeclared:
        raise ValueError(f"routes without a declared access, which nobody could call: {', '.join(undeclared)}")
    gate = app[GATE]
    for declared in routes:
        view = _view(declared)
        app.router.add_route(declared.method, declared.path, view)
        gate.declare(view, declared.access)
    app[APP_ROUTES] = app.get(APP_ROUTES, ()) + tuple(routes)


def _view(declared: Route) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def view(request: web.Request) -> web.StreamResponse:
        kwargs: dict[str, Any] = {}
        if declared.query is not None:
            try:
                kwargs["query"] = declared.query.model_validate(dict(request.query))
            except ValidationError as error:
                return validation_problem(error, "query parameters")
        if declared.body is not None:
            raw = await request.read()
            try:
                data = json.loads(raw) if raw.strip() else {}
            except json.JSONDecodeError as error:
                return json_problem(error)
            except UnicodeDecodeError:
                return json_problem(json.JSONDecodeError("body is not UTF-8", "", 0))
            except RecursionError:  # thousands of nested arrays or objects: no input of this API nests so deep
                return json_problem(json.JSONDecodeError("body is nested too deeply", "", 0))
            try:
                kwargs["body"] = declared.body.model_validate(data)
            except ValidationError as error:
                return validation_problem(error, "request body")
        for name in declared.path_params:  # after the input is parsed, where a lookup would be: the same answers
            path_id(name).check(request.match_info[name])
            kwargs[name] = request.match_info[name]
        result = await declared.handler(request, **kwargs)
        if isinstance(result, web.StreamResponse):
            return result
        if isinstance(result, BaseModel):
            return web.Response(status=declared.status, text=result.model_dump_json(), content_type="application/json")
        return web.json_response(result, status=declared.status)

    return view
