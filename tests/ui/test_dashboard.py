"""The dashboard in a real headless Chromium: log in, find a failed delivery, retry it, see it succeed; a
scoped key sees only its account; bad tokens and missing cookies go to the login page; the cookie is a session,
never the token, and logging out or revoking the key ends it; a retry the API would refuse says why; nothing is
injected."""

import re
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from aiohttp import web
from playwright.async_api import Page, expect

from relay.service import bound_port
from tests.ui.world import TOKEN, Dashboard, Relay

pytestmark = pytest.mark.timeout(60)


async def at_login(page: Page, going_to: str) -> None:
    """The page is the login form, which will go on to ``going_to``."""
    await expect(page).to_have_url(re.compile(r"/ui/login\?next="))
    assert parse_qs(urlsplit(page.url).query)["next"] == [going_to]


async def log_in(page: Page, relay: Relay, token: str = TOKEN) -> None:
    await page.goto(f"{relay.url}/ui/login")
    await page.fill("#token", token)
    await page.click("button:has-text('Log in')")


async def test_a_failed_delivery_is_found_retried_and_succeeds(relay: Relay, page: Page) -> None:
    await relay.add_account("acme")
    sub = await relay.subscribe("acme", description="orders to the warehouse")
    relay.receiver.secret = sub["secret"]
    [made] = await relay.commit_event("acme", 1001)
    await relay.wait_status(made.id, "failed")

    await log_in(page, relay)
    await expect(page.locator("h1")).to_have_text("Overview")
    await expect(page.locator("table").last).to_contain_text(sub["id"])
    await page.click("header nav >> text=Deliveries")
    await page.click("nav.tabs >> text=failed")
    await expect(page).to_have_url(f"{relay.url}/ui/deliveries?status=failed")
    rows = page.locator("table.deliveries tbody tr")
    await expect(rows).to_have_count(1)
    await rows.first.locator("a.row-link").click()

    await expect(page).to_have_url(f"{relay.url}/ui/deliveries/{made.id}")
    await expect(page.locator("h1 .badge")).to_have_text("failed")
    attempts = page.locator("table.attempts tbody tr")
    await expect(attempts).to_have_count(2)
    await expect(attempts.first).to_contain_text("500")
    await expect(attempts.first.locator("pre.excerpt")).to_have_text("receiver told to fail")

    relay.receiver.fail_next = 0
    await page.click("button:has-text('Retry now')")
    await expect(page.locator(".alert.ok")).to_contain_text("Retry scheduled")
    badge = page.locator("h1 .badge")
    for _ in range(40):  # bounded: about 10 s
        if await badge.text_content() == "succeeded":
            break
        await page.wait_for_timeout(250)
        await page.reload()
    await expect(badge).to_have_text("succeeded")
    await expect(attempts).to_have_count(3)
    await expect(attempts.last).to_contain_text("204")
    assert [r.verified for r in relay.receiver.received] == [True]


async def test_a_scoped_key_sees_only_its_account(relay: Relay, page: Page) -> None:
    for code in ("acme", "globex"):
        await relay.add_account(code)
    acme_sub = await relay.subscribe("acme")
    globex_sub = await relay.subscribe("globex")
    acme = [d for n in (1, 2) for d in await relay.commit_event("acme", n)]
    [globex] = await relay.commit_event("globex", 3)
    for delivery in [*acme, globex]:
        await relay.wait_status(delivery.id, "failed")
    key = await relay.call("POST", "/v1/api-keys", {"account": "acme", "description": "ui test"}, expect=201)

    await log_in(page, relay, key["key"])
    await expect(page.locator("h1")).to_have_text("Overview")
    [cookie] = [c for c in await page.context.cookies() if c["name"] == "relay_ui_session"]
    assert key["key"] not in cookie["value"]
    assert await relay.ctx.redis.smembers(f"relay:ui:sessions:key:{key['id']}")  # type: ignore[misc]
    await expect(page.locator(".who")).to_contain_text("key for acme")
    main = page.locator("main")
    await expect(main).to_contain_text(acme_sub["id"])
    await expect(main).not_to_contain_text("globex")
    await expect(main).not_to_contain_text(globex_sub["id"])
    await expect(page.locator(".stat .value").first).to_have_text("2")  # the chart counts acme's two only

    await page.goto(f"{relay.url}/ui/deliveries")
    links = page.locator("table.deliveries a.row-link")
    await expect(links).to_have_count(2)
    shown = {(await links.nth(i).get_attribute("title")) for i in range(2)}
    assert shown == {d.id for d in acme}
    await expect(page.locator("#subscription option")).to_have_count(2)  # "all" and acme's one

    response = await page.goto(f"{relay.url}/ui/deliveries/{globex.id}")
    assert response is not None
    assert response.status == 404
    await expect(page.locator("h1")).to_have_text("Not found")
    response = await page.goto(f"{relay.url}/ui/deliveries?subscription={globex_sub['id']}")
    assert response is not None
    assert response.status == 404
    retried = await page.request.post(
        f"{relay.url}/ui/deliveries/{globex.id}/retry", headers={"Origin": relay.url}, max_redirects=0
    )
    assert retried.status == 404
    assert (await relay.ctx.store.get_delivery(globex.id)).status == "failed"

    await relay.call("DELETE", f"/v1/api-keys/{key['id']}", expect=204)
    assert [k async for k in relay.ctx.redis.scan_iter(match="relay:ui:session*")] == []  # its session is gone
    await page.goto(f"{relay.url}/ui")
    await at_login(page, "/ui")  # a revoked key is logged out at once


async def test_without_a_cookie_the_dashboard_asks_for_a_token_and_refuses_a_bad_one(relay: Relay, page: Page) -> None:
    await page.goto(f"{relay.url}/ui/deliveries?status=failed")
    await at_login(page, "/ui/deliveries?status=failed")
    await page.fill("#token", "not-the-token")
    await page.click("button:has-text('Log in')")
    await expect(page.locator(".alert.bad")).to_contain_text("That token is not valid")
    assert not [c for c in await page.context.cookies() if c["name"] == "relay_ui_session"]

    await page.fill("#token", TOKEN)
    await page.click("button:has-text('Log in')")
    await expect(page).to_have_url(f"{relay.url}/ui/deliveries?status=failed")  # back where it was going
    [cookie] = [c for c in await page.context.cookies() if c["name"] == "relay_ui_session"]
    assert cookie["httpOnly"]
    assert cookie["sameSite"] == "Strict"
    assert cookie["path"] == "/ui"
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", cookie["value"])  # an opaque session id, not the token
    assert TOKEN not in cookie["value"]

    await page.click("button:has-text('Log out')")
    await expect(page).to_have_url(f"{relay.url}/ui/login")
    assert not [c for c in await page.context.cookies() if c["name"] == "relay_ui_session"]
    await page.goto(f"{relay.url}/ui")
    await at_login(page, "/ui")

    await page.context.add_cookies([cookie])  # the old cookie, kept by someone: the session it named is over
    await page.goto(f"{relay.url}/ui/deliveries")
    await at_login(page, "/ui/deliveries")


async def test_a_retry_of_a_delivery_to_a_disabled_subscription_says_why_it_was_not_scheduled(
    relay: Relay, page: Page
) -> None:
    await relay.add_account("acme")
    sub = await relay.subscribe("acme")
    [made] = await relay.commit_event("acme", 11)
    failed = await relay.wait_status(made.id, "failed")
    await relay.call("PATCH", f"/v1/subscriptions/{sub['id']}", {"state": "disabled"})

    await log_in(page, relay)
    await page.goto(f"{relay.url}/ui/deliveries/{made.id}")
    await expect(page.locator(".facts")).to_contain_text("disabled")
    async with page.expect_response(f"{relay.url}/ui/deliveries/{made.id}/retry") as answered:
        await page.click("button:has-text('Retry now')")
    assert (await answered.value).status == 409
    refusal = page.locator(".alert.bad")
    await expect(refusal).to_contain_text(f"subscription {sub['id']} is disabled (disabled by a PATCH)")
    await expect(refusal).to_contain_text('PATCH it to {"state": "active"} before you retry its deliveries')
    await expect(page.locator(".alert.ok")).to_have_count(0)
    assert "Retry scheduled" not in await page.content()
    after = await relay.ctx.store.get_delivery(made.id)
    assert (after.status, after.attempt_count, after.next_attempt_at) == ("failed", failed.attempt_count, None)


async def test_a_delivery_page_answers_a_malformed_id_as_a_missing_one(dashboard: Dashboard) -> None:
    session = await dashboard.session(TOKEN)

    async def shown(delivery_id: str) -> tuple[int, str]:
        answer = await dashboard.request("GET", f"/ui/deliveries/{quote(delivery_id, safe='')}", session=session)
        return answer.status, answer.text.replace(repr(delivery_id).replace("'", "&#39;"), "<id>")

    missing = await shown("dlv_missing0")
    assert missing[0] == 404
    assert "delivery <id> does not exist" in missing[1]
    for hostile in ["dlv_x:attempts", "sub_x:health", "acme:status", "%3a", "dlv_" + "a" * 3000, "dlv_é", "dlv_x\n"]:
        assert await shown(hostile) == missing, hostile
    for hostile in ["dlv_x:attempts", "%3a"]:
        retried = await dashboard.request("POST", f"/ui/deliveries/{quote(hostile, safe='')}/retry", session=session)
        assert retried.status == 404


async def test_a_response_excerpt_is_shown_as_text_never_as_markup(relay: Relay, page: Page) -> None:
    hostile = '</pre><img src=x onerror="document.title=\'pwned\'"><script>document.title="pwned"</script>'

    async def answer(request: web.Request) -> web.Response:
        return web.Response(status=400, text=hostile, content_type="text/html")

    app = web.Application()
    app.router.add_post("/hooks", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        await relay.add_account("acme")
        await relay.subscribe("acme", url=f"http://127.0.0.1:{bound_port(runner)}/hooks")
        [made] = await relay.commit_event("acme", 7)
        await relay.wait_status(made.id, "failed")
    finally:
        await runner.cleanup()

    await log_in(page, relay)
    await page.goto(f"{relay.url}/ui/deliveries/{made.id}")
    await expect(page.locator("pre.excerpt").first).to_have_text(hostile)
    assert await page.locator("main img, main script").count() == 0
    assert "pwned" not in await page.title()


async def test_a_retry_posted_from_another_site_is_refused(relay: Relay, page: Page) -> None:
    await relay.add_account("acme")
    await relay.subscribe("acme")
    [made] = await relay.commit_event("acme", 9)
    await relay.wait_status(made.id, "failed")
    await log_in(page, relay)
    await expect(page.locator("h1")).to_have_text("Overview")
    for headers in ({"Origin": "https://evil.example"}, {"Referer": "https://evil.example/page"}, {}):
        answer = await page.request.post(f"{relay.url}/ui/deliveries/{made.id}/retry", headers=headers, max_redirects=0)
        assert answer.status == 403, headers
    assert (await relay.ctx.store.get_delivery(made.id)).status == "failed"


async def test_the_account_page_shows_the_actual_interval_beside_the_asked_and_effective_ones(
    dashboard: Dashboard,
) -> None:
    session = await dashboard.session(TOKEN)

    async def resources_row() -> tuple[list[str], str]:
        answer = await dashboard.request("GET", "/ui/accounts/acme", session=session)
        assert answer.status == 200
        table = answer.text.split('<table class="resources">')[1].split("</table>")[0]
        heads = re.findall(r"<th[^>]*>([^<]*)</th>", table)
        row = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", table.split("<tbody>")[1])).strip()
        return heads, row

    heads, row = await resources_row()
    assert heads[:4] == ["Resource", "Interval asked", "Effective", "Actual"]
    assert row.startswith("orders 5 s 5 s – ")  # never polled: nothing measured yet
    # what the poller reports of a worker that is behind (tests/workers/test_cadence.py has it do so)
    fields = {"orders:actual_poll_interval_s": "7.316", "orders:poll_delay_s": "2.4"}
    await dashboard.ctx.store.update_account_status("acme", fields)
    _, row = await resources_row()
    assert row.startswith("orders 5 s 5 s 7.3 s started 2.4 s late ")
    answer = await dashboard.request("GET", "/ui/accounts/acme", session=session)
    assert '<span class="badge warn">7.3 s</span>' in answer.text
    assert "orders is polled every 7.3 s instead of 5 s: the workers cannot keep up; add a worker" in answer.text
    await dashboard.ctx.store.update_account_status("acme", {"orders:actual_poll_interval_s": "5.1"})
    _, row = await resources_row()
    assert row.startswith("orders 5 s 5 s 5.1 s started 2.4 s late ")  # within 10 %: plain, no warning
    assert "cannot keep up" not in (await dashboard.request("GET", "/ui/accounts/acme", session=session)).text
