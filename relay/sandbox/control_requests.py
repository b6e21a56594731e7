"""Reading a control-API request: its JSON body against a pydantic model, the account and ids in its path, the
timestamps it names; and the one shape of a 201 for things made.

Every body model subclasses :class:`ControlBody` (unknown keys refused, no type coercion); a body that is not a
JSON object, a path id that is not a number and a timestamp that does not parse are :class:`BadRequest` or
:class:`~subscriptions.core.errors.NotFound`, which :func:`relay.sandbox.control.control_errors` maps to HTTP.
"""

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Protocol, TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from relay.sandbox.account import SandboxAccount
from relay.sandbox.state import SANDBOX_STATE
from relay.sandbox.times import TimestampError, format_utc, parse_timestamp
from subscriptions.core.errors import NotFound, RelayError

PREFIX = "/_sandbox"
M = TypeVar("M", bound=BaseModel)

OffsetMinutes = Annotated[int, Field(ge=-720, le=840)]  # UTC-12:00 to UTC+14:00
Credential = Annotated[str, Field(min_length=1)]


class BadRequest(RelayError):
    """A control request whose body or path cannot be read."""


class ControlBody(BaseModel):
    """A control request's JSON body: unknown keys are refused and values are not coerced."""

    model_config = ConfigDict(extra="forbid", strict=True)


async def read_body(request: web.Request, model: type[M]) -> M:
    """The request's body as ``model``; an empty body is ``{}``."""
    raw = await request.read()
    try:
        data = json.loads(raw) if raw.strip() else {}
    except ValueError as error:  # UnicodeDecodeError included
        raise BadRequest(f"the body is not JSON: {error}") from error
    if not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object")
    return model.model_validate(data)


def account_of(request: web.Request) -> SandboxAccount:
    """The account named by ``{code}`` in the path."""
    return request.app[SANDBOX_STATE].account(request.match_info["code"])


def origin(request: web.Request) -> str:
    return str(request.url.origin())


def path_id(request: web.Request, name: str, what: str) -> int:
    """The id in the path; a :class:`NotFound` naming ``what`` when it is not a number."""
    text = request.match_info[name]
    if not text.isdigit():
        raise NotFound(f"{what} {text} does not exist in account {request.match_info['code']}")
    return int(text)


def timestamp(name: str, text: str | None) -> datetime | None:
    """The body's timestamp ``name`` (ISO-8601 with an offset), if given; :class:`BadRequest` if it does not parse."""
    try:
        return parse_timestamp(text) if text is not None else None
    except TimestampError as error:
        raise BadRequest(f"{name}: {error}") from error


def nothing_to_change(body: BaseModel) -> None:
    """:class:`BadRequest` for a change body that names no field."""
    if not body.model_fields_set:
        raise BadRequest("the body names nothing to change")


class Made(Protocol):
    @property
    def id(self) -> int: ...

    @property
    def created_on(self) -> datetime: ...


def made(things: Sequence[Made]) -> web.Response:
    """The 201 for orders, products or contacts just made: their ids and their shared ``createdOn``."""
    return web.json_response(
        {"ids": [t.id for t in things], "created_on": format_utc(things[0].created_on)}, status=201
    )


def utc_or_none(value: datetime | None) -> str | None:
    """``value`` as UTC ISO-8601, or ``None`` (an order that has never changed has no ``updatedOn``)."""
    return format_utc(value) if value else None
