"""The send_sms and send_whatsapp channels against a local fake of Twilio's Messages API
(``responses``: no request leaves the process): numbers, consent, cap and quiet hours shared
with mail, Twilio's answers, and no credential in any reason."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from urllib.parse import parse_qs

import pytest
import responses

from aftercare import hookimpl
from aftercare.actions import ActionState, ReasonCode
from aftercare.dispatch import Dispatcher, execute_due
from aftercare.models import Address, ConsentState
from aftercare.testing import START, make_event, make_order

SID, TOKEN = "AC" + "1" * 32, "token-" + "s3cret" * 4
MESSAGES = f"https://api.twilio.com/2010-04-01/Accounts/{SID}/Messages.json"
WHATSAPP_SID = "HX" + "a" * 32


class Texter:
    """A transactional text on shipping, a marketing text and a WhatsApp message on payment."""

    name = "texter"
    TEMPLATES = ""

    @hookimpl
    def on_shipped(self, event, ctx):
        ctx.send_sms("parcel", transactional=True, context={"eta": "mañana"})

    @hookimpl
    def on_order_paid(self, event, ctx):
        ctx.later(hours=1).send_sms("offer")
        ctx.send_whatsapp("order_update", transactional=True, key="wa")


@pytest.fixture
def text_app(aftercare_app, tmp_path, monkeypatch):
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", SID)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", TOKEN)
    for locale, parcel, offer in (
        ("en", "{{ shop.name }}: order {{ order.number }} is on its way, {{ eta }}.", "10% off this week"),
        ("es", "{{ shop.name }}: tu pedido {{ order.number }} va en camino, llega {{ eta }}.", "10 % esta semana"),
    ):
        (tmp_path / "texts" / locale).mkdir(parents=True)
        (tmp_path / "texts" / locale / "parcel.sms").write_text(parcel)
        (tmp_path / "texts" / locale / "offer.sms").write_text(offer)
    Texter.TEMPLATES = str(tmp_path / "texts")
    made = []

    def make(mail=None, plugin=None, **sms):
        settings = {"enabled": True, "from_number": "+34600111222", **sms}
        quiet_off = {"quiet_hours_start": "00:00", "quiet_hours_end": "00:00"}
        shop = {"name": "Tienda", "mail": {"sms": settings, **quiet_off, **(mail or {})}}
        app = aftercare_app(plugin or Texter(), shop=shop)
        made.append(app)
        return app

    yield make
    for app in made:
        app.plugins.channels()["send_sms"].close()


def order_with(phone="612 345 678", country="ES", sms_consent=ConsentState.UNKNOWN):
    order = make_order("1001", shipping_address=Address(first_name="Ana", country_code=country, phone=phone))
    return replace(order, customer=replace(order.customer, sms_consent=sms_consent))


def run(app, kind, order):
    app.adapter("test").put_order(order)
    Dispatcher(app).dispatch(make_event(kind, order))
    execute_due(app)


def sent(rsps):
    return [{k: v[0] for k, v in parse_qs(call.request.body).items()} for call in rsps.calls]


def twilio(rsps, status=201, body=None, **headers):
    rsps.add(responses.POST, MESSAGES, json=body or {"sid": "SM" + "0" * 32, "status": "queued"}, status=status,
             headers=headers)  # fmt: skip


def by_template(app):
    return {a.payload["template"]: a for a in app.store.list_actions()}


def test_a_transactional_text_goes_to_the_e164_number_in_the_customers_language(text_app):
    app = text_app()
    with responses.RequestsMock() as rsps:
        twilio(rsps)
        run(app, "shipped", order_with())
        (form,) = sent(rsps)
        assert rsps.calls[0].request.headers["Authorization"].startswith("Basic ")
    assert form == {"To": "+34612345678", "From": "+34600111222",
                    "Body": "Tienda: tu pedido 1001 va en camino, llega mañana."}  # fmt: skip
    (action,) = app.store.list_actions()
    assert action.state is ActionState.DONE and action.result["sid"].startswith("SM")


def test_a_messaging_service_replaces_the_from_number(text_app):
    app = text_app(messaging_service_sid="MG" + "b" * 32)
    with responses.RequestsMock() as rsps:
        twilio(rsps)
        run(app, "shipped", order_with())
        (form,) = sent(rsps)
    assert form["MessagingServiceSid"] == "MG" + "b" * 32 and "From" not in form


@pytest.mark.parametrize(
    ("phone", "country", "why"),
    [
        ("", "ES", "no number to text: the order has no phone number"),
        ("12", "ES", "no number to text: the order's phone number is not a valid number for ES"),
        (
            "612 345 678",
            "",
            "no number to text: the order's phone number is not a valid number (no country on the address)",
        ),
    ],
)
def test_an_order_without_a_usable_number_is_dropped_with_the_reason(text_app, phone, country, why):
    app = text_app()
    with responses.RequestsMock() as rsps:  # no call expected: an unexpected one fails the test
        run(app, "shipped", order_with(phone, country))
        assert len(rsps.calls) == 0
    (action,) = app.store.list_actions()
    assert (action.state, action.reason, action.reason_code) == (ActionState.DROPPED, why, ReasonCode.NO_RECIPIENT)


def test_marketing_texts_need_sms_consent_apart_from_email_consent(text_app):
    app = text_app(whatsapp_from="+34600999888")
    order = order_with()  # email consent aside: SMS consent unknown
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        twilio(rsps)
        run(app, "order_paid", order)
        app.clock.advance(timedelta(hours=1))
        execute_due(app)
    offer = by_template(app)["offer"]
    assert offer.state is ActionState.DROPPED
    assert offer.reason == "no consent to marketing texts (the platform says unknown)"
    assert offer.reason_code is ReasonCode.NO_CONSENT

    app = text_app()
    consenting = order_with(sms_consent=ConsentState.SUBSCRIBED)
    with responses.RequestsMock() as rsps:
        twilio(rsps)
        app.adapter("test").put_order(consenting)
        Dispatcher(app).dispatch(make_event("order_paid", consenting))
        app.clock.advance(timedelta(hours=1))
        execute_due(app)
        assert [f["Body"] for f in sent(rsps)] == ["10 % esta semana"]


class TextedCoupon:
    """A coupon and the marketing text that carries its code."""

    name = "texted_coupon"

    @property
    def TEMPLATES(self):  # noqa: N802  (the plugin attribute's name)
        return Texter.TEMPLATES

    @hookimpl
    def on_order_paid(self, event, ctx):
        coupon = ctx.create_coupon(percent=10)
        ctx.send_sms("offer", context={"code": coupon.payload["code"]}, after=coupon)


@pytest.mark.parametrize("sms_consent", [ConsentState.UNKNOWN, ConsentState.SUBSCRIBED])
def test_no_coupon_is_made_for_a_text_without_consent(text_app, sms_consent):
    app = text_app(plugin=TextedCoupon())
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        twilio(rsps)
        run(app, "order_paid", order_with(sms_consent=sms_consent))
        texts = sent(rsps)
    coupon, text = sorted(app.store.list_actions(), key=lambda a: a.id)
    if sms_consent is ConsentState.SUBSCRIBED:
        assert (coupon.state, text.state, len(texts)) == (ActionState.DONE, ActionState.DONE, 1)
        assert len(app.adapter("test").coupons) == 1
        return
    assert app.adapter("test").coupons == {} and texts == []
    assert (coupon.state, coupon.reason_code) == (ActionState.DROPPED, ReasonCode.MESSAGE_REFUSED)
    assert coupon.reason.endswith(f"{text.idempotency_key} (no consent to marketing texts (the platform says unknown))")
    assert (text.state, text.reason_code) == (ActionState.DROPPED, ReasonCode.DEPENDENCY_FAILED)


def test_stop_means_no_text_at_all_even_transactional(text_app):
    app = text_app()
    with responses.RequestsMock() as rsps:
        run(app, "shipped", order_with(sms_consent=ConsentState.UNSUBSCRIBED))
        assert len(rsps.calls) == 0
    (action,) = app.store.list_actions()
    assert (action.state, action.reason) == (ActionState.DROPPED, "the customer unsubscribed from texts")


def test_twilio_21610_is_the_customers_stop_and_is_never_retried(text_app):
    app = text_app()
    with responses.RequestsMock() as rsps:
        twilio(rsps, 400, {"code": 21610, "message": "Attempt to send to unsubscribed recipient", "status": 400})
        run(app, "shipped", order_with())
    (action,) = app.store.list_actions()
    assert action.state is ActionState.DROPPED and action.reason_code is ReasonCode.NO_CONSENT
    assert "replied STOP" in action.reason


def test_a_refusal_fails_with_twilios_code_and_no_number_and_a_5xx_is_retried(text_app):
    app = text_app()
    refusal = {"code": 21211, "message": "The 'To' number +34612345678 is not a valid phone number.", "status": 400}
    with responses.RequestsMock() as rsps:
        twilio(rsps, 400, refusal)
        run(app, "shipped", order_with())
    (action,) = app.store.list_actions()
    assert action.state is ActionState.FAILED
    assert action.reason == "Twilio refused the message: 21211: The 'To' number <number> is not a valid phone number."

    app = text_app()
    with responses.RequestsMock() as rsps:
        twilio(rsps, 503, {"code": 20503, "message": "Service unavailable"}, **{"Retry-After": "120"})
        run(app, "shipped", order_with())
    (action,) = app.store.list_actions()
    assert action.state is ActionState.DUE and action.reason_code is ReasonCode.RETRY
    assert action.due_at >= START + timedelta(seconds=120)


def test_no_credential_appears_in_a_reason(text_app, monkeypatch):
    app = text_app()
    with responses.RequestsMock() as rsps:
        twilio(rsps, 401, {"code": 20003, "message": "Authenticate", "status": 401})
        run(app, "shipped", order_with())
    (action,) = app.store.list_actions()
    assert action.state is ActionState.FAILED
    assert action.reason.startswith("Twilio refused the account SID or auth token")
    assert SID not in action.reason and TOKEN not in action.reason

    monkeypatch.delenv("TWILIO_AUTH_TOKEN")
    app = text_app()
    with responses.RequestsMock() as rsps:
        run(app, "shipped", order_with())
        assert len(rsps.calls) == 0
    (action,) = app.store.list_actions()
    assert action.reason == "texts: the environment variable TWILIO_AUTH_TOKEN is not set"


def test_marketing_texts_count_in_the_shops_frequency_cap(text_app):
    app = text_app(mail={"frequency_cap": 1})
    customer = order_with(sms_consent=ConsentState.SUBSCRIBED)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        twilio(rsps)
        app.adapter("test").put_order(customer)
        Dispatcher(app).dispatch(make_event("order_paid", customer))
        app.clock.advance(timedelta(hours=1))
        execute_due(app)
        second = replace(customer, platform_id="order-1002", number="1002")
        app.adapter("test").put_order(second)
        Dispatcher(app).dispatch(make_event("order_paid", second, key="test:order_paid:2"))
        app.clock.advance(timedelta(hours=1))
        execute_due(app)
    offers = sorted((a for a in app.store.list_actions() if a.payload["template"] == "offer"), key=lambda a: a.id)
    assert [a.state for a in offers] == [ActionState.DONE, ActionState.DROPPED]
    assert offers[1].reason.startswith("frequency cap: 1 marketing messages to this customer")


def test_quiet_hours_hold_a_marketing_text_until_morning(text_app):
    app = text_app(mail={"quiet_hours_start": "08:00", "quiet_hours_end": "23:00"})  # START is 09:00 UTC
    consenting = order_with(sms_consent=ConsentState.SUBSCRIBED)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        twilio(rsps)
        app.adapter("test").put_order(consenting)
        Dispatcher(app).dispatch(make_event("order_paid", consenting))
        app.clock.advance(timedelta(hours=1))
        execute_due(app)
    offer = by_template(app)["offer"]
    assert offer.state is ActionState.DUE and offer.reason_code is ReasonCode.QUIET_HOURS


def test_whatsapp_sends_the_approved_template_with_its_variables(text_app):
    templates = {"order_update": {"content_sid": WHATSAPP_SID, "variables": ["customer.first_name", "order.number"]}}
    app = text_app(whatsapp_from="+34600999888", whatsapp_templates=templates)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        twilio(rsps)
        run(app, "order_paid", order_with())
        forms = [f for f in sent(rsps) if "ContentSid" in f]
    assert forms == [{"To": "whatsapp:+34612345678", "From": "whatsapp:+34600999888", "ContentSid": WHATSAPP_SID,
                      "ContentVariables": json.dumps({"1": "Ana", "2": "1001"})}]  # fmt: skip


def test_whatsapp_without_a_sender_or_an_approved_template_is_dropped_saying_so(text_app):
    app = text_app()
    with responses.RequestsMock(assert_all_requests_are_fired=False):
        run(app, "order_paid", order_with())
    assert by_template(app)["order_update"].reason == "WhatsApp is off for this shop ([mail.sms] has no whatsapp_from)"
    app = text_app(whatsapp_from="+34600999888")
    with responses.RequestsMock(assert_all_requests_are_fired=False):
        run(app, "order_paid", order_with())
    wa = by_template(app)["order_update"]
    assert wa.reason == "no approved WhatsApp template for 'order_update' ([mail.sms.whatsapp_templates])"


def test_texts_off_by_default_and_settings_checked(aftercare_app):
    from pydantic import ValidationError

    from aftercare.config.sms import SmsSettings

    assert not SmsSettings().enabled
    with pytest.raises(ValidationError, match="is not an E.164 number"):
        SmsSettings(from_number="600 111 222")
    with pytest.raises(ValidationError, match="need from_number or messaging_service_sid"):
        SmsSettings(enabled=True)
    app = aftercare_app(Texter())
    with responses.RequestsMock() as rsps:
        run(app, "shipped", order_with())
        assert len(rsps.calls) == 0
    (action,) = app.store.list_actions()
    assert action.reason == "texts are off for this shop ([mail.sms] enabled = false)"
