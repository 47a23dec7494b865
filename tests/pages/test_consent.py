"""Consent history keeps changes, not repeats: the opt-in page records first, the platform action after."""

from starlette.testclient import TestClient

from aftercare import hookimpl
from aftercare.dispatch import Dispatcher
from aftercare.models import ConsentState
from aftercare.pages import OPTIN_SOURCE
from aftercare.receiver import create_receiver
from aftercare.testing import make_event, make_order
from aftercare.worker import Worker

from .conftest import optin_path


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
    with TestClient(create_receiver(app, worker), base_url="http://127.0.0.1") as client:
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
