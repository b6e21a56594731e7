"""``RELAY_REDIS_URL``: which Redis to use, read and checked without connecting to it.

Four kinds of URL:

- ``redis://[[user]:password@]host[:port][/db]``: a server over TCP (a managed Redis's endpoint too);
- ``rediss://…``: the same over TLS;
- ``unix://[[user]:password@]/path/to/redis.sock[?db=N]``: a server on this machine;
- ``redis+sentinel://[[user]:password@]host[:port][,host[:port]…]/service[/db]``: Redis Sentinel. The sentinels
  (port 26379 when none is given) are asked which server is the primary of ``service``; the relay follows it
  when a replica is promoted. ``user`` and ``password`` are for the primary; sentinels that need their own
  ``AUTH`` take ``?sentinel_password=…`` (and ``&sentinel_username=…``).

A URL that cannot work is refused with one line saying what was expected, never quoting a password.
"""

from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote, urlsplit

SENTINEL_SCHEME = "redis+sentinel"
DEFAULT_SENTINEL_PORT = 26379
SENTINEL_OPTIONS = ("sentinel_password", "sentinel_username")

ANY_FORM = "redis://host:port/db, rediss://…, unix://… or redis+sentinel://host:port[,host:port]/service[/db]"
SENTINEL_FORM = "redis+sentinel://host:port[,host:port]/service[/db]"
UNIX_FORM = "unix:///path/to/redis.sock[?db=N]"


class RedisUrlError(ValueError):
    """A ``RELAY_REDIS_URL`` that cannot work; the message says what was expected and quotes it, password hidden."""


@dataclass(frozen=True)
class SentinelUrl:
    """A ``redis+sentinel://`` URL, parsed."""

    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int = 0
    username: str | None = None
    password: str | None = None
    sentinel_username: str | None = None
    sentinel_password: str | None = None


def is_sentinel(url: str) -> bool:
    return url.strip().lower().startswith(SENTINEL_SCHEME + "://")


def check_redis_url(url: str) -> str:
    """``url`` without surrounding blanks, once it is a URL the relay can connect with; else :class:`RedisUrlError`."""
    url = url.strip()
    scheme = url.partition("://")[0].lower() if "://" in url else ""
    if scheme == SENTINEL_SCHEME:
        parse_sentinel_url(url)
        return url
    form = {"redis": "redis://host:port/db", "rediss": "rediss://host:port/db", "unix": UNIX_FORM}.get(scheme)
    if form is None:
        raise _error(url, ANY_FORM)
    try:
        if scheme == "unix" and not urlsplit(url).path:
            raise _error(url, form, "no socket path")
        if scheme != "unix":
            _check_server_url(url, form)
        from redis.asyncio.connection import parse_url  # noqa: PLC0415 - keep `relay --help` fast

        parse_url(url)  # the options after ``?``: what redis-py would refuse when connecting, refused now
    except RedisUrlError:
        raise
    except ValueError as error:  # "Invalid value for 'socket_timeout' in connection URL.", "Invalid IPv6 URL"
        raise _error(url, form, str(error).rstrip(".")) from None
    return url


def _check_server_url(url: str, form: str) -> None:
    parts = urlsplit(url)
    host_port = parts.netloc.rpartition("@")[2]
    if "," in host_port:
        raise _error(url, form, f"one host; for several sentinels use {SENTINEL_FORM}")
    if host_port.rpartition("]")[2].count(":") == 1:  # an IPv6 address is in brackets
        _port(host_port.rpartition(":")[2], url, form)
    db = unquote(parts.path).strip("/")
    if db and not (db.isascii() and db.isdigit()):
        raise _error(url, form, f"the database is a number, not {db!r}")


def parse_sentinel_url(url: str) -> SentinelUrl:
    """The sentinels, service, database and credentials of a ``redis+sentinel://`` URL; else :class:`RedisUrlError`."""
    url = url.strip()
    try:
        parts = urlsplit(url)
    except ValueError as error:  # "Invalid IPv6 URL"
        raise _error(url, SENTINEL_FORM, str(error)) from None
    userinfo, _, hosts = parts.netloc.rpartition("@")
    username, _, password = userinfo.partition(":")
    if not hosts:
        raise _error(url, SENTINEL_FORM, "no sentinel address")
    sentinels = tuple(_sentinel_address(address, url) for address in hosts.split(","))
    service, _, db = parts.path.removeprefix("/").partition("/")
    service, db = unquote(service), unquote(db).strip("/")
    if not service:
        raise _error(url, SENTINEL_FORM, "no service name")
    if db and not (db.isascii() and db.isdigit()):
        raise _error(url, SENTINEL_FORM, f"the database is a number, not {db!r}")
    options: dict[str, str] = {}
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name not in SENTINEL_OPTIONS:
            raise _error(url, SENTINEL_FORM, f"unknown option {name!r}; known: {', '.join(SENTINEL_OPTIONS)}")
        options[name] = value
    return SentinelUrl(
        sentinels=sentinels,
        service=service,
        db=int(db or 0),
        username=unquote(username) or None,
        password=unquote(password) or None,
        sentinel_username=options.get("sentinel_username") or None,
        sentinel_password=options.get("sentinel_password") or None,
    )


def _sentinel_address(address: str, url: str) -> tuple[str, int]:
    """``host:port``, ``host`` (port 26379), ``[IPv6]:port`` or ``[IPv6]``."""
    if address.startswith("["):
        host, _, rest = address[1:].partition("]")
        colon, port = rest[:1], rest[1:]
        malformed = not host or colon not in ("", ":")
    else:
        host, colon, port = address.partition(":")
        malformed = not host or ":" in port
    if malformed:
        raise _error(url, SENTINEL_FORM, f"a sentinel address is host:port, not {address!r}")
    return host, _port(port, url, SENTINEL_FORM) if colon else DEFAULT_SENTINEL_PORT


def _port(text: str, url: str, form: str) -> int:
    if not (text.isascii() and text.isdigit() and 1 <= int(text) <= 65535):
        raise _error(url, form, f"a port is a number from 1 to 65535, not {text!r}")
    return int(text)


def _error(url: str, form: str, reason: str = "") -> RedisUrlError:
    return RedisUrlError(f"expected {form}{f' ({reason})' if reason else ''}, got {redacted(url)!r}")


def redacted(url: str) -> str:
    """``url`` with its passwords (in the user part, or an option named ``…password``) shown as ``***``.

    Works on malformed URLs too, erring on the side of hiding: everything from the first ``:`` of the user part
    to the last ``@`` of the URL is hidden (a password may hold an unescaped ``/``, ``?`` or ``@``), and a user
    part with no ``:`` (a password given as the user name) is hidden whole.
    """
    scheme, slashes, rest = url.partition("//") if "//" in url else ("", "", url)
    userinfo, at, rest = rest.rpartition("@")
    if at:
        user, colon, _ = userinfo.partition(":")
        userinfo = f"{user}:***" if colon and "/" not in user else "***"
    head, question, query = rest.partition("?")
    if question:
        query = "&".join(_redacted_option(option) for option in query.split("&"))
    return f"{scheme}{slashes}{userinfo}{at}{head}{question}{query}"


def _redacted_option(option: str) -> str:
    name, equals, _ = option.partition("=")
    return f"{name}{equals}***" if equals and "password" in unquote(name).lower() else option
