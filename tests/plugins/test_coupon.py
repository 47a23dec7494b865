"""coupon: a code for the next purchase, created on the platform before the mail that carries it."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from aftercare.actions import ActionKind, ActionState, ReasonCode
from aftercare.config import ConfigError
from aftercare.dispatch import Dispatcher, execute_due
from aftercare.mail.templates import check_templates
from aftercare.models import Money, ShipmentStatus
from aftercare.platform import PlatformError
from aftercare.plugins import coupon
from aftercare.plugins.coupon import period_key
from aftercare.store import SuppressionReason
from aftercare.testing import START, make_event, sample_order

from .conftest import inbox

DAY = timedelta(days=1)


def actions(app):
    return [(a.kind, a.key, a.due_at, a.state, a.reason) for a in sorted(app.store.list_actions(), key=lambda a: a.id)]


def run(app, *events):
    for event in events:
        Dispatcher(app).dispatch(event)
    execute_due(app)


def test_coupon_after_payment_in_spanish_and_none_for_a_second_order_in_the_quarter(plugin_app):
    app = plugin_app(coupon, settings={"coupon": {"prefix": "GRACIAS"}})
    base = sample_order("shopify_order_paid_fulfilled")  # created 2 April 2025: the quarter is 2025-Q2
    order = replace(base, locale="es", customer=replace(base.customer, first_name="Lucía"))
    run(app, make_event("order_paid", order), make_event("shipped", order), make_event("delivered", order))

    assert actions(app) == [
        (ActionKind.CREATE_COUPON, "coupon:2025-Q2", START, ActionState.DONE, ""),
        (ActionKind.SEND_EMAIL, "coupon:2025-Q2", START, ActionState.DONE, ""),
    ]
    ((code, spec),) = app.adapter("test").coupons.items()
    assert code.startswith("GRACIAS-") and len(code) == len("GRACIAS-XXXXX-XXXXX")
    assert (spec.kind, spec.value, spec.currency) == ("percent", Decimal(10), "USD")
    assert (spec.customer_email, spec.customer_id) == ("foo@example.com", "1073339468")
    assert spec.expires_at == START + 60 * DAY and spec.minimum_subtotal is None

    (mail,) = inbox(app)
    assert mail.subject == "10 % de descuento en tu próximo pedido en Tienda Ñandú"
    assert mail.key == "test/coupon/send_email/customer:foo@example.com/coupon:2025-Q2"
    assert not mail.transactional and mail.language == "es"
    assert mail.text.startswith(
        "Hola, Lucía:\n\nGracias por tu pedido #1002. Aquí tienes un 10 % de descuento para tu próxima compra:"
    )
    assert f"\n    {code}\n" in mail.text and code in mail.html
    assert "Es solo para ti y sirve una vez, hasta el 6 de marzo de 2026." in mail.text

    again = replace(order, platform_id="1073460001", number="#1003", created_at=order.created_at + 20 * DAY)
    outcome = Dispatcher(app).dispatch(make_event("order_paid", again))
    assert outcome.requests and outcome.new_actions == set()  # asked again, recorded nothing
    execute_due(app)
    assert len(app.adapter("test").coupons) == 1 and len(inbox(app)) == 1

    next_quarter = replace(again, platform_id="1073460002", number="#1004", created_at=datetime(2025, 7, 1, tzinfo=UTC))
    app.clock.advance(timedelta(hours=4))  # past the minimum gap after the first coupon mail
    run(app, make_event("order_paid", next_quarter))
    assert len(app.adapter("test").coupons) == 2
    assert inbox(app)[-1].key.endswith("/coupon:2025-Q3")


def test_fixed_amount_after_delivery_with_minimum_spend_in_bulgarian(plugin_app):
    settings = {
        "send_after": "delivered",
        "kind": "fixed_amount",
        "value": "5",
        "minimum_spend": "30",
        "valid_days": 30,
    }
    app = plugin_app(coupon, settings={"coupon": settings})
    base = sample_order("woocommerce_order_completed")
    order = replace(base, customer=replace(base.customer, first_name="Мария", locale="bg"))
    run(app, make_event("order_paid", order), make_event("shipped", order))
    assert actions(app) == []

    app.clock.advance(3 * DAY)
    parcel = replace(order.shipments[0], status=ShipmentStatus.DELIVERED, delivered_at=app.now())
    run(app, make_event("delivered", replace(order, shipments=(parcel,)), occurred_at=app.now()))
    assert [(kind, key, due, state) for kind, key, due, state, _ in actions(app)] == [
        (ActionKind.CREATE_COUPON, "coupon:2017-Q1", START + 3 * DAY, ActionState.DONE),
        (ActionKind.SEND_EMAIL, "coupon:2017-Q1", START + 3 * DAY, ActionState.DONE),
    ]
    ((code, spec),) = app.adapter("test").coupons.items()
    assert (spec.kind, spec.value, spec.minimum_subtotal) == ("fixed_amount", Decimal(5), Money(Decimal(30), "USD"))
    assert spec.customer_email == "john.doe@example.com" and spec.expires_at == START + 33 * DAY

    (mail,) = inbox(app)
    assert mail.subject == "5,00 щ.д. отстъпка за следващата ви поръчка от Tienda Ñandú"
    assert mail.text.startswith("Здравейте, Мария,\n\nБлагодарим ви за поръчка 727. Ето 5,00 щ.д. отстъпка")
    terms = "Въведете го при плащане на поръчка от поне 30,00 щ.д.; кодът е само за вас и важи еднократно,"
    assert f"{terms} до 7 февруари 2026 г. включително." in mail.text
    assert code in mail.text and mail.language == "bg"


def test_no_coupon_below_the_minimum_order_value(plugin_app):
    app = plugin_app(coupon, settings={"coupon": {"minimum_order": "30"}})
    run(app, make_event("order_paid", sample_order("woocommerce_order_processing")))  # 29.35 USD
    assert actions(app) == [] and inbox(app) == []


def test_welcome_coupon_on_confirmed_optin_once_per_customer(plugin_app):
    settings = {"reward_for": ["optin_confirmed"], "send_after": "delivered", "kind": "percent", "value": "15"}
    app = plugin_app(coupon, settings={"coupon": settings})
    first = replace(sample_order("shopify_order_paid_fulfilled"), locale="en")
    second = replace(first, platform_id="1073460009", number="#1009")
    run(app, make_event("optin_confirmed", first), make_event("survey_answered", first))
    app.clock.advance(40 * DAY)
    run(app, make_event("optin_confirmed", second))

    assert actions(app) == [
        (ActionKind.CREATE_COUPON, "reward:optin_confirmed", START, ActionState.DONE, ""),
        (ActionKind.SEND_EMAIL, "reward:optin_confirmed", START, ActionState.DONE, ""),
    ]
    (mail,) = inbox(app)
    assert mail.subject == "Welcome! 15% off your next order"
    assert "Welcome to our newsletter, and thank you for confirming." in mail.text
    assert "As a small gift, here is 15% off your next purchase:" in mail.text
    assert len(app.adapter("test").coupons) == 1


def test_survey_reward_in_spanish(plugin_app):
    app = plugin_app(coupon, settings={"coupon": {"reward_for": ["survey_answered"], "send_after": "delivered"}})
    order = replace(sample_order("woocommerce_order_completed"), locale="es-ES")
    run(app, make_event("optin_confirmed", order), make_event("survey_answered", order))
    (mail,) = inbox(app)
    assert mail.subject == "¡Gracias por tu respuesta! 10 % de descuento en tu próximo pedido"
    assert "Gracias por dedicar un momento a responder nuestra pregunta." in mail.text
    assert [a.key for a in app.store.list_actions()] == ["reward:survey_answered"] * 2


def test_a_coupon_the_platform_refuses_takes_its_mail_with_it(plugin_app):
    app = plugin_app(coupon)
    app.adapter("test").fail_next(PlatformError("Discount code has already been taken", transient=False))
    run(app, make_event("order_paid", sample_order("shopify_order_paid_fulfilled")))
    app.clock.advance(timedelta(minutes=2))
    execute_due(app)
    coupon_action, mail_action = actions(app)
    assert coupon_action[3:] == (ActionState.FAILED, "Discount code has already been taken")
    assert mail_action[3] is ActionState.DROPPED and "Discount code has already been taken" in mail_action[4]
    assert inbox(app) == []


def records(app, kind):
    return sorted((a for a in app.store.list_actions() if a.kind is kind), key=lambda a: a.id)


def test_no_coupon_is_made_for_a_mail_the_frequency_cap_would_drop(plugin_app):
    app = plugin_app(coupon, mail={"frequency_cap": 1})
    first = sample_order("shopify_order_paid_fulfilled")  # 2025-Q2: its coupon mail is the one the cap allows
    run(app, make_event("order_paid", first))
    app.clock.advance(timedelta(hours=5))  # past the minimum gap: only the cap stands in the way
    next_quarter = replace(first, platform_id="1073460002", number="#1004", created_at=datetime(2025, 7, 1, tzinfo=UTC))
    run(app, make_event("order_paid", next_quarter))

    assert len(app.adapter("test").coupons) == 1 and len(inbox(app)) == 1  # nothing for Q3 in the shop
    made, refused = records(app, ActionKind.CREATE_COUPON)
    mailed, dropped = records(app, ActionKind.SEND_EMAIL)
    assert (made.state, mailed.state) == (ActionState.DONE, ActionState.DONE)
    assert (refused.state, refused.reason_code) == (ActionState.DROPPED, ReasonCode.MESSAGE_REFUSED)
    assert refused.attempts == 0  # its channel was never called
    assert refused.reason == (
        f"not run: every message waiting for it would be refused now: {dropped.idempotency_key} "
        "(frequency cap: 1 marketing messages to this customer in the last 7 days (at most 1))"
    )
    assert (dropped.state, dropped.reason_code) == (ActionState.DROPPED, ReasonCode.DEPENDENCY_FAILED)
    assert dropped.reason == f"depends on {refused.idempotency_key}, which did not happen: {refused.reason}"


@pytest.mark.parametrize("reason", [SuppressionReason.UNSUBSCRIBED, SuppressionReason.BOUNCED])
def test_no_coupon_is_made_for_a_suppressed_address(plugin_app, reason):
    app = plugin_app(coupon)
    app.store.suppress("test", "foo@example.com", reason, "550 no such user")
    run(app, make_event("order_paid", sample_order("shopify_order_paid_fulfilled")))

    assert app.adapter("test").coupons == {} and inbox(app) == []
    (refused,) = records(app, ActionKind.CREATE_COUPON)
    (dropped,) = records(app, ActionKind.SEND_EMAIL)
    assert (refused.state, refused.reason_code) == (ActionState.DROPPED, ReasonCode.MESSAGE_REFUSED)
    why = f"suppressed: {reason.value} foo@example.com (550 no such user)"
    assert refused.reason.endswith(f"would be refused now: {dropped.idempotency_key} ({why})")
    assert (dropped.state, dropped.reason_code) == (ActionState.DROPPED, ReasonCode.DEPENDENCY_FAILED)


def test_a_coupon_whose_mail_waits_for_the_morning_is_made_and_mailed_then(plugin_app):
    app = plugin_app(coupon, timezone="Europe/Sofia")
    app.clock.set(datetime(2026, 1, 5, 19, 30, tzinfo=UTC))  # 21:30 in Sofia: quiet hours
    run(app, make_event("order_paid", sample_order("shopify_order_paid_fulfilled")))

    ((code, _spec),) = app.adapter("test").coupons.items()  # a deferral is no refusal: the coupon is made
    (mail,) = records(app, ActionKind.SEND_EMAIL)
    assert (mail.state, mail.reason_code) == (ActionState.DUE, ReasonCode.QUIET_HOURS) and inbox(app) == []
    app.clock.set(datetime(2026, 1, 6, 6, 0, tzinfo=UTC))  # 08:00 in Sofia
    execute_due(app)
    (sent,) = inbox(app)
    assert code in sent.text and records(app, ActionKind.SEND_EMAIL)[0].state is ActionState.DONE


@pytest.mark.parametrize(
    ("period", "expected"),
    [("quarter", "2026-Q2"), ("month", "2026-04"), ("year", "2026"), ("ever", "once")],
)
def test_the_period_is_the_shops_local_calendar(period, expected):
    late_in_march_utc = datetime(2026, 3, 31, 22, 30, tzinfo=UTC)  # already 1 April in Sofia
    assert period_key(late_in_march_utc, period, "Europe/Sofia") == expected
    assert period_key(late_in_march_utc, "quarter", "UTC") == "2026-Q1"


def test_settings_are_checked_and_templates_render(aftercare_app):
    with pytest.raises(ConfigError, match="a percent coupon takes a value up to 100"):
        aftercare_app(coupon, settings={"coupon": {"value": "150"}})
    with pytest.raises(ConfigError, match="reward_for"):
        aftercare_app(coupon, settings={"coupon": {"reward_for": ["review_written"]}})
    app = aftercare_app(coupon, settings={"coupon": {"enabled": True}})
    assert check_templates(app) == []


@pytest.mark.parametrize(
    ("locale", "joined", "button"),
    [
        ("en", "thank you for confirming. As a small gift", "Shop now"),
        ("es", "Gracias por confirmarlo. Como pequeño regalo", "Ir a la tienda"),
        ("bg", "абонамента си. Като малък подарък", "Към магазина"),
    ],
)
def test_reward_coupon_reads_as_two_sentences_keeps_the_code_whole_and_links_to_the_shop(
    plugin_app, locale, joined, button
):
    from aftercare.mail.preview import render_preview

    brand = {"shop_url": "https://tienda.example", "accent_color": "#fde047"}
    app = plugin_app(coupon, settings={"coupon": {"reward_for": ["optin_confirmed"]}}, mail={"brand": brand})
    variables = {"code": "BIENVENIDA2026-7Q2XM-4KD9P", "percent": "15", "amount": None, "expires_at": None,
                 "minimum": None, "moment": "optin_confirmed"}  # fmt: skip
    message = render_preview(app, "test", "reward_coupon", locale=locale, plugin="coupon", variables=variables)
    html = message.get_body(("html",)).get_content()
    assert joined in html
    cell = html.split('class="code"', 1)[1].split("</td>", 1)[0]
    assert "white-space: nowrap" in cell and "monospace" in cell and "BIENVENIDA2026-7Q2XM-4KD9P" in cell
    size = int(cell.split("font-size:", 1)[1].split("px", 1)[0])
    assert size * 0.6 * len("BIENVENIDA2026-7Q2XM-4KD9P") <= 280  # fits a 375 px phone's column
    assert 'href="https://tienda.example" target="_blank"' in html and f">{button}</a>" in html
    assert "color: #111827" in html.split(f">{button}</a>")[0].rsplit("<a ", 1)[1]  # dark text on a light accent
    assert f"{button}: https://tienda.example" in message.get_body(("plain",)).get_content()
    preheader = html.split("<body", 1)[1].split("</div>", 1)[0]
    assert "display:none" in preheader and "BIENVENIDA2026-7Q2XM-4KD9P" in preheader  # the inbox's second line


def test_coupon_mail_without_a_shop_url_has_no_button(plugin_app):
    from aftercare.mail.preview import render_preview

    app = plugin_app(coupon)
    message = render_preview(app, "test", "coupon", locale="en", plugin="coupon")
    html = message.get_body(("html",)).get_content()
    assert "Shop now" not in html and 'class="code"' in html
