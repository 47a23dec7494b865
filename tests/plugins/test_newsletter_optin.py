"""newsletter_optin: a double opt-in invitation after delivery; a confirmation reaches the platform."""

from dataclasses import replace
from datetime import timedelta

import pytest

from aftercare.actions import ActionKind, ActionState
from aftercare.dispatch import Dispatcher, execute_due
from aftercare.links import read_token
from aftercare.mail.templates import check_templates
from aftercare.models import ConsentState, Shipment, ShipmentStatus
from aftercare.plugins import coupon, newsletter_optin
from aftercare.testing import START, make_event, sample_order

from .conftest import inbox

DAY = timedelta(days=1)


def actions(app):
    return [(a.kind, a.key, a.due_at, a.state, a.reason) for a in sorted(app.store.list_actions(), key=lambda a: a.id)]


def deliver(app, order, parcel=None):
    parcel = replace(parcel or order.shipments[0], status=ShipmentStatus.DELIVERED, delivered_at=app.now())
    app.adapter("test").put_order(order)
    event = make_event(
        "delivered", order, occurred_at=app.now(), key=f"delivered:{order.platform_id}:{parcel.platform_id}"
    )
    Dispatcher(app).dispatch(replace(event, shipment=parcel))


def test_invitation_two_days_after_delivery_in_spanish_once_per_customer(plugin_app):
    app = plugin_app(newsletter_optin)
    base = sample_order("shopify_order_paid_fulfilled")  # Shopify says: not_subscribed
    second_parcel = Shipment("1069019999", "Correos", "PK1", shipped_at=START)
    order = replace(
        base,
        locale="es",
        customer=replace(base.customer, first_name="Lucía"),
        shipments=(*base.shipments, second_parcel),
    )
    for kind in ("order_paid", "shipped"):
        Dispatcher(app).dispatch(make_event(kind, order))
    deliver(app, order)
    app.clock.advance(DAY)
    deliver(app, order, second_parcel)  # a second parcel: no second invitation
    assert actions(app) == [(ActionKind.SEND_EMAIL, "newsletter-invite", START + 2 * DAY, ActionState.DUE, "")]

    app.clock.advance(DAY - timedelta(minutes=1))
    execute_due(app)
    assert inbox(app) == []
    app.clock.advance(timedelta(minutes=1))
    execute_due(app)
    (mail,) = inbox(app)
    assert mail.subject == "¿Quieres recibir noticias de Tienda Ñandú?"
    assert mail.key == "test/newsletter_optin/send_email/customer:foo@example.com/newsletter-invite"
    assert not mail.transactional and mail.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert mail.text.startswith("Hola, Lucía:\n\nEsperamos que tu pedido #1002 haya llegado bien")
    (link,) = [line for line in mail.text.splitlines() if line.startswith("http://127.0.0.1:8000/optin/")]
    assert f'href="{link}"' in mail.html and "Sí, quiero suscribirme" in mail.html
    token = read_token(app, "optin", link.rsplit("/", 1)[-1])
    assert token.fields == ("1073459970", "foo@example.com", "es")

    later_order = replace(order, platform_id="1073460100", number="#1100")
    app.clock.advance(30 * DAY)
    deliver(app, later_order)
    app.clock.advance(5 * DAY)
    execute_due(app)
    assert len(inbox(app)) == 1  # one invitation per customer, ever


def test_invitation_in_bulgarian_for_a_woocommerce_customer_with_unknown_consent(plugin_app):
    app = plugin_app(newsletter_optin, settings={"newsletter_optin": {"days_after_delivery": 3}})
    base = sample_order("woocommerce_order_completed")
    order = replace(base, customer=replace(base.customer, first_name="Иван", locale="bg"))
    deliver(app, order)
    app.clock.advance(3 * DAY)
    execute_due(app)
    (mail,) = inbox(app)
    assert mail.subject == "Искате ли да получавате новини от Tienda Ñandú?"
    assert mail.text.startswith("Здравейте, Иван,\n\nНадяваме се, че поръчка 727 е пристигнала благополучно")
    assert "Да, абонирайте ме" in mail.html and mail.language == "bg"


@pytest.mark.parametrize("state", [ConsentState.SUBSCRIBED, ConsentState.UNSUBSCRIBED, ConsentState.PENDING])
def test_no_invitation_for_customers_who_already_chose_or_are_confirming(plugin_app, state):
    app = plugin_app(newsletter_optin)
    order = sample_order("shopify_order_paid_fulfilled")
    deliver(app, replace(order, customer=replace(order.customer, marketing_consent=state)))
    assert actions(app) == []


def test_an_unsubscribe_before_the_invitation_is_due_drops_it(plugin_app):
    app = plugin_app(newsletter_optin)
    deliver(app, sample_order("shopify_order_paid_fulfilled"))
    app.store.record_consent("test", "foo@example.com", ConsentState.UNSUBSCRIBED, "unsubscribe link")
    app.clock.advance(2 * DAY)
    execute_due(app)
    assert inbox(app) == []
    assert actions(app)[0][3:] == (ActionState.DROPPED, "fire-time check: the customer unsubscribed")


def test_confirmation_reaches_the_platform_with_its_source_and_the_tag(plugin_app):
    app = plugin_app(newsletter_optin, settings={"newsletter_optin": {"customer_tag": "newsletter"}})
    order = sample_order("shopify_order_paid_fulfilled")
    Dispatcher(app).dispatch(make_event("optin_confirmed", order))
    execute_due(app)

    assert actions(app) == [
        (ActionKind.SET_MARKETING_CONSENT, "subscribed:order:1073459970", START, ActionState.DONE, ""),
        (ActionKind.TAG_CUSTOMER, "newsletter", START, ActionState.DONE, ""),
    ]
    adapter = app.adapter("test")
    assert adapter.consent["foo@example.com"] == (ConsentState.SUBSCRIBED, "double opt-in")
    assert adapter.customer_tags["foo@example.com"] == {"newsletter"}
    assert app.store.consent_history("test", "foo@example.com") == [(ConsentState.SUBSCRIBED, "double opt-in", START)]


def test_with_the_coupon_plugin_a_welcome_coupon_once_even_after_a_second_order(plugin_app):
    app = plugin_app(newsletter_optin, coupon, settings={"coupon": {"reward_for": ["optin_confirmed"]}})
    first = replace(sample_order("woocommerce_order_completed"), locale="es")
    second = replace(first, platform_id="728", number="728")
    Dispatcher(app).dispatch(make_event("optin_confirmed", first))
    execute_due(app)
    app.clock.advance(10 * DAY)
    Dispatcher(app).dispatch(make_event("optin_confirmed", second))  # signed up again from a later order's mail
    execute_due(app)

    welcome = [a for a in app.store.list_actions() if a.plugin == "coupon"]
    assert sorted((a.kind.value, a.key, a.order_id) for a in welcome) == [
        ("create_coupon", "reward:optin_confirmed", "727"),
        ("send_email", "reward:optin_confirmed", "727"),
    ]
    (mail,) = inbox(app)
    assert mail.subject == "¡Te damos la bienvenida! 10 % de descuento en tu próximo pedido"
    consent = [a.key for a in app.store.list_actions() if a.kind is ActionKind.SET_MARKETING_CONSENT]
    assert sorted(consent) == ["subscribed:order:727", "subscribed:order:728"]


def test_templates_check_clean(aftercare_app):
    assert check_templates(aftercare_app(newsletter_optin, settings={"newsletter_optin": {"enabled": True}})) == []
