"""The console's search, message view, retry question and read-only banner in Chromium, against a
real `aftercare serve --no-worker` (issue #20): the worker's heartbeat is written by the test, as an
`aftercare worker` on another host would."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from aftercare.app import App
from aftercare.clock import ManualClock
from aftercare.console import accounts
from aftercare.dispatch import Dispatcher, execute_due
from aftercare.models import ReturnRequest
from aftercare.testing import make_event, make_order

from ..runtime.test_processes import first_line, start, stop
from .conftest import PASSWORD, chromium_or_skip, log_in

PLUGIN = """
from aftercare import hookimpl
from aftercare.testing import MemoryAdapter


@hookimpl
def register_adapters(register):
    register(MemoryAdapter)


@hookimpl
def on_order_paid(event, ctx):
    coupon = ctx.create_coupon(percent=10, prefix="THANKS")
    ctx.send_email("thank_you", context={"code": coupon.payload["code"]}, after=coupon)
    ctx.later(days=7).add_order_note("how was it?", key="later")
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    chromium_or_skip()
    folder = tmp_path_factory.mktemp("messages")
    (folder / "plugins").mkdir()
    (folder / "plugins" / "thanks_shop.py").write_text(PLUGIN)
    config = folder / "aftercare.toml"
    config.write_text(f"""
database = "sqlite:///aftercare.db"
queue = "sqlite:///queue.db"
plugins_folder = "{folder / "plugins"}"
public_url = "http://127.0.0.1:1"

[console]
enabled = true
secret_key = "browser-messages-key"

[mail]
transport = "outbox"
sender = "North Shop <shop@north.example>"

[[shops]]
id = "north"
name = "North Shop"
platform = "memory"
webhook_secret = "secret-north"
production = true
""")
    clock = ManualClock(datetime.now(UTC).replace(microsecond=0) - timedelta(days=10))
    app = App.from_file(config, clock=clock)
    app.store.upgrade()
    north, dispatcher = app.adapter("north"), Dispatcher(app)
    first = replace(make_order("1", shop_id="north", email="ana@example.com"), platform_id="5001", number="#1005")
    second = replace(make_order("2", shop_id="north", email="ana@example.com"), platform_id="5002", number="#1006")
    for order in (first, second):
        north.put_order(order)
        dispatcher.dispatch(make_event("order_paid", order, occurred_at=clock.now(), key=f"paid-{order.number}"))
    execute_due(app)  # both coupons and mails: written to the outbox
    returning = replace(second, returns=(ReturnRequest("r-1", clock.now(), reason="unwanted"),))
    north.put_order(returning)
    dispatcher.dispatch(make_event("return_requested", returning, occurred_at=clock.now(), key="return-1006"))
    clock.advance(timedelta(days=8))
    execute_due(app)  # the later note of #1006 is dropped: a return was requested
    accounts.add_user(app.store, "nora", PASSWORD, ("north",), clock.now())
    log = folder / "serve.log"
    process = start(config, log, "serve", "--port", "0", "--no-worker")
    try:
        url = first_line(process, "aftercare serve: listening on").rsplit(" ", 1)[1]
        yield {"url": url, "app": app}
    finally:
        stop(process)
        app.close()


@pytest.fixture
def phone(browser, served):
    context = browser.new_context(viewport={"width": 390, "height": 844}, base_url=served["url"])
    yield context.new_page()
    context.close()


def no_sideways_scroll(page):
    assert page.evaluate("document.documentElement.scrollWidth") <= page.viewport_size["width"] + 1, page.url


def test_search_by_number_and_by_email_then_open_the_sent_message(phone, served, tmp_path):
    page = phone
    log_in(page, "nora")
    page.fill("input[name=order]", "1005")
    with page.expect_navigation():
        page.click("text=Search")
    assert page.url.endswith("/console/shops/north/orders/5001")
    mail = page.locator("li.action", has_text="send_email").first
    assert "to ana@example.com" in mail.inner_text()
    coupon = page.locator("li.action", has_text="create_coupon").first.locator("code.code").inner_text()
    assert coupon.startswith("THANKS")
    with page.expect_navigation():
        mail.locator(".mail-line a").click()
    assert "Stored copy" in page.content()
    frame = page.frame_locator("iframe.mail")
    assert coupon in frame.locator("body").inner_text()
    assert page.locator("iframe.mail").get_attribute("sandbox") == ""
    no_sideways_scroll(page)
    page.screenshot(path=str(tmp_path / "message-390.png"), full_page=True)

    page.goto("/console/shops/north")
    page.fill("input[name=order]", "ANA@example.com")
    with page.expect_navigation():
        page.click("text=Search")
    assert "2 orders match" in page.content()
    assert page.locator("a", has_text="#1005").count() == 1 and page.locator("a", has_text="#1006").count() == 1
    no_sideways_scroll(page)


def test_read_only_without_a_worker_then_the_retry_question_once_one_beats(phone, served):
    page, store = phone, served["app"].store
    dropped = next(a for a in store.list_actions(shop_id="north") if a.state.value == "dropped")
    log_in(page, "nora")
    page.goto("/console/shops/north/orders/5002")
    assert page.locator(".banner", has_text="Read-only").is_visible()
    assert page.locator(f"#action-{dropped.id} button[disabled]", has_text="Retry").count() == 1
    store.heartbeat(None)  # an `aftercare worker` elsewhere
    page.goto("/console/shops/north/orders/5002")
    assert page.locator(".banner").count() == 0
    with page.expect_navigation():
        page.locator(f"#action-{dropped.id} a.button", has_text="Retry").click()
    text = page.locator(".confirm").inner_text()
    assert "fire-time check: a return was requested" in text and "now returned" in text
    no_sideways_scroll(page)
    with page.expect_navigation():
        page.click("text=Retry it now")
    assert page.url.endswith("/console/shops/north/orders/5002")
    assert store.get_action(dropped.id).reason == "retried by nora in the console"
