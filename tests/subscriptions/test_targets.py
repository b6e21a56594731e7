import ipaddress
from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from yarl import URL

from subscriptions.core.errors import InvalidInput
from subscriptions.core.targets import check_url, connect_host, forbidden_host_reason, forbidden_reason, literal_address


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/hooks",
        "http://example.com:8080/a?b=c",
        "https://[2606:4700::1111]/x",
        "http://127.0.0.1:9/",
    ],
)
def test_check_url_accepts(url: str) -> None:
    assert check_url(url) == url


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://example.com/", "http:// or https://"),
        ("example.com/hooks", "http:// or https://"),
        ("https:///nohost", "no host"),
        ("http://example.com:99999/", "not a valid URL"),
        ("http://exa mple.com/", "whitespace"),
        ("https://example.com/" + "a" * 2100, "longer than"),
        ("javascript:alert(1)", "http:// or https://"),
    ],
)
def test_check_url_refuses(url: str, why: str) -> None:
    with pytest.raises(InvalidInput, match=why):
        check_url(url)


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "metadata"),
        ("169.254.1.1", "link-local"),
        ("100.64.0.1", "carrier-grade NAT"),
        ("0.0.0.0", "unspecified"),
        ("::1", "loopback"),
        ("fe80::1", "link-local"),
        ("fd12:3456::1", "unique-local"),
        ("fd00:ec2::254", "metadata"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:169.254.169.254", "metadata"),
        ("::ffff:10.0.0.1", "private"),
        ("2002:a00:1::", "private"),  # 6to4 of 10.0.0.1
        ("64:ff9b::7f00:1", "loopback"),  # NAT64 of 127.0.0.1
        ("224.0.0.1", "multicast"),
    ],
)
def test_forbidden_addresses(address: str, reason: str) -> None:
    found = forbidden_reason(ipaddress.ip_address(address))
    assert found is not None
    assert reason in found


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses(address: str) -> None:
    assert forbidden_reason(ipaddress.ip_address(address)) is None


def test_literal_address() -> None:
    assert literal_address("http://127.0.0.1:80/x") == ipaddress.ip_address("127.0.0.1")
    assert literal_address("http://[::1]/x") == ipaddress.ip_address("::1")
    assert literal_address("https://example.com/") is None


# The host as the delivery client reads it ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("https://example.com/hooks", "example.com"),
        ("https://Hooks.Example.COM:8443/x", "hooks.example.com"),
        ("https://xn--bcher-kva.example/", "xn--bcher-kva.example"),
        ("https://under_score.example.com/", "under_score.example.com"),
        ("https://user:secret@example.com/", "example.com"),
        ("http://8.8.8.8/", "8.8.8.8"),
        ("http://0.0.0.0/", "0.0.0.0"),
        ("http://example.com@127.0.0.1/", "127.0.0.1"),  # userinfo: the host is what follows the @
        ("http://127.0.0.1#@example.com/", "127.0.0.1"),
        ("http://127.0.0.1?@example.com/", "127.0.0.1"),
        ("http://[::1]/", "::1"),
        ("http://[::ffff:127.0.0.1]/", "::ffff:7f00:1"),
        ("http://[0:0:0:0:0:FFFF:7F00:1]/", "::ffff:7f00:1"),
        ("http://[2606:4700:4700::1111]:8080/", "2606:4700:4700::1111"),
    ],
)
def test_connect_host_is_the_host_the_client_connects_to(url: str, host: str) -> None:
    assert connect_host(url) == host
    assert URL(url).raw_host == host
    assert check_url(url) == url


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://\U0001fbf1\U0001fbf2\U0001fbf7.0.0.1/", "write it in ASCII"),  # yarl reads 127.0.0.1
        ("http://\uff11\uff12\uff17.0.0.1/", "write it in ASCII"),
        ("http://127\u30020\u30020\u30021/", "write it in ASCII"),
        ("http://\u0661\u0662\u0667.0.0.1/", "write it in ASCII"),
        ("http://\u0967\u0968\u096d.0.0.1/", "write it in ASCII"),
        ("http://b\u00fccher.example/", "xn-- form"),
        ("http://\u210c.com/", "write it in ASCII"),  # yarl reads h.com
        ("http://127.0.0.1:\uff18\uff10/", "not a valid"),
        ("http://127.0.0.1./", "trailing dot"),
        ("http://localhost./", "trailing dot"),
        ("http://example.com./", "trailing dot"),
        ("http://127.1/", "four decimal numbers"),
        ("http://127.0.1/", "four decimal numbers"),
        ("http://0x7f.0.0.1/", "four decimal numbers"),
        ("http://0177.0.0.1/", "four decimal numbers"),
        ("http://127.0.0.01/", "four decimal numbers"),
        ("http://2130706433/", "four decimal numbers"),
        ("http://0x7f000001/", "four decimal numbers"),
        ("http://0/", "four decimal numbers"),
        ("http://1.2.3.4.5/", "four decimal numbers"),
        ("http://256.0.0.1/", "four decimal numbers"),
        ("http://example.0x1/", "four decimal numbers"),
        ("http://%31%32%37.0.0.1/", "percent-escapes"),
        ("http://ex%61mple.com/", "percent-escapes"),
        ("http://127.0.0.1%00.example.com/", "percent-escapes"),
        ("http://[fe80::1%25eth0]/", "zone"),
        ("http://127.0.0.1\\@example.com/", "not a valid URL"),
        ("http://example.com:80\\@127.0.0.1/", "not a valid URL"),
        ("http://[127.0.0.1]/", "not a valid URL"),
        ("http://a..example/", "not a valid host name"),
        ("http://-a.example/", "not a valid host name"),
        ("http://exa!mple.com/", "not a valid host name"),
        ("http://u[@example.com/", "not a valid URL"),
        ("http://[::1]@example.com/", "not a valid URL"),
    ],
)
def test_hosts_not_written_plainly_are_refused(url: str, why: str) -> None:
    with pytest.raises(InvalidInput, match=why):
        check_url(url)
    with pytest.raises(InvalidInput, match=why):
        connect_host(url)


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("::ffff:7f00:1", "loopback"),
        ("0.0.0.0", "unspecified"),
        ("169.254.169.254", "metadata"),
        ("localhost", "loopback host name"),
        ("api.localhost", "loopback host name"),
        ("localhost.", "loopback host name"),
        ("example.com", None),
        ("localhost.example.com", None),
        ("8.8.8.8", None),
    ],
)
def test_forbidden_host_reason(host: str, reason: str | None) -> None:
    found = forbidden_host_reason(host)
    assert found == reason if reason is None else (found is not None and reason in found)


@settings(max_examples=500, deadline=None)
@given(host=st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=20))
def test_a_host_accepted_is_plain_ascii_and_the_one_the_client_connects_to(host: str) -> None:
    url = f"http://{host}:8080/x"
    try:
        found = connect_host(url)
    except InvalidInput:
        return
    assert found.isascii()
    assert found == URL(url).raw_host
    assert URL(url).explicit_port == urlsplit(url).port  # both parsers agree on where to connect
    address = literal_address(url)
    if address is not None:
        assert str(address) == found  # an IP literal only in its one canonical spelling
    else:
        assert not found.rsplit(".", 1)[-1].isdigit()  # a name never ends in a number
