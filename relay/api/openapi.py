"""The API's OpenAPI 3.1 document, built from the same route declarations the app serves and the gate checks.

Each operation says who may call it (``security``, and a line for admin-only routes), what it takes (path,
query and body, their schemas generated from the pydantic models) and every answer it can give: its success,
the problems its declaration lists, and those that follow from its access and inputs (401 and 503 for a route
that needs a token, 403 for an admin-only one, 400/413/422 for a body, 422 for a query).
"""

from collections.abc import Sequence
from typing import Any

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from relay.api.access import Access
from relay.api.problems import Problem
from relay.api.routing import APP_ROUTES, Route, path_id, route

TITLE = "Brightpearl webhook relay"
VERSION = "0.1.0"
DESCRIPTION = (
    "Polls Brightpearl accounts within their rate limit and delivers every change as a Standard Webhooks "
    "signed HTTP callback. Every path under /v1/ needs 'Authorization: Bearer <token>'. Errors are "
    "application/problem+json. Lists answer {items, next_cursor}, newest first."
)

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

Refs = dict[tuple[type[BaseModel], str], dict[str, Any]]


def document(
    routes: Sequence[Route], *, title: str = TITLE, version: str = VERSION, description: str = DESCRIPTION
) -> dict[str, Any]:
    """An OpenAPI 3.1 document of ``routes``, its schemas generated from their pydantic models."""
    refs, schemas = _schemas(routes)
    paths: dict[str, dict[str, Any]] = {}
    for declared in routes:
        paths.setdefault(declared.path, {})[declared.method.lower()] = _operation(declared, refs)
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version, "description": description},
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}}},
    }


def _schemas(routes: Sequence[Route]) -> tuple[Refs, dict[str, Any]]:
    """The reference of each model the routes take or give (and of :class:`Problem`), and their schemas."""
    inputs = {m for r in routes for m in (r.body, r.query) if m is not None}
    outputs = {r.response for r in routes if r.response is not None} | {Problem}
    keyed = [(m, "validation") for m in sorted(inputs, key=lambda m: m.__name__)]
    keyed += [(m, "serialization") for m in sorted(outputs, key=lambda m: m.__name__)]
    refs, definitions = models_json_schema(keyed, ref_template="#/components/schemas/{model}")  # type: ignore[arg-type]
    return refs, definitions.get("$defs", {})  # type: ignore[return-value]


def _operation(declared: Route, refs: Refs) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": declared.summary,
        "operationId": declared.handler.__name__,
        "tags": [declared.tag] if declared.tag else [],
        "responses": {},
    }
    parameters = _parameters(declared)
    if parameters:
        operation["parameters"] = parameters
    if declared.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": refs[(declared.body, "validation")]}},
        }
    success: dict[str, Any] = {"description": declared.summary}
    if declared.response is not None:
        success["content"] = {declared.media_type: {"schema": refs[(declared.response, "serialization")]}}
    elif declared.media_type != "application/json":
        success["content"] = {declared.media_type: {"schema": {"type": "string"}}}
    operation["responses"][str(declared.status)] = success
    if declared.access == Access.ADMIN:
        operation["description"] = "Admin token only: an account-scoped key gets 403."
    operation["security"] = [{"bearerAuth": []}] if declared.access.needs_bearer_token else []
    problem = {"application/problem+json": {"schema": refs[(Problem, "serialization")]}}
    page = {declared.media_type: {"schema": {"type": "string"}}}
    for code in sorted(_problem_statuses(declared)):
        # a route that answers pages (the OAuth callback) answers its own errors as pages, for the person reading
        pages = code in declared.errors and declared.media_type == "text/html"
        operation["responses"][str(code)] = {
            "description": _DESCRIPTIONS.get(code, "problem"),
            "content": page if pages else problem,
        }
    return operation


def _parameters(declared: Route) -> list[dict[str, Any]]:
    parameters = [
        {
            "name": p,
            "in": "path",
            "required": True,
            # the alphabet as words, not as a schema "pattern": any string is accepted, one outside it is a 404
            "description": f"{path_id(p).noun} id; one that does not match {path_id(p).pattern} does not exist",
            "schema": {"type": "string"},
        }
        for p in declared.path_params
    ]
    if declared.query is not None:
        query_schema = declared.query.model_json_schema(ref_template="#/components/schemas/{model}")
        required = set(query_schema.get("required", []))
        parameters += [
            {"name": name, "in": "query", "required": name in required, "schema": schema}
            for name, schema in query_schema.get("properties", {}).items()
        ]
    return parameters


def _problem_statuses(declared: Route) -> set[int]:
    """The problem answers a route can give: those it declares, and those its access and inputs imply."""
    codes = set(declared.errors)
    if declared.access == Access.ADMIN:
        codes.add(403)
    if declared.access == Access.METRICS:
        codes.add(401)
    if declared.access.needs_bearer_token:
        codes |= {401, 503}  # every /v1/ route reads Redis: the middleware answers 503 while it is down
    if declared.body is not None:
        codes |= {400, 413, 422}
    if declared.query is not None:
        codes.add(422)
    return codes


@route("GET", "/openapi.json", summary="This API's OpenAPI 3.1 description", access=Access.OPEN, tag="operations")
async def openapi_json(request: web.Request) -> web.Response:
    routes = request.app[APP_ROUTES]
    return web.json_response(document(routes))
