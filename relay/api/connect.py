"""Connecting a Brightpearl account: checking its credentials and taking its baseline, and the OAuth connect flow
(CONTRACT "OAuth instance apps").

The flow: :func:`authorize_url` issues a single-use ``state`` bound to the account (``subscriptions.store.
oauth_states``, 10 minutes) and gives the URL at Brightpearl where the account's admin installs the app;
Brightpearl sends the browser back to ``{RELAY_PUBLIC_URL}/oauth/callback`` with ``code`` and ``state``, and
:func:`complete` (the callback page, ``relay.ui.callback``) takes the state once, exchanges the code, stores the
tokens sealed, and then:

- an account connected for the first time (``authorization_required``) has its baseline taken while it still
  waits, so no poll runs without one, and becomes ``active`` once the baseline is stored;
- an account authorized again (``reauthorization_required``, or a new install of an active one) keeps its
  cursors: its polls are due at once and resume where they stopped, so nothing made meanwhile is lost;
- a private app's account becomes an OAuth one, its cursors kept.

The API host is the ``base_url`` given at registration, else ``https://{api_domain}/public-api/{account}`` from the
first token answer.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from relay.api.context import ApiContext
from relay.api.schemas import OAuthGrant
from subscriptions.core.errors import InvalidInput, RelayError
from subscriptions.core.models import AccountRecord
from subscriptions.core.targets import check_url
from subscriptions.core.times import ms
from subscriptions.store.oauth_states import OAuthStates
from subscriptions.store.oauth_tokens import AUTHORIZATION_REQUIRED
from workers.brightpearl.client import datacenter_base_url
from workers.brightpearl.oauth import TokenSet
from workers.detectors import Baseline, check_credentials, take_baselines
from workers.oauth_accounts import OAUTH_SETTINGS, OAuthAccess
from workers.poller import client_for

CALLBACK_PATH = "/oauth/callback"


async def connect(ctx: ApiContext, account: AccountRecord, resources: Sequence[str]) -> Baseline:
    """Check the account's credentials against Brightpearl and take the baseline of ``resources``; a refusal is
    a :class:`~workers.brightpearl.errors.BrightpearlError` (a 422 naming the account, see ``relay.api.problems``)."""
    budget = ctx.budgets.of(account.code, ctx.budget_of(account))
    client = client_for(ctx.brightpearl_session, account, budget, timeout_s=ctx.brightpearl_timeout_s, oauth=ctx.oauth)
    await check_credentials(client)
    return await take_baselines(client, resources, sweep_interval_s=ctx.sweep_interval_s, now_ms=ms(ctx.clock()))


def base_url_of(code: str, base_url: str | None, datacenter: str | None, api_domain: str | None = None) -> str:
    """The account's API host: a ``base_url`` given wins; else its data centre's, or an OAuth token answer's
    ``api_domain``."""
    if base_url is not None:
        return check_url(base_url).rstrip("/")
    if datacenter is None and api_domain is not None:
        return f"https://{api_domain}/public-api/{code}"
    assert datacenter is not None
    return datacenter_base_url(datacenter, code)


def oauth_ready(ctx: ApiContext) -> OAuthAccess:
    """The relay's OAuth access; a 422 naming the settings an OAuth account needs when any is not set."""
    missing = ctx.oauth_config.missing()
    if ctx.oauth is None or missing:
        raise InvalidInput(f"OAuth accounts need {', '.join(missing or OAUTH_SETTINGS)} set on the relay")
    return ctx.oauth


async def store_grant(ctx: ApiContext, code: str, grant: OAuthGrant, *, baseline_pending: bool = False) -> None:
    """Store the tokens an integrator brought (sealed, by the token manager): the account is authorized again (or,
    ``baseline_pending``, once its baseline is stored)."""
    now = ctx.clock()
    tokens = TokenSet(
        access_token=grant.access_token,
        refresh_token=grant.refresh_token,
        expires_at=now + timedelta(seconds=grant.expires_in),
        issued_at=now,
        api_domain=grant.api_domain,
    )
    await oauth_ready(ctx).tokens.connected(code, tokens, baseline_pending=baseline_pending)


class StateRefused(RelayError):
    """A callback's ``state`` is unknown, expired or already used: nothing is changed."""


def callback_url(ctx: ApiContext) -> str:
    """Where Brightpearl sends the browser back (the ``redirect_uri``, the same at authorize and at the exchange);
    a 422 naming ``RELAY_PUBLIC_URL`` when the relay has none."""
    if ctx.public_url is None:
        raise InvalidInput(
            "connecting an account through Brightpearl needs RELAY_PUBLIC_URL, the URL where browsers reach this "
            "relay (Brightpearl sends them back to {RELAY_PUBLIC_URL}/oauth/callback)"
        )
    return ctx.public_url.rstrip("/") + CALLBACK_PATH


async def authorize_url(ctx: ApiContext, account: AccountRecord) -> str:
    """A fresh URL that connects ``account``: its state works once, for 10 minutes."""
    oauth = oauth_ready(ctx)
    redirect_uri = callback_url(ctx)
    state = await OAuthStates(ctx.redis).issue(account.code, now_ms=ms(ctx.clock()))
    return oauth.endpoint.app.authorize_url(account.code, redirect_uri, state)


async def spend_state(ctx: ApiContext, state: str) -> None:
    """Use up ``state`` without connecting (Brightpearl answered an error instead of a code)."""
    await OAuthStates(ctx.redis).take(state, now_ms=ms(ctx.clock()))


@dataclass(frozen=True)
class Connected:
    """What a completed authorization did."""

    account: AccountRecord
    first: bool  # the account's first connection: its baseline was taken now


async def complete(ctx: ApiContext, state: str, code: str) -> Connected:
    """Finish the authorization that ``state`` was issued for with the ``code`` Brightpearl sent back.

    :class:`StateRefused` when the state is unknown, expired or used, before anything else; Brightpearl's
    refusals of the code or of the relay's app, or its failures, as the client raises them (the state is spent
    then: a new authorize URL starts again)."""
    oauth = oauth_ready(ctx)
    redirect_uri = callback_url(ctx)
    account_code = await OAuthStates(ctx.redis).take(state, now_ms=ms(ctx.clock()))
    if account_code is None:
        raise StateRefused("this connect link is unknown, expired or already used")
    account = await ctx.store.get_account(account_code)
    status = await ctx.store.account_status(account_code)
    first = account.auth == "oauth" and status.get("auth_state") == AUTHORIZATION_REQUIRED
    tokens = await oauth.endpoint.exchange_code(account_code, code, redirect_uri)
    update: dict[str, object] = {}
    if account.auth != "oauth":  # a private app's account, connected as the relay's OAuth app from now on
        update = {"auth": "oauth", "token": "", "app_ref": oauth.app_ref}
    if not account.base_url:  # a base URL given at registration wins (proxies, the sandbox)
        if not tokens.api_domain:
            raise InvalidInput("Brightpearl's token answer named no api_domain; register the account with a base_url")
        update["base_url"] = base_url_of(account_code, None, None, tokens.api_domain)
    changed = account.model_copy(update=update)
    await oauth.tokens.connected(account_code, tokens, baseline_pending=first)
    if first:  # taken while the account still waits: no poll runs without it
        baseline = await connect(ctx, changed, list(changed.resources))
        await ctx.store.save_account(changed, baseline.positions, ms(ctx.clock()), baseline.stock_figures)
        await oauth.tokens.activate(account_code)
    else:  # its cursors stay: every poll is due now and resumes where it stopped
        await ctx.store.save_account(changed, {}, ms(ctx.clock()))
    if changed.hints:
        await ctx.subscriber.reconcile(changed)  # a failure shows in status.hints.error, the connection stands
    return Connected(changed, first)
