"""The connection-time guard on its own: the socket factory, the resolver and the check before sending."""

import socket

import pytest

from workers.guard import PublicOnlyResolver, TargetRefused, public_socket, refusal

TCP = (socket.SOCK_STREAM, socket.IPPROTO_TCP, "")


@pytest.mark.parametrize(
    ("family", "sockaddr", "why"),
    [
        (socket.AF_INET, ("127.0.0.1", 80), "127.0.0.1 is a loopback address"),
        (socket.AF_INET, ("0.0.0.0", 80), "0.0.0.0 is an unspecified address"),
        (socket.AF_INET, ("169.254.169.254", 80), "169.254.169.254 is a cloud metadata address"),
        (socket.AF_INET, ("10.0.0.1", 80), "10.0.0.1 is a private address"),
        (socket.AF_INET6, ("::1", 80, 0, 0), "::1 is a loopback address"),
        (socket.AF_INET6, ("::ffff:7f00:1", 80, 0, 0), "::ffff:7f00:1 is a loopback address"),
        (socket.AF_INET6, ("fe80::1%1", 80, 0, 1), "is a link-local address"),
        (socket.AF_INET, ("127.1", 80), "'127.1' is not an IP address"),  # the socket layer would read loopback
        (socket.AF_INET, ("2130706433", 80), "'2130706433' is not an IP address"),
        (socket.AF_INET, ("localhost", 80), "'localhost' is not an IP address"),
        (socket.AF_UNIX, ("/run/docker.sock",), "is not IPv4 or IPv6"),
    ],
)
def test_the_socket_factory_refuses_every_non_public_address(
    family: socket.AddressFamily, sockaddr: tuple[object, ...], why: str
) -> None:
    with pytest.raises(TargetRefused) as refused:
        public_socket((family, *TCP, sockaddr))
    assert str(refused.value).startswith("refused: ")
    assert why in str(refused.value)
    assert "RELAY_ALLOW_PRIVATE_TARGETS=true" in str(refused.value)


@pytest.mark.parametrize(
    ("family", "sockaddr"),
    [(socket.AF_INET, ("8.8.8.8", 443)), (socket.AF_INET6, ("2606:4700:4700::1111", 443, 0, 0))],
)
def test_the_socket_factory_makes_a_socket_for_a_public_address(
    family: socket.AddressFamily, sockaddr: tuple[object, ...]
) -> None:
    try:
        sock = public_socket((family, *TCP, sockaddr))
    except TargetRefused:
        raise
    except OSError as error:  # no IPv6 on this machine: the factory did not refuse, the kernel did
        pytest.skip(f"cannot make a {family.name} socket here: {error}")
    with sock:
        assert sock.family == family
        assert sock.type == socket.SOCK_STREAM


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://\U0001fbf1\U0001fbf2\U0001fbf7.0.0.1:8080/x", "refused: 127.0.0.1 is a loopback address"),
        ("http://\uff11\uff12\uff17.0.0.1/x", "refused: 127.0.0.1 is a loopback address"),
        ("http://[::ffff:127.0.0.1]/x", "refused: ::ffff:7f00:1 is a loopback address"),
        ("http://example.com@169.254.169.254/x", "refused: 169.254.169.254 is a cloud metadata address"),
        ("http://LOCALHOST/x", "refused: localhost is a loopback host name"),
        ("http://127.1/x", "refused: url host '127.1' is not a valid host name"),
        ("http://\u0661\u0662\u0667.0.0.1/x", "refused: url host '\u0661\u0662\u0667.0.0.1' is not a valid host name"),
        ("http://127.0.0.1\\@example.com/x", "refused: url 'http://127.0.0.1\\\\@example.com/x' is not a valid URL"),
    ],
)
def test_refusal_reads_the_url_as_the_client_does(url: str, why: str) -> None:
    found = refusal(url)
    assert found is not None
    assert found.startswith(why)


@pytest.mark.parametrize("url", ["https://example.com/hooks", "https://8.8.8.8/x", "https://[2606:4700::1111]/x"])
def test_refusal_lets_public_urls_through(url: str) -> None:
    assert refusal(url) is None


async def test_the_resolver_refuses_a_name_with_only_loopback_addresses() -> None:
    resolver = PublicOnlyResolver()
    try:
        with pytest.raises(TargetRefused, match=r"refused: localhost resolves only to 127\.0\.0\.1 is a loopback"):
            await resolver.resolve("localhost", 80, socket.AF_INET)
    finally:
        await resolver.close()
