"""Where log lines go and what they look like: plain text for people, or JSON lines for log collectors.

``RELAY_LOG_FORMAT=json`` makes every line one JSON object: ``timestamp`` (ISO 8601, UTC), ``level``,
``logger``, ``message``, any ``extra={...}`` fields the call passed, and ``exception`` (the traceback text)
when one was logged. The text format is the one the relay has always written.
"""

import logging
from typing import Literal

from pythonjsonlogger.json import JsonFormatter

LogFormat = Literal["text", "json"]

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def json_formatter() -> logging.Formatter:
    """One JSON object per record; extras become top-level fields, a traceback becomes ``exception``."""
    return JsonFormatter(
        ["levelname", "name", "message"],
        rename_fields={"levelname": "level", "name": "logger", "exc_info": "exception"},
        timestamp=True,
    )


def log_level(level: str) -> int:
    """The numeric level of a name such as ``info`` or ``WARNING``; ``ValueError`` naming the choices if unknown."""
    number = logging.getLevelNamesMapping().get(level.strip().upper())
    if number is None:
        raise ValueError(f"expected one of DEBUG, INFO, WARNING, ERROR, CRITICAL, got {level!r}")
    return number


def configure_logging(level: str, fmt: LogFormat) -> None:
    """Send the process's logs to stderr at ``level`` in ``fmt``, replacing whatever handlers were set before."""
    handler = logging.StreamHandler()
    handler.setFormatter(json_formatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=log_level(level), handlers=[handler], force=True)
    logging.captureWarnings(True)  # Python's warnings come out as log lines, in the same format
