"""Consent history keeps changes, not repeats: the opt-in page records first, the platform action after."""

import threading

from starlette.testclient import TestClient

from aftercare import hookimpl
from aftercare.asgi import create_asgi_app
from aftercare.dispatch import Dispatcher
from aftercare.mail.unsubscribe import unsubscribe_url
from aftercare.models import ConsentState
from aftercare.pages import OPTIN_SOURCE
from aftercare.testing import make_event, make_order
from aftercare.worker import Worker

from .conftest import optin_path, paid, path, survey_path


class Subscribe:
    """What a newsletter plugin does on a confirmed opt-in: set the consent on the platform too."""

    name = "subscribe"

    @hookimpl
    def on_optin_confirmed(self, event, ctx):
        ctx.set_marketing_consent(ConsentState.SUBSCRIBED, source=OPTIN_SOURCE)


def test_confirmed_optin_reaches_the_platform_and_is_recorded_once(aftercare_app):
    app = aftercare_app(Subscribe())
    worker = Worker(app)
    order = make_order()
    Dispatcher(app).dispatch(make_event("order_paid", order))
    with TestClient(create_asgi_app(app, worker.queue), base_url="http://127.0.0.1") as client:
        assert client.post(optin_path(app, order)).status_code == 200
    worker.run_now()

    assert app.adapter("test").consent["ana@example.com"] == (ConsentState.SUBSCRIBED, OPTIN_SOURCE)
    [action] = app.store.list_actions()
    assert action.state.value == "done"
    assert app.store.consent_history("test", "ana@example.com") == [(ConsentState.SUBSCRIBED, OPTIN_SOURCE, app.now())]


def test_the_action_records_a_change_of_state(aftercare_app):
    app = aftercare_app(Subscribe())
    app.store.record_consent("test", "ana@example.com", ConsentState.UNSUBSCRIBED, "unsubscribe link")
    Dispatcher(app).dispatch(make_event("optin_confirmed", make_order(), key="optin:ana@example.com"))
    Worker(app).run_now()
    assert [state for state, _source, _at in app.store.consent_history("test", "ana@example.com")] == [
        ConsentState.UNSUBSCRIBED,
        ConsentState.SUBSCRIBED,
    ]


def simultaneously(n, post):
    """Call ``post`` on n threads released at the same moment; their answers' statuses."""
    start = threading.Barrier(n)
    statuses = []

    def run():
        start.wait()
        statuses.append(post().status_code)

    threads = [threading.Thread(target=run) for _ in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return statuses


def test_twenty_simultaneous_optins_and_unsubscribes_write_one_history_row_each(served):
    app, _worker, client = served
    order = paid(app)
    assert simultaneously(20, lambda: client.post(optin_path(app, order))) == [200] * 20
    assert [state for state, _source, _at in app.store.consent_history("test", "ana@example.com")] == [
        ConsentState.SUBSCRIBED
    ]
    unsubscribe = path(unsubscribe_url(app, "test", "ana@example.com"))
    assert simultaneously(20, lambda: client.post(unsubscribe)) == [200] * 20
    assert [state for state, _source, _at in app.store.consent_history("test", "ana@example.com")] == [
        ConsentState.SUBSCRIBED,
        ConsentState.UNSUBSCRIBED,
    ]


def test_customer_pages_send_csp_frame_and_referrer_headers(served):
    app, _worker, client = served
    order = paid(app)
    pages = [
        client.get(optin_path(app, order)),
        client.post(optin_path(app, order)),
        client.get(survey_path(app, order)),
        client.post(survey_path(app, order)),
        client.get("/survey/not-a-token"),
        client.get(path(unsubscribe_url(app, "test", "ana@example.com"))),
        client.get("/unsubscribe/not-a-token"),
    ]
    for page in pages:
        assert page.headers["content-type"].startswith("text/html"), page.url
        policy = page.headers["content-security-policy"]
        assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy and "script-src" not in policy
        assert page.headers["x-frame-options"] == "DENY" and page.headers["referrer-policy"] == "no-referrer"
