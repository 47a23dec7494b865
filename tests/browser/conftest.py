"""A real `aftercare serve` on 127.0.0.1 with seeded shops, and Debian's Chromium driven by Playwright.

The store is seeded in this process before serve starts (through the same App
code the worker runs, on a clock ten days back): a review request dropped at
fire time because the order was refunded, an order note that failed, another
shop's order, survey answers. Chromium is /usr/bin/chromium (Playwright's own
browser download is unreachable here); in CI (CI=true) a missing Chromium
fails the tests instead of skipping them.
"""

import os
import shutil
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aftercare.app import App
from aftercare.clock import ManualClock
from aftercare.config import load_config
from aftercare.console import accounts
from aftercare.dispatch import Dispatcher, execute_due
from aftercare.models import FinancialStatus, ShipmentStatus, SurveyAnswer, SurveyKind
from aftercare.testing import make_event, make_order

from ..runtime.test_processes import first_line, start, stop

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]  # fmt: skip
LOCAL_PLUGINS = Path(__file__).parent / "local_plugins"
PASSWORD = "correct horse battery"
SECRET = "browser-test-secret"


def chromium_or_skip():
    if shutil.which(CHROMIUM) or Path(CHROMIUM).exists():
        return
    message = f"{CHROMIUM} is missing (apt-get install -y chromium chromium-driver; scripts/test does it)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def browser():
    chromium_or_skip()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def write_config(folder):
    config = folder / "aftercare.toml"
    config.write_text(f"""
database = "sqlite:///aftercare.db"
queue = "sqlite:///queue.db"
plugins_folder = "{LOCAL_PLUGINS}"
public_url = "http://127.0.0.1:1"

[console]
enabled = true
secret_key = "browser-test-console-key"

[mail]
transport = "outbox"
sender = "Shop <shop@example.com>"

[plugins.review_request]
enabled = true
review_url = "https://shop.example/products/{{product_id}}#reviews"

[[shops]]
id = "north"
name = "North Shop"
platform = "memory"
webhook_secret = "{SECRET}-north"
production = true

[[shops]]
id = "south"
name = "South Shop"
platform = "memory"
webhook_secret = "{SECRET}-south"
production = true
locale = "bg"
""")
    return config


def seed(config, fail_flag):
    """What the pages will show, recorded by the real dispatcher and executor on a clock ten days back."""
    clock = ManualClock(datetime.now(UTC).replace(microsecond=0) - timedelta(days=10))
    app = App.from_file(config, clock=clock)
    app.store.upgrade()
    dispatcher = Dispatcher(app)
    north = app.adapter("north")

    reviewed = make_order("2001", shop_id="north", email="rosa@example.com", created_at=clock.now())
    delivered = replace(reviewed, shipments=(replace(reviewed.shipments[0], status=ShipmentStatus.DELIVERED,
                                                     shipped_at=clock.now() - timedelta(days=2),
                                                     delivered_at=clock.now()),))  # fmt: skip
    north.put_order(delivered)
    dispatcher.dispatch(make_event("delivered", delivered, occurred_at=clock.now(), key="delivered-2001"))
    north.put_order(replace(delivered, financial_status=FinancialStatus.REFUNDED))  # refunded before the request fires

    failing = make_order("2002", shop_id="north", email="ivan@example.com", created_at=clock.now())
    north.put_order(failing)
    fail_flag.touch()
    dispatcher.dispatch(make_event("order_paid", failing, occurred_at=clock.now(), key="paid-2002"))
    execute_due(app)  # the note fails: "550 relay said no"
    fail_flag.unlink()

    theirs = make_order("3001", shop_id="south", email="maria@example.com", created_at=clock.now())
    app.adapter("south").put_order(theirs)
    dispatcher.dispatch(make_event("order_paid", theirs, occurred_at=clock.now(), key="paid-3001"))

    clock.advance(timedelta(days=8))
    execute_due(app)  # the review request falls due and is dropped by the fire-time check
    with app.store.transaction() as conn:
        for n, (kind, score, comment) in enumerate([("csat", 5, ""), ("csat", 2, "late parcel"), ("nps", 9, ""),
                                                    ("nps", 4, "box was damaged"), ("ces", 2, "")]):  # fmt: skip
            app.store.record_survey_answer(conn, shop_id="north", order_id=f"order-200{n}", email="a@example.com",
                                           answer=SurveyAnswer(SurveyKind(kind), score, clock.now(), comment),
                                           source="test")  # fmt: skip
    accounts.add_user(app.store, "nora", PASSWORD, ("north",), clock.now())
    accounts.add_user(app.store, "agency", PASSWORD, ("all",), clock.now())
    actions = {a.order_id + "/" + a.plugin: a for a in app.store.list_actions(limit=1000)}
    return app, actions


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """The seeded deployment served by `aftercare serve --port 0`; stopped (with its worker) at the end."""
    chromium_or_skip()
    folder = tmp_path_factory.mktemp("served")
    config = write_config(folder)
    log, fail_flag = folder / "executions.log", folder / "fail"
    log.touch()
    saved = {name: os.environ.get(name) for name in ("AFTERCARE_TEST_FAIL", "AFTERCARE_TEST_LOG")}
    os.environ["AFTERCARE_TEST_FAIL"] = str(fail_flag)  # this process runs the channel too (seeding), and
    os.environ["AFTERCARE_TEST_LOG"] = str(log)  # serve's worker inherits both
    app, actions = seed(config, fail_flag)
    process = start(config, log, "serve", "--port", "0", "--sweep-interval", "0.2")
    try:
        url = first_line(process, "aftercare serve: listening on").rsplit(" ", 1)[1]
        yield {"url": url, "app": app, "actions": actions, "log": log, "config": load_config(config)}
    finally:
        output = stop(process)
        app.close()
        sys.stderr.write(output[-4000:])
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture
def page(browser, server):
    """A fresh browser context (no cookies) at desktop width."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=server["url"])
    yield context.new_page()
    context.close()


def log_in(page, name):
    page.goto("/console/login")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORD)
    with page.expect_navigation():
        page.click("button[type=submit]")


def screenshot(page, folder, name):
    """The page at 1280 and 390 px wide, full length; both PNGs must hold a real picture."""
    shots = []
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        path = folder / f"{name}-{width}.png"
        page.screenshot(path=str(path), full_page=True)
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 8_000, path
        shots.append(path)
    page.set_viewport_size({"width": 1280, "height": 900})
    return shots
