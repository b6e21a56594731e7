"""Declared routes: one decorator gives aiohttp its handler and OpenAPI its description.

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
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, get_type_hints

from aiohttp import web
from pydantic import BaseModel, ValidationError
from pydantic.json_schema import models_json_schema

from relay.api.access import require_admin
from relay.api.problems import Problem, json_problem, validation_problem
from relay.api.schemas import CODE_PATTERN
from subscriptions import ids
from subscriptions.errors import NotFound

Handler = Callable[..., Awaitable[Any]]


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Handler
    summary: str
    status: int
    auth: bool
    admin: bool
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


class Router:
    """Collects routes from decorators; ``install`` adds them to an app, ``openapi`` describes them."""

    def __init__(self) -> None:
        self.routes: list[Route] = []

    def route(
        self,
        method: str,
        path: str,
        *,
        summary: str,
        status: int = 200,
        auth: bool = True,
        admin: bool = False,
        tag: str = "",
        errors: tuple[int, ...] = (),
        media_type: str = "application/json",
    ) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            hints = get_type_hints(handler)
            params = [p for p in inspect.signature(handler).parameters if p != "request"]
            path_params = tuple(p for p in params if p not in ("body", "query"))
            self.routes.append(
                Route(
                    method=method,
                    path=path,
                    handler=handler,
                    summary=summary,
                    status=status,
                    auth=auth,
                    admin=admin,
                    tag=tag,
                    errors=errors,
                    body=_model(hints.get("body")),
                    query=_model(hints.get("query")),
                    response=_model(hints.get("return")),
                    path_params=path_params,
                    media_type=media_type,
                )
            )
            return handler

        return register

    def install(self, app: web.Application) -> None:
        for route in self.routes:
            app.router.add_route(route.method, route.path, _view(route))


def _view(route: Route) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def view(request: web.Request) -> web.StreamResponse:
        if route.admin:
            require_admin(request)  # before the input is read: a scoped key learns nothing from validation
        kwargs: dict[str, Any] = {}
        if route.query is not None:
            try:
                kwargs["query"] = route.query.model_validate(dict(request.query))
            except ValidationError as error:
                return validation_problem(error, "query parameters")
        if route.body is not None:
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
                kwargs["body"] = route.body.model_validate(data)
            except ValidationError as error:
                return validation_problem(error, "request body")
        for name in route.path_params:  # after the input is parsed, where a lookup would be: the same answers
            path_id(name).check(request.match_info[name])
            kwargs[name] = request.match_info[name]
        result = await route.handler(request, **kwargs)
        if isinstance(result, web.StreamResponse):
            return result
        if isinstance(result, BaseModel):
            return web.Response(status=route.status, text=result.model_dump_json(), content_type="application/json")
        return web.json_response(result, status=route.status)

    return view


def openapi(routes: list[Route], *, title: str, version: str, description: str) -> dict[str, Any]:
    """An OpenAPI 3.1 document of ``routes``, its schemas generated from their pydantic models."""
    inputs = {m for r in routes for m in (r.body, r.query) if m is not None}
    outputs = {r.response for r in routes if r.response is not None} | {Problem}
    keyed = [(m, "validation") for m in sorted(inputs, key=lambda m: m.__name__)]
    keyed += [(m, "serialization") for m in sorted(outputs, key=lambda m: m.__name__)]
    refs, definitions = models_json_schema(keyed, ref_template="#/components/schemas/{model}")  # type: ignore[arg-type]
    schemas = definitions.get("$defs", {})
    problem_ref = refs[(Problem, "serialization")]
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        operation: dict[str, Any] = {
            "summary": route.summary,
            "operationId": route.handler.__name__,
            "tags": [route.tag] if route.tag else [],
            "responses": {},
        }
        parameters = [
            {
                "name": p,
                "in": "path",
                "required": True,
                # the alphabet as words, not as a schema "pattern": any string is accepted, one outside it is a 404
                "description": f"{path_id(p).noun} id; one that does not match {path_id(p).pattern} does not exist",
                "schema": {"type": "string"},
            }
            for p in route.path_params
        ]
        if route.query is not None:
            query_schema = route.query.model_json_schema(ref_template="#/components/schemas/{model}")
            required = set(query_schema.get("required", []))
            parameters += [
                {"name": name, "in": "query", "required": name in required, "schema": schema}
                for name, schema in query_schema.get("properties", {}).items()
            ]
        if parameters:
            operation["parameters"] = parameters
        if route.body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": refs[(route.body, "validation")]}},
            }
        success: dict[str, Any] = {"description": route.summary}
        if route.response is not None:
            success["content"] = {route.media_type: {"schema": refs[(route.response, "serialization")]}}
        elif route.media_type != "application/json":
            success["content"] = {route.media_type: {"schema": {"type": "string"}}}
        operation["responses"][str(route.status)] = success
        codes = set(route.errors)
        if route.admin:
            codes.add(403)
            operation["description"] = "Admin token only: an account-scoped key gets 403."
        if route.auth:
            codes |= {401, 503}  # every /v1/ route reads Redis: the middleware answers 503 while it is down
            operation["security"] = [{"bearerAuth": []}]
        else:
            operation["security"] = []
        if route.body is not None:
            codes |= {400, 413, 422}
        if route.query is not None:
            codes.add(422)
        for code in sorted(codes):
            operation["responses"][str(code)] = {
                "description": _DESCRIPTIONS.get(code, "problem"),
                "content": {"application/problem+json": {"schema": problem_ref}},
            }
        paths.setdefault(route.path, {})[route.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version, "description": description},
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}}},
    }


_DESCRIPTIONS = {
    400: "malformed JSON",
    401: "missing or wrong bearer token",
    403: "not allowed for this key",
    404: "no such object",
    409: "already exists",
    413: "request body too large",
    422: "input the relay cannot accept",
    429: "more than the account's limit allows",
    503: "storage unavailable",
}


router = Router()
"""The API's routes; each views module registers its own with ``@router.route``."""
