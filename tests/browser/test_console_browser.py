"""The console in Chromium against a real `aftercare serve`: login, timeline, retry, isolation, CSRF,
and every page at desktop and phone width."""

import time
from collections import Counter

from .conftest import log_in, screenshot


def executions(log):
    return Counter(line.split(" ", 1)[1] for line in log.read_text().splitlines())


def test_without_a_login_the_console_sends_the_browser_to_the_login(page):
    answer = page.goto("/console/shops/north/orders/order-2001")
    assert page.url.split("?")[0].endswith("/console/login")
    assert answer.status == 200 and "rosa@" not in page.content() and "fire-time" not in page.content()


def test_log_in_and_read_why_the_review_request_was_dropped(page, server, tmp_path):
    log_in(page, "nora")
    assert page.url.endswith("/console/shops/north")  # her one shop
    assert page.locator("text=events this week").is_visible()
    page.fill("input[name=order]", "order-2001")
    with page.expect_navigation():
        page.click("text=Search")
    review = page.locator("li.action", has_text="review_request")
    assert review.first.is_visible()
    assert "why: fire-time check: the order was refunded" in review.first.inner_text()
    assert "dropped" in review.first.inner_text()
    screenshot(page, tmp_path, "timeline")


def test_retry_a_failed_action_and_see_it_executed_once(page, server):
    failed = server["actions"]["order-2002/browser_shop"]
    log_in(page, "nora")
    page.goto("/console/actions?state=failed")
    row = page.locator(f"#action-{failed.id}")
    assert "550 relay said no" in row.inner_text()
    with page.expect_navigation():
        row.locator("button", has_text="Retry").click()
    deadline = time.monotonic() + 20
    while executions(server["log"])[failed.idempotency_key] == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)  # several sweeps later: still once
    assert executions(server["log"])[failed.idempotency_key] == 1
    page.goto(f"/console/shops/north/orders/{failed.order_id}")
    assert "done" in page.locator(f"#action-{failed.id}").inner_text()


def test_a_user_of_one_shop_gets_404_for_another_shops_pages_and_ids(page, server):
    theirs = server["actions"]["order-3001/browser_shop"]
    log_in(page, "nora")
    for url in ("/console/shops/south", "/console/shops/south/orders/order-3001", "/console/shops/south/report",
                "/console/shops/south/surveys", "/console/shops/south/plugins", "/console/actions?shop=south",
                "/console/shops/south/preview?template=thank_you"):  # fmt: skip
        answer = page.goto(url)
        assert answer.status == 404, url
        assert "order-3001" not in page.content() and "maria@" not in page.content()
    page.goto("/console/actions")
    assert "order-3001" not in page.content()
    csrf = page.locator("input[name=csrf]").first.get_attribute("value")
    answer = page.request.post(f"/console/actions/{theirs.id}/cancel", form={"csrf": csrf}, max_redirects=0)
    assert answer.status == 404
    assert "cancelled by nora" not in server["app"].store.get_action(theirs.id).reason  # serve's worker may run it


def test_a_post_without_the_csrf_token_is_rejected(page, server):
    target = server["actions"]["order-2001/review_request"]
    log_in(page, "nora")
    page.goto("/console/actions")
    answer = page.request.post(f"/console/actions/{target.id}/retry", form={"back": "/console/actions"},
                               max_redirects=0)  # fmt: skip
    assert answer.status == 403
    forged = page.request.post(f"/console/actions/{target.id}/retry", form={"csrf": "forged"}, max_redirects=0)
    assert forged.status == 403
    assert server["app"].store.get_action(target.id).state.value == "dropped"


def test_every_page_at_desktop_and_phone_width(page, server, tmp_path):
    log_in(page, "agency")
    pages = {
        "home": "/console/",
        "overview": "/console/shops/north",
        "actions": "/console/actions",
        "timeline": "/console/shops/north/orders/order-2001",
        "surveys": "/console/shops/north/surveys",
        "report": "/console/shops/north/report",
        "preview": "/console/shops/north/preview?template=thank_you&locale=es",
        "plugins": "/console/shops/north/plugins",
        "what-if": "/console/shops/north/simulate",
    }
    for name, url in pages.items():
        answer = page.goto(url)
        assert answer.status == 200, (url, page.content()[:500])
        screenshot(page, tmp_path, name)
    page.goto(pages["surveys"])
    assert page.locator("svg.chart").count() == 6
    page.goto(pages["preview"])
    assert page.locator("iframe.mail[sandbox]").count() == 1
    phone = page.viewport_size
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(pages["actions"])  # the table scrolls inside its box; the page itself does not overflow
    assert page.evaluate("document.documentElement.scrollWidth") <= 390 + 1
    page.set_viewport_size(phone)
