"""``RELAY_REDIS_URL`` read and checked without connecting: the kinds it takes, the one line it refuses others
with, and passwords never shown."""

import pytest
from pydantic import ValidationError

from relay.redis_url import RedisUrlError, SentinelUrl, check_redis_url, parse_sentinel_url, redacted
from relay.settings import Settings, describe_error

GOOD = [
    "redis://127.0.0.1:6379/0",
    "redis://localhost",
    "redis://:secret@redis.internal:6379/3",
    "redis://relay:secret@redis.internal:6379/3",
    "redis://[::1]:6379/0",
    "redis://h:6379/0?socket_timeout=2",
    "rediss://cache.example.com:6380/0",
    "rediss://h:6380/0?ssl_cert_reqs=none",
    "unix:///run/redis/redis.sock",
    "unix:///run/redis/redis.sock?db=2",
    "redis+sentinel://10.0.0.1:26379/relay",
    "redis+sentinel://10.0.0.1:26379,10.0.0.2:26379,10.0.0.3:26379/relay/2",
    "redis+sentinel://s1,s2/relay",
    "redis+sentinel://:secret@s1:26379/relay/0",
    "redis+sentinel://[::1]:26379,[fe80::2]/relay",
    "redis+sentinel://s1:26379/relay?sentinel_password=other",
    "  redis://127.0.0.1:6379/0  ",
]

EVERY_KIND = (
    "expected redis://host:port/db, rediss://…, unix://… or redis+sentinel://host:port[,host:port]/service[/db]"
)
SENTINEL = "expected redis+sentinel://host:port[,host:port]/service[/db]"

BAD = [
    ("localhost:6379", f"{EVERY_KIND}, got 'localhost:6379'"),
    ("127.0.0.1", f"{EVERY_KIND}, got '127.0.0.1'"),
    ("http://h:6379/0", f"{EVERY_KIND}, got 'http://h:6379/0'"),
    ("sentinel://h:26379/relay", f"{EVERY_KIND}, got 'sentinel://h:26379/relay'"),
    ("redis://h:port/0", "expected redis://host:port/db (a port is a number from 1 to 65535, not 'port')"),
    ("redis://h:70000/0", "(a port is a number from 1 to 65535, not '70000')"),
    ("redis://h:6379/zero", "(the database is a number, not 'zero')"),
    ("redis://h1:6379,h2:6379/0", "(one host; for several sentinels use redis+sentinel://"),
    ("redis://h/0?socket_timeout=soon", "(Invalid value for 'socket_timeout' in connection URL)"),
    ("redis://[::1/0", "(Invalid IPv6 URL)"),
    ("rediss://h:x/0", "expected rediss://host:port/db (a port is"),
    ("unix://", "expected unix:///path/to/redis.sock[?db=N] (no socket path)"),
    ("redis+sentinel://s1:26379", f"{SENTINEL} (no service name), got 'redis+sentinel://s1:26379'"),
    ("redis+sentinel://s1:26379/", f"{SENTINEL} (no service name)"),
    ("redis+sentinel:///relay", f"{SENTINEL} (no sentinel address)"),
    ("redis+sentinel://s1:26379,/relay", f"{SENTINEL} (a sentinel address is host:port, not '')"),
    ("redis+sentinel://s1:x/relay", f"{SENTINEL} (a port is a number from 1 to 65535, not 'x')"),
    ("redis+sentinel://s1:1:2/relay", f"{SENTINEL} (a sentinel address is host:port, not 's1:1:2')"),
    ("redis+sentinel://s1:/relay", f"{SENTINEL} (a port is a number from 1 to 65535, not '')"),
    ("redis+sentinel://[::1]x/relay", f"{SENTINEL} (a sentinel address is host:port, not '[::1]x')"),
    ("redis+sentinel://[::1/relay", f"{SENTINEL} (Invalid IPv6 URL)"),
    ("redis+sentinel://s1/relay/one", f"{SENTINEL} (the database is a number, not 'one')"),
    ("redis+sentinel://s1/relay/0/1", f"{SENTINEL} (the database is a number, not '0/1')"),
    (
        "redis+sentinel://s1/relay?db=1",
        f"{SENTINEL} (unknown option 'db'; known: sentinel_password, sentinel_username)",
    ),
]


@pytest.mark.parametrize("url", GOOD)
def test_urls_the_relay_can_use_are_taken_as_they_are(url: str) -> None:
    assert check_redis_url(url) == url.strip()


@pytest.mark.parametrize(("url", "message"), BAD)
def test_urls_that_cannot_work_are_refused_saying_what_was_expected(url: str, message: str) -> None:
    with pytest.raises(RedisUrlError) as refused:
        check_redis_url(url)
    assert message in str(refused.value)
    assert str(refused.value).startswith("expected ")


@pytest.mark.parametrize(
    ("url", "parsed"),
    [
        ("redis+sentinel://s1:26379/relay", SentinelUrl((("s1", 26379),), "relay")),
        (
            "redis+sentinel://s1:1,s2,[::1]:3/relay/4",
            SentinelUrl((("s1", 1), ("s2", 26379), ("::1", 3)), "relay", db=4),
        ),
        ("redis+sentinel://:p%40ss@s1/relay", SentinelUrl((("s1", 26379),), "relay", password="p@ss")),
        (
            "redis+sentinel://relay:pw@s1/my%20svc/",
            SentinelUrl((("s1", 26379),), "my svc", username="relay", password="pw"),
        ),
        (
            "redis+sentinel://s1/relay?sentinel_username=watch&sentinel_password=a%26b",
            SentinelUrl((("s1", 26379),), "relay", sentinel_username="watch", sentinel_password="a&b"),
        ),
    ],
)
def test_sentinel_urls_name_the_sentinels_service_database_and_credentials(url: str, parsed: SentinelUrl) -> None:
    assert parse_sentinel_url(url) == parsed


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("redis://:hunter2@h:6379/0", "redis://:***@h:6379/0"),
        ("redis://relay:hunter2@h:6379/0", "redis://relay:***@h:6379/0"),
        ("redis://hunter2@h:6379/0", "redis://***@h:6379/0"),  # a password given as the user name
        ("redis://:hun/ter?2@h:6379/0", "redis://:***@h:6379/0"),  # unescaped / and ? in the password
        ("redis://:a@b@h/0", "redis://:***@h/0"),
        ("unix:///run/redis.sock?db=0&password=hunter2", "unix:///run/redis.sock?db=0&password=***"),
        (
            "redis+sentinel://:hunter2@s1/relay?sentinel_password=hunter3",
            "redis+sentinel://:***@s1/relay?sentinel_password=***",
        ),
        (":hunter2@localhost:6379", ":***@localhost:6379"),  # no scheme
        ("hunter2@localhost", "***@localhost"),
    ],
)
def test_passwords_are_never_shown(url: str, shown: str) -> None:
    assert redacted(url) == shown


def settings_error(monkeypatch: pytest.MonkeyPatch, url: str) -> str:
    monkeypatch.setenv("RELAY_REDIS_URL", url)
    with pytest.raises(ValidationError) as refused:
        Settings()
    return describe_error(refused.value)


def test_a_malformed_url_is_one_line_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    assert settings_error(monkeypatch, "localhost:6379") == (
        "RELAY_REDIS_URL: expected redis://host:port/db, rediss://…, unix://… or "
        "redis+sentinel://host:port[,host:port]/service[/db], got 'localhost:6379'"
    )


@pytest.mark.parametrize(
    "url", ["redis://:hunter2@h:port/0", "hunter2@localhost:6379", "redis+sentinel://:hunter2@s1?sentinel_password=x"]
)
def test_a_malformed_url_with_a_password_is_refused_without_it(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    message = settings_error(monkeypatch, url)
    assert message.startswith("RELAY_REDIS_URL: expected ")
    assert "hunter2" not in message
    assert "***" in message


@pytest.mark.parametrize(
    ("value", "kept"), [("", None), ("   ", None), (" redis+sentinel://s1/relay ", "redis+sentinel://s1/relay")]
)
def test_an_empty_url_is_no_url_and_blanks_around_one_are_dropped(
    monkeypatch: pytest.MonkeyPatch, value: str, kept: str | None
) -> None:
    monkeypatch.setenv("RELAY_REDIS_URL", value)
    assert Settings().redis_url == kept
