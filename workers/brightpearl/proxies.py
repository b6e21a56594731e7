"""Which proxy, if any, a Brightpearl request goes through: ``HTTPS_PROXY``, ``HTTP_PROXY`` and ``NO_PROXY`` (any
case) read from the environment once, then one dictionary lookup a host.

aiohttp's ``trust_env`` reads the environment and ``~/.netrc`` (in a thread) on every request: with thousands of
accounts polled every few seconds that was a fifth of a worker's CPU. The proxies a process uses do not change
while it runs, so they are read when it starts; a proxy needing credentials takes them in its URL
(``http://user:password@proxy:3128``), not from ``.netrc``.
"""

import functools
import urllib.request
from dataclasses import dataclass, field

from yarl import URL

# NO_PROXY's matching as urllib applies it (present at run time, missing from typeshed's stubs)
_bypass = urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]


@dataclass
class Proxies:
    """The environment's proxies, and the choice made for each scheme and host (hosts are few: Brightpearl's)."""

    by_scheme: dict[str, str]
    chosen: dict[tuple[str, str], str | None] = field(default_factory=dict)

    @classmethod
    def from_environment(cls) -> "Proxies":
        return cls(urllib.request.getproxies_environment())

    def for_url(self, url: str) -> str | None:
        """The proxy for ``url``, or ``None`` to connect directly (no proxy set for its scheme, or ``NO_PROXY``
        names its host)."""
        parsed = URL(url)
        key = (parsed.scheme, parsed.host or "")
        if key not in self.chosen:
            proxy = self.by_scheme.get(parsed.scheme)
            bypass = proxy is not None and _bypass(parsed.raw_authority or key[1], self.by_scheme)
            self.chosen[key] = None if bypass else proxy
        return self.chosen[key]


@functools.cache
def environment_proxies() -> Proxies:
    """The process's proxies, read from the environment the first time they are asked for."""
    return Proxies.from_environment()
