"""The console over Starlette's TestClient: login, sessions, CSRF, shop isolation, every page."""

from dataclasses import replace

import pytest

from aftercare.actions import ActionState
from aftercare.asgi import create_asgi_app
from aftercare.dispatch import Dispatcher, execute_action, execute_due
from aftercare.platform import PlatformError
from aftercare.testing import make_event, make_order

from .conftest import PASSWORD, add_user, csrf_of, later, login, make_app

PAGES = ["/console/", "/console/actions", "/console/shops/north", "/console/shops/north/orders/order-1",
         "/console/shops/north/preview", "/console/shops/north/surveys", "/console/shops/north/report",
         "/console/shops/north/plugins", "/console/shops/north/simulate", "/console/anything"]  # fmt: skip


def paid(app, number, shop_id="north", **changes):
    order = make_order(number, shop_id=shop_id, **changes)
    app.adapter(shop_id).put_order(order)
    Dispatcher(app).dispatch(make_event("order_paid", order, key=f"paid-{shop_id}-{number}"))
    return order


@pytest.mark.parametrize("url", PAGES)
def test_without_a_login_every_page_redirects_to_the_login_and_shows_no_data(client, console_app, url):
    paid(console_app, "1")
    answer = client.get(url)
    assert answer.status_code == 302
    assert answer.headers["location"].startswith("/console/login?next=")
    assert "order-1" not in answer.text


def test_without_a_login_a_post_is_401(client, console_app):
    paid(console_app, "1")
    action = console_app.store.list_actions(shop_id="north")[0]
    for url in (f"/console/actions/{action.id}/retry", "/console/logout", "/console/shops/north"):
        assert client.post(url, data={"csrf": "x"}).status_code == 401
    assert console_app.store.get_action(action.id).state is ActionState.DUE


def test_login_sets_a_signed_http_only_lax_cookie_and_logout_ends_it(client):
    answer = login(client, "nora")
    assert answer.status_code == 303
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/console" in cookie
    assert "Secure" not in cookie  # public_url is http here
    assert answer.headers["location"] == "/console/"
    home = client.get("/console/")
    assert home.status_code == 302 and home.headers["location"] == "/console/shops/north"  # her only shop
    overview = client.get("/console/shops/north")
    assert overview.status_code == 200 and "events today" in overview.text
    assert client.post("/console/logout", data={"csrf": csrf_of(overview.text)}).status_code == 303
    client.cookies.clear()
    assert client.get("/console/shops/north").status_code == 302


def test_a_tampered_cookie_is_no_session(client):
    login(client, "nora")
    value = client.cookies.get("aftercare_console")
    client.cookies.clear()
    client.cookies.set(
        "aftercare_console", value[:-2] + ("A" if value[-2] != "A" else "B") + value[-1], path="/console"
    )
    assert client.get("/console/shops/north").status_code == 302


def test_cookies_are_secure_over_https(tmp_path, password_hash):
    from starlette.testclient import TestClient

    from aftercare.queue import Enqueuer

    app = make_app(tmp_path, secure_cookies=True)
    add_user(app, "nora", ["north"], password_hash)
    receiver = create_asgi_app(app, Enqueuer.for_app(app))
    with TestClient(receiver, base_url="https://127.0.0.1", follow_redirects=False) as c:
        assert "Secure" in login(c, "nora").headers["set-cookie"]
    app.close()


def test_wrong_passwords_are_refused_and_rate_limited_per_name(client):
    for _ in range(5):
        assert login(client, "nora", "wrong password!").status_code == 401
    blocked = login(client, "nora")  # the right password, too late
    assert blocked.status_code == 429 and "Too many" in blocked.text
    assert login(client, "agency").status_code == 303  # another name from the same address still may
    for n in range(15):
        login(client, f"guess{n}", "wrong password!")
    assert login(client, "agency").status_code == 429  # 20 failures from one address: everyone there waits


def test_the_login_form_needs_its_csrf_token(client):
    client.get("/console/login")
    answer = client.post("/console/login", data={"name": "nora", "password": PASSWORD, "next": ""})
    assert answer.status_code == 403


def test_the_login_redirects_only_inside_the_console(client):
    page = client.get("/console/login")
    data = {"name": "nora", "password": PASSWORD, "csrf": csrf_of(page.text)}
    assert client.post("/console/login", data={**data, "next": "//evil.example/x"}).headers["location"] == "/console/"
    login(client, "nora")
    page = client.get("/console/login")
    answer = client.post("/console/login", data={**data, "csrf": csrf_of(page.text), "next": "/console/actions"})
    assert answer.headers["location"] == "/console/actions"


def test_a_user_of_one_shop_gets_404_for_every_page_and_id_of_another(client, console_app):
    paid(console_app, "1", shop_id="south")
    theirs = console_app.store.list_actions(shop_id="south")[0]
    login(client, "nora")
    for url in [p.replace("north", "south") for p in PAGES if "north" in p]:
        answer = client.get(url)
        assert answer.status_code == 404, url
        assert "order-1" not in answer.text
    assert client.get("/console/actions?shop=south").status_code == 404
    assert "south" not in client.get("/console/actions").text.split("<table>")[1]
    csrf = csrf_of(client.get("/console/shops/north").text)
    assert client.post(f"/console/actions/{theirs.id}/cancel", data={"csrf": csrf}).status_code == 404
    assert console_app.store.get_action(theirs.id).state is ActionState.DUE


def test_agency_staff_see_every_shop(client, console_app):
    paid(console_app, "1", shop_id="south")
    login(client, "agency")
    assert "North" in client.get("/console/").text
    assert "order-1" in client.get("/console/shops/south/orders/order-1").text
    assert "order-1" in client.get("/console/actions?shop=south").text


def test_the_timeline_explains_why_a_delayed_action_was_dropped(client, console_app):
    order = paid(console_app, "7")
    execute_due(console_app)
    console_app.adapter("north").put_order(replace(order, cancelled_at=order.created_at))
    later(console_app, 8)
    execute_due(console_app)
    login(client, "nora")
    page = client.get("/console/shops/north/orders/order-7")
    assert page.status_code == 200
    assert "order_paid" in page.text and "hook <strong>notes</strong>.on_order_paid: ok" in page.text
    assert "why: fire-time check: the order was cancelled" in page.text
    assert client.get("/console/shops/north/orders?order=order-7").headers["location"].endswith("/orders/order-7")
    assert client.get("/console/shops/north/orders/nothing-here").status_code == 404


def test_retry_and_cancel_post_with_csrf_and_record_the_user(client, console_app):
    paid(console_app, "9")
    console_app.adapter("north").fail_next(PlatformError("the platform said no: note too long", transient=False))
    execute_due(console_app)
    failed = console_app.store.list_actions(shop_id="north", state=ActionState.FAILED)[0]
    console_app.store.heartbeat(None)  # a worker runs: the console is not read-only
    login(client, "nora")
    page = client.get("/console/actions?state=failed")
    assert "the platform said no: note too long" in page.text and "Retry" in page.text
    csrf = csrf_of(page.text)
    assert client.post(f"/console/actions/{failed.id}/retry", data={}).status_code == 403  # no token
    assert client.post(f"/console/actions/{failed.id}/retry", data={"csrf": "forged"}).status_code == 403
    assert console_app.store.get_action(failed.id).state is ActionState.FAILED
    answer = client.post(f"/console/actions/{failed.id}/retry", data={"csrf": csrf, "back": "/console/actions"})
    assert answer.status_code == 303 and answer.headers["location"] == "/console/actions"
    retried = console_app.store.get_action(failed.id)
    assert retried.state is ActionState.DUE and retried.reason == "retried by nora in the console"
    assert execute_action(console_app, retried)
    assert console_app.store.get_action(failed.id).state is ActionState.DONE
    due = console_app.store.list_actions(shop_id="north", state=ActionState.DUE)[0]
    client.post(f"/console/actions/{due.id}/cancel", data={"csrf": csrf, "reason": "customer asked"})
    assert console_app.store.get_action(due.id).reason == "cancelled by nora in the console: customer asked"


def test_the_actions_page_filters_and_pages_by_keyset(client, console_app):
    for n in range(30):
        paid(console_app, str(n))  # two actions each
    login(client, "nora")
    page = client.get("/console/actions?plugin=notes&state=due")
    assert page.text.count('<tr id="action-') == 50
    older = page.text.split('href="/console/actions?')[-1].split('"')[0].replace("&amp;", "&")
    assert "before=" in older and "state=due" in older
    rest = client.get(f"/console/actions?{older}")
    assert rest.text.count('<tr id="action-') == 10 and "Older actions" not in rest.text
    assert client.get("/console/actions?state=failed").text.count('<tr id="action-') == 0


def test_preview_renders_with_the_preview_code_html_sandboxed_beside_the_text(client):
    login(client, "nora")
    menu = client.get("/console/shops/north/preview")
    assert menu.status_code == 200 and '<option value="thank_you"' in menu.text
    page = client.get("/console/shops/north/preview?template=thank_you&locale=es")
    assert page.status_code == 200, page.text
    assert '<iframe class="mail" sandbox' in page.text and "<pre>" in page.text
    assert "Content-Security-Policy" in page.headers and "default-src 'none'" in page.headers["content-security-policy"]
    assert client.get("/console/shops/north/preview?template=nope").status_code == 404


def test_surveys_report_and_plugins_pages(client, console_app):
    from aftercare.models import SurveyAnswer, SurveyKind

    paid(console_app, "1")
    with console_app.store.transaction() as conn:
        for n, (kind, score) in enumerate([("csat", 5), ("csat", 2), ("nps", 10), ("ces", 3)]):
            console_app.store.record_survey_answer(
                conn, shop_id="north", order_id=f"order-{n}", email="a@example.com",
                answer=SurveyAnswer(SurveyKind(kind), score, console_app.now(), "<b>late</b> parcel" if n == 1 else ""),
                source="test",
            )  # fmt: skip
    login(client, "nora")
    surveys = client.get("/console/shops/north/surveys")
    assert surveys.status_code == 200 and surveys.text.count("<svg") == 6
    assert "&lt;b&gt;late&lt;/b&gt; parcel" in surveys.text  # comments are escaped
    report = client.get("/console/shops/north/report?since=2025-12-01")
    assert report.status_code == 200 and "<svg" in report.text and "CSAT" in report.text
    plugins = client.get("/console/shops/north/plugins")
    assert plugins.status_code == 200 and "notes" in plugins.text and "default" in plugins.text


def test_the_console_is_off_unless_enabled(tmp_path):
    from starlette.testclient import TestClient

    from aftercare.app import App
    from aftercare.asgi import create_asgi_app
    from aftercare.config import Config
    from aftercare.queue import Enqueuer

    app = App(Config(database=f"sqlite:///{tmp_path / 'a.db'}", base_dir=tmp_path))
    with TestClient(create_asgi_app(app, Enqueuer.for_app(app)), follow_redirects=False) as c:
        assert c.get("/console/login").status_code == 404
    app.close()


def test_an_order_known_only_from_partial_events_still_shows_its_customer(client, console_app):
    """A WooCommerce order of a registered customer is partial (their consent is on their
    record): the page shows it rather than nothing."""
    order = make_order("8", shop_id="north")
    partial = replace(order, partial=True)
    console_app.adapter("north").put_order(order)
    Dispatcher(console_app).dispatch(make_event("order_paid", partial, key="paid-north-8"))
    login(client, "nora")
    page = client.get("/console/shops/north/orders/order-8")
    assert page.status_code == 200 and order.customer.email in page.text


def test_the_timeline_shows_why_an_event_failed(client, console_app):
    from aftercare.worker import Worker

    order = make_order("9", shop_id="north", partial=True)
    with console_app.store.transaction() as conn:
        console_app.store.add_events(conn, [make_event("order_paid", order, key="paid-north-9")])
    Worker(console_app).run_now()  # the platform does not have the order: it cannot be re-read
    login(client, "nora")
    page = client.get("/console/shops/north/orders/order-9")
    assert "failed · attempt 1: could not re-read order order-9: order order-9 not found" in page.text
    overview = client.get("/console/shops/north").text
    assert "events failed" in overview


def test_a_retry_in_the_console_enqueues_the_action_through_the_producer(console_app):
    from starlette.testclient import TestClient

    from ..runtime.test_queue import Recording

    producer = Recording.for_app(console_app)
    paid(console_app, "9")
    console_app.adapter("north").fail_next(PlatformError("the platform said no", transient=False))
    execute_due(console_app)
    failed = console_app.store.list_actions(shop_id="north", state=ActionState.FAILED)[0]
    console_app.store.heartbeat(None)
    with TestClient(create_asgi_app(console_app, producer), base_url="http://127.0.0.1", follow_redirects=False) as c:
        login(c, "nora")
        csrf = csrf_of(c.get("/console/actions?state=failed").text)
        assert c.post(f"/console/actions/{failed.id}/retry", data={"csrf": csrf}).status_code == 303
    assert producer.actions == [[failed.id]]
