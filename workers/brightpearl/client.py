"""The one place that talks to Brightpearl: URLs, auth headers, envelopes, throttling, paging, id sets.

Every request spends from the account's :class:`~workers.budget.RequestBudget` first. Every answer's
``brightpearl-requests-remaining`` and ``brightpearl-next-throttle-period`` are read; a 503 "too many
requests" pauses the whole account (every process) for the throttle period and the request is tried again,
instead of failing the poll.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Literal, Protocol

import aiohttp

from workers.brightpearl.answers import messages_of, read_body, response_of, unwrap
from workers.brightpearl.errors import BrightpearlError, RequestRejected, Unavailable
from workers.brightpearl.idset import chunk_id_sets, compress_ids
from workers.brightpearl.oauth import is_token_refused
from workers.brightpearl.proxies import environment_proxies
from workers.brightpearl.search import MAX_PAGE_SIZE, SearchPage, parse_search
from workers.budget import BudgetExhausted, Priority, RequestBudget

log = logging.getLogger(__name__)

AuthKind = Literal["account_token", "staff_token", "oauth"]
DEFAULT_THROTTLE_WAIT_MS = 5_000  # when a throttled answer does not say how long to wait
MAX_THROTTLE_WAIT_MS = 60_000  # Brightpearl's periods are under a minute
MAX_IDS_PER_GET = 200
MAX_DROPPED_PER_CALL = 10  # more ids refused alone in one get_keyed: the request is refused, not its ids


def datacenter_base_url(datacenter: str, account_code: str) -> str:
    """``https://euw1.brightpearlconnect.com/public-api/acme`` for datacenter ``euw1`` and account ``acme``."""
    return f"https://{datacenter}.brightpearlconnect.com/public-api/{account_code}"


class AccessTokens(Protocol):
    """Where an OAuth account's access token comes from (``workers.oauth_tokens.AccountTokens``)."""

    async def current(self) -> str:
        """A valid access token, refreshed first if it is due."""
        ...

    async def after_unauthorized(self, token_used: str) -> str:
        """The token to try again with after Brightpearl refused ``token_used`` (expired or invalid)."""
        ...


@dataclass(frozen=True)
class Credentials:
    """How to reach and authenticate against one Brightpearl account.

    Private apps send their token (``auth`` ``account_token`` or ``staff_token``). OAuth instance apps
    (``auth="oauth"``) send ``Authorization: Bearer`` with an access token from ``access``, their app reference and
    ``dev_ref`` (API.md 2.1); ``token`` is then unused."""

    base_url: str
    app_ref: str
    token: str = field(repr=False)
    auth: AuthKind = "account_token"
    dev_ref: str = ""
    access: AccessTokens | None = field(default=None, repr=False, compare=False)

    def headers(self, access_token: str = "") -> dict[str, str]:
        if self.auth == "oauth":
            return {
                "authorization": f"Bearer {access_token}",
                "brightpearl-app-ref": self.app_ref,
                "brightpearl-dev-ref": self.dev_ref,
                "accept": "application/json",
            }
        token_header = "brightpearl-staff-token" if self.auth == "staff_token" else "brightpearl-account-token"
        return {"brightpearl-app-ref": self.app_ref, token_header: self.token, "accept": "application/json"}


@dataclass(frozen=True)
class RateInfo:
    """What the last answer said about the account's throttle."""

    requests_remaining: int | None
    next_throttle_period_ms: int | None
    # Brightpearl's clock when it answered (the ``Date`` header, whole seconds), ``None`` without one: what
    # closes a second for good (see workers.stream.follow)
    server_time: datetime | None = None


def parse_date_header(headers: Mapping[str, str]) -> datetime | None:
    """The ``Date`` header as an aware UTC time; ``None`` when absent or unreadable."""
    value = headers.get("date")
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _int_header(headers: Mapping[str, str], name: str) -> int | None:
    value = headers.get(name)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def without_token(status: int, payload: Any, token: str) -> Any:
    """An error answer with ``token`` blanked wherever it appears: Brightpearl's 401 "Invalid instance token: …"
    may quote the token it refused, and an error's messages reach logs, the account status and the API."""
    if 200 <= status < 300 or not token:
        return payload
    if isinstance(payload, str):
        return payload.replace(token, "[token]")
    if isinstance(payload, list):
        return [without_token(status, item, token) for item in payload]
    if isinstance(payload, dict):
        return {key: without_token(status, value, token) for key, value in payload.items()}
    return payload


class BrightpearlClient:
    """Requests to one account over a shared ``aiohttp.ClientSession``."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        credentials: Credentials,
        *,
        budget: RequestBudget | None = None,
        timeout_s: float = 30.0,
        max_throttle_waits: int = 4,
        max_budget_wait_s: float = 60.0,
        page_size: int = MAX_PAGE_SIZE,
        priority: Priority = "high",
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.session = session
        self.credentials = credentials
        self.budget = budget
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.max_throttle_waits = max_throttle_waits
        self.max_budget_wait_s = max_budget_wait_s
        self.page_size = page_size  # rows per search page (Brightpearl's maximum; tests use small pages)
        self.priority = priority
        self.sleep = sleep
        self.rate = RateInfo(None, None)
        self.requests_made = 0
        self.throttles_met = 0  # answers that were Brightpearl's throttle
        self.token_refusals = 0  # 401s refusing an OAuth access token (expired or invalid)
        self.dropped_ids: list[int] = []  # ids get_keyed dropped because Brightpearl refused them alone

    def url(self, path: str) -> str:
        return f"{self.credentials.base_url.rstrip('/')}/{path.lstrip('/')}"

    async def request(
        self, method: str, path: str, *, params: Mapping[str, str] | None = None, body: Any = None
    ) -> Any:
        """The JSON body of a successful answer; :class:`BrightpearlError` otherwise."""
        url = self.url(path)
        for throttled in range(self.max_throttle_waits + 1):
            await self._acquire(method, url)
            status, headers, payload = await self._send_authorized(method, url, params, body)
            await self._pace()
            wait_ms = self._throttle_wait_ms(status, payload, headers)
            if wait_ms is None:
                return self._unwrap(method, url, status, payload)
            self.throttles_met += 1
            log.warning(
                "Brightpearl throttled %s %s; waiting %d ms (%d of %d)",
                method,
                path,
                wait_ms,
                throttled + 1,
                self.max_throttle_waits,
            )
            if throttled == self.max_throttle_waits:
                break
            if self.budget is not None:
                await self.budget.pause(wait_ms)  # every process holds off; acquire() waits it out
            else:
                await self.sleep(wait_ms / 1000)
        raise Unavailable(
            method, url, 503, [f"still throttled after {self.max_throttle_waits} waits"], kind="throttled"
        )

    async def _acquire(self, method: str, url: str) -> None:
        """A slot from the account's budget for one request."""
        if self.budget is not None:
            try:
                await self.budget.acquire(max_wait_s=self.max_budget_wait_s, priority=self.priority)
            except BudgetExhausted as error:
                raise Unavailable(method, url, None, [str(error)], kind="budget") from error

    async def _send_authorized(
        self, method: str, url: str, params: Mapping[str, str] | None, body: Any
    ) -> tuple[int, Mapping[str, str], Any]:
        """One request with the account's credentials; an OAuth account's request is sent once more, with the
        token the token manager gives, after Brightpearl refuses the token ("Authorization token expired",
        "Invalid instance token"): once, so a token refused again is an ``AuthenticationFailed``."""
        access = self.credentials.access
        if self.credentials.auth != "oauth" or access is None:
            return await self._send(method, url, params, body, self.credentials.headers())
        token = await access.current()
        status, headers, payload = await self._send(method, url, params, body, self.credentials.headers(token))
        if not is_token_refused(status, messages_of(payload)):
            return status, headers, without_token(status, payload, token)
        self.token_refusals += 1
        token = await access.after_unauthorized(token)
        await self._acquire(method, url)  # the retry is a request like any other
        status, headers, payload = await self._send(method, url, params, body, self.credentials.headers(token))
        return status, headers, without_token(status, payload, token)

    async def _send(
        self, method: str, url: str, params: Mapping[str, str] | None, body: Any, request_headers: Mapping[str, str]
    ) -> tuple[int, Mapping[str, str], Any]:
        self.requests_made += 1
        try:
            async with self.session.request(
                method,
                url,
                params=params,
                json=body,
                headers=request_headers,
                timeout=self.timeout,
                allow_redirects=False,
                proxy=environment_proxies().for_url(url),
            ) as response:
                text = await response.text()
                headers = response.headers
                status = response.status
        except TimeoutError as error:
            raise Unavailable(
                method, url, None, [f"no answer within {self.timeout.total} s"], kind="timeout"
            ) from error
        except aiohttp.ClientError as error:
            raise Unavailable(method, url, None, [f"{type(error).__name__}: {error}"], kind="network") from error
        self.rate = RateInfo(
            _int_header(headers, "brightpearl-requests-remaining"),
            _int_header(headers, "brightpearl-next-throttle-period"),
            parse_date_header(headers),
        )
        return status, headers, read_body(method, url, status, headers.get("Content-Type", ""), text)

    async def _pace(self) -> None:
        """Slow every process down when other apps drain the account's shared pool, before Brightpearl answers
        503 (see :func:`~workers.budget.pacing_pause_ms`)."""
        if self.budget is not None and self.rate.requests_remaining is not None:
            await self.budget.pace(self.rate.requests_remaining, self.rate.next_throttle_period_ms)

    def _throttle_wait_ms(self, status: int, payload: Any, headers: Mapping[str, str]) -> int | None:
        """How long to wait if this answer is Brightpearl's throttle, else ``None``."""
        if status not in (503, 429):
            return None
        if status == 503 and not any("too many requests" in m.lower() for m in messages_of(payload)):
            return None  # a 503 that is not throttling is an outage: Unavailable, not a wait
        wait_ms = self.rate.next_throttle_period_ms
        retry_after = _int_header(headers, "retry-after")
        if wait_ms is None and retry_after is not None:
            wait_ms = retry_after * 1000
        return min(MAX_THROTTLE_WAIT_MS, max(100, wait_ms if wait_ms is not None else DEFAULT_THROTTLE_WAIT_MS))

    @staticmethod
    def _unwrap(method: str, url: str, status: int, payload: Any) -> Any:
        return unwrap(method, url, status, payload)

    async def get(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        """``GET`` a resource: the value of the answer's ``response``."""
        payload = await self.request("GET", path, params=params)
        return response_of("GET", self.url(path), payload)

    async def search(self, path: str, params: Mapping[str, str]) -> SearchPage:
        """One page of a ``*-search``."""
        payload = await self.request("GET", path, params=params)
        response_of("GET", self.url(path), payload)  # an empty body is "empty", not "malformed"
        try:
            return parse_search(payload)
        except (ValueError, TypeError, KeyError) as error:
            raise Unavailable(
                "GET", self.url(path), 200, [f"not a search answer: {error}"], kind="malformed"
            ) from error

    async def get_many(
        self,
        path: str,
        ids: Sequence[int],
        *,
        max_per_request: int = MAX_IDS_PER_GET,
        params: Mapping[str, str] | None = None,
    ) -> list[dict[str, Any]]:
        """Resources by id, ``path`` ending in ``/`` (``order-service/order/``), in as few requests as the
        id cap allows, each with the query ``params`` (``includeOptional``). Ids Brightpearl does not know are
        simply absent; the answer's order means nothing."""
        found: list[dict[str, Any]] = []
        for id_set in chunk_id_sets(ids, max_per_request):
            try:
                response = await self.get(path + id_set, params)
            except RequestRejected as error:
                if error.status == 404:  # some services answer "none of these exist" with 404
                    continue
                raise
            if not isinstance(response, list):
                raise Unavailable(
                    "GET", self.url(path + id_set), 200, ["answer's 'response' is not a list"], kind="malformed"
                )
            found += [item for item in response if isinstance(item, dict)]
        return found

    async def get_keyed(
        self,
        path: str,
        ids: Sequence[int],
        *,
        max_per_request: int = MAX_IDS_PER_GET,
        suffix: str = "",
        split_on_rejection: bool = False,
    ) -> dict[int, dict[str, Any]]:
        """Resources by id from services that answer an object keyed by id (goods-out notes, product
        availability): ``path`` + id set + ``suffix``. Unknown ids are absent; a 404 (none of them exist) is
        an empty answer.

        ``split_on_rejection``: product-availability may answer 400 for the whole request when one id in it is
        bad (a deleted or not stock-tracked product; API.md 6.1, 8.1). The set is then split in halves until
        each bad id stands alone; it is dropped (kept in :attr:`dropped_ids`, logged once) and the rest is
        read. One bad id among n costs about 2*log2(n) more requests. A request refused for more than
        :data:`MAX_DROPPED_PER_CALL` ids alone is refused for something else than its ids: that refusal is
        raised and nothing is dropped."""
        found: dict[int, dict[str, Any]] = {}
        ordered = sorted(set(ids))
        dropped: list[int] = []
        for start in range(0, len(ordered), max_per_request):
            chunk = ordered[start : start + max_per_request]
            found.update(await self._keyed_set(path, chunk, suffix, dropped if split_on_rejection else None))
        for bad_id in dropped:
            log.warning("Brightpearl refused %s%s for id %d alone: dropped, the rest read", path, suffix, bad_id)
        self.dropped_ids += dropped
        return found

    async def _keyed_set(
        self, path: str, ids: list[int], suffix: str, dropped: list[int] | None
    ) -> dict[int, dict[str, Any]]:
        url_path = path + compress_ids(ids) + suffix
        try:
            response = await self.get(url_path)
        except RequestRejected as error:
            if error.status == 404:  # "none of these exist" (goods-out notes answer so)
                return {}
            if dropped is None or error.status != 400:
                raise
            if len(ids) == 1:
                dropped.append(ids[0])
                if len(dropped) > MAX_DROPPED_PER_CALL:
                    raise
                return {}
            half = len(ids) // 2
            first = await self._keyed_set(path, ids[:half], suffix, dropped)
            return first | await self._keyed_set(path, ids[half:], suffix, dropped)
        if not isinstance(response, dict):
            raise Unavailable(
                "GET", self.url(url_path), 200, ["answer's 'response' is not an object"], kind="malformed"
            )
        return {int(key): item for key, item in response.items() if isinstance(item, dict)}


__all__ = [
    "AccessTokens",
    "AuthKind",
    "BrightpearlClient",
    "BrightpearlError",
    "Credentials",
    "RateInfo",
    "SearchPage",
    "datacenter_base_url",
]
