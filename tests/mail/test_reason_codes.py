"""The mail channel's drops and deferrals are stored with their reason code (the text stays for people)."""

from datetime import timedelta

from aftercare.actions import ActionState, ReasonCode
from aftercare.dispatch import Dispatcher, execute_due
from aftercare.models import ConsentState
from aftercare.store import SuppressionReason
from aftercare.testing import make_event, make_order

from .test_policy import EVENING_UTC


def mail_code(app, key="thank_you"):
    return next((a.state, a.reason_code) for a in app.store.list_actions() if a.key == key)


def paid(app, number="501"):
    order = make_order(number, email="ana@example.com")
    Dispatcher(app).dispatch(make_event("order_paid", order))
    execute_due(app)
    return order


def test_a_bounced_address_is_suppressed(mail_app):
    app = mail_app()
    app.store.suppress("test", "ana@example.com", SuppressionReason.BOUNCED, "550 no such user")
    paid(app)
    assert mail_code(app) == (ActionState.DROPPED, ReasonCode.SUPPRESSED)


def test_an_unsubscribed_address_is_suppressed_for_marketing_mail(mail_app):
    app = mail_app()
    app.store.suppress("test", "ana@example.com", SuppressionReason.UNSUBSCRIBED, "one-click")
    paid(app)
    assert mail_code(app) == (ActionState.DROPPED, ReasonCode.SUPPRESSED)


def test_withdrawn_marketing_consent_is_no_consent(mail_app):
    app = mail_app()
    app.store.record_consent("test", "ana@example.com", ConsentState.UNSUBSCRIBED, "one-click unsubscribe")
    paid(app)
    assert mail_code(app) == (ActionState.DROPPED, ReasonCode.NO_CONSENT)


def test_the_frequency_cap(mail_app):
    app = mail_app(mail={"frequency_cap": 1, "frequency_days": 7})
    paid(app, "501")
    app.clock.advance(timedelta(hours=1))
    paid(app, "502")
    marketing = sorted((a for a in app.store.list_actions() if a.key == "thank_you"), key=lambda a: a.id)
    assert [(a.state, a.reason_code) for a in marketing] == [
        (ActionState.DONE, ReasonCode.NONE),
        (ActionState.DROPPED, ReasonCode.FREQUENCY_CAP),
    ]


def test_quiet_hours(mail_app):
    app = mail_app(timezone="Europe/Sofia")
    app.clock.set(EVENING_UTC)
    paid(app)
    assert mail_code(app) == (ActionState.DUE, ReasonCode.QUIET_HOURS)
