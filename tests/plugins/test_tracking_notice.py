"""tracking_notice: one transactional mail per parcel, with a working tracking link."""

from dataclasses import replace
from datetime import timedelta

import pytest

from aftercare.actions import ActionKind, ActionState
from aftercare.config import ConfigError
from aftercare.dispatch import Dispatcher, execute_due
from aftercare.mail.templates import check_templates
from aftercare.models import Customer, Shipment, ShipmentStatus
from aftercare.plugins import tracking_notice
from aftercare.plugins.tracking_notice import tracking_url
from aftercare.testing import START, make_event, sample_order

from .conftest import inbox

SHOP = "test/tracking_notice/send_email"


def shipped(order, shipment, kind="shipped", at=START):
    """The event a platform sends for one parcel of ``order``."""
    event = make_event(kind, order, occurred_at=at, key=f"test:{kind}:{order.platform_id}:{shipment.platform_id}")
    return replace(event, shipment=shipment)


def actions(app):
    return [(a.kind, a.key, a.due_at, a.state) for a in sorted(app.store.list_actions(), key=lambda a: a.id)]


def test_a_two_parcel_shopify_order_gets_one_notice_per_parcel_in_spanish(plugin_app):
    app = plugin_app(tracking_notice)
    base = sample_order("shopify_order_paid_fulfilled")
    first = replace(base.shipments[0], carrier="Correos", tracking_number="PK43BG0440928700108001F")
    second = Shipment(
        "1069019999", "DHL Express", "JJD000390007", "https://dhl.example/t/JJD000390007",
        ShipmentStatus.IN_TRANSIT, shipped_at=START,
    )  # fmt: skip
    order = replace(
        base,
        locale="es-ES",
        customer=replace(base.customer, first_name="Lucía"),
        shipments=(first, second),
    )
    dispatcher = Dispatcher(app)
    dispatcher.dispatch(make_event("order_paid", order))
    dispatcher.dispatch(shipped(order, first))
    app.clock.advance(timedelta(hours=2))
    dispatcher.dispatch(shipped(order, second, at=START + timedelta(hours=2)))
    dispatcher.dispatch(shipped(order, second, at=START + timedelta(hours=2)))  # the platform retries the webhook
    execute_due(app)

    assert actions(app) == [
        (ActionKind.SEND_EMAIL, "shipped:1069019862", START, ActionState.DONE),
        (ActionKind.SEND_EMAIL, "shipped:1069019999", START + timedelta(hours=2), ActionState.DONE),
    ]
    one, two = inbox(app)
    assert one.to == two.to == "foo@example.com"
    assert one.subject == two.subject == "Tu pedido #1002 está en camino"
    assert one.transactional and two.transactional and one.language == "es"
    assert one.key == f"{SHOP}/order:1073459970/shipped:1069019862"
    assert "Hola, Lucía:" in one.text
    assert "Un paquete de tu pedido #1002 ya ha salido el 2 de abril de 2025." in one.text
    assert "Transportista: Correos" in one.text
    assert "Número de seguimiento: PK43BG0440928700108001F" in one.text
    correos = (
        "https://www.correos.es/es/es/herramientas/localizador/envios/detalle?tracking-number=PK43BG0440928700108001F"
    )
    assert f"Sigue tu envío aquí: {correos}" in one.text
    assert f'href="{correos}"' in one.html and "Seguir mi envío" in one.html
    assert "1 × IPod Nano - 8GB" in one.text
    assert "Transportista: DHL Express" in two.text
    assert "Sigue tu envío aquí: https://dhl.example/t/JJD000390007" in two.text  # the platform's own link wins
    assert "Unsubscribe" not in two.text and "unsubscribe" not in two.html  # transactional: no unsubscribe link


def test_woocommerce_order_in_bulgarian_shipped_then_delivered_with_the_arrival_note(plugin_app):
    app = plugin_app(tracking_notice, settings={"tracking_notice": {"delivered_notice": True}})
    base = sample_order("woocommerce_order_completed")
    parcel = replace(base.shipments[0], carrier="Speedy", tracking_number="61712345678", shipped_at=START)
    order = replace(base, customer=replace(base.customer, first_name="Мария", locale="bg"), shipments=(parcel,))
    arrived = replace(parcel, status=ShipmentStatus.DELIVERED, delivered_at=START + timedelta(days=2))
    delivered_order = replace(order, shipments=(arrived,))

    dispatcher = Dispatcher(app)
    dispatcher.dispatch(make_event("order_paid", order))
    dispatcher.dispatch(shipped(order, parcel))
    execute_due(app)
    app.clock.advance(timedelta(days=2))
    dispatcher.dispatch(shipped(delivered_order, arrived, "delivered", at=START + timedelta(days=2)))
    execute_due(app)

    assert actions(app) == [
        (ActionKind.SEND_EMAIL, "shipped:order-727", START, ActionState.DONE),
        (ActionKind.SEND_EMAIL, "delivered:order-727", START + timedelta(days=2), ActionState.DONE),
    ]
    sent, arrived_mail = inbox(app)
    assert sent.subject == "Поръчка 727 пътува към вас"
    assert sent.text.startswith(
        "Здравейте, Мария,\n\nДобра новина: на 5 януари 2026 г. изпратихме пратка от поръчка 727."
    )
    assert "Куриер: Speedy" in sent.text
    assert "Номер за проследяване: 61712345678" in sent.text
    assert "https://www.speedy.bg/bg/track-shipment?shipmentNumber=61712345678" in sent.text
    assert "2 × Woo Single #1" in sent.text and "1 × Ship Your Idea – Color: Black, Size: M Test" in sent.text
    assert arrived_mail.subject == "Пратката от поръчка 727 пристигна"
    assert "Speedy съобщава, че на 7 януари 2026 г. е доставил пратката от поръчка 727." in arrived_mail.text
    assert arrived_mail.transactional and arrived_mail.language == "bg"


def test_no_arrival_note_by_default_and_english_without_tracking(plugin_app):
    app = plugin_app(tracking_notice)
    order = sample_order("shopify_order_paid_fulfilled")  # the real fulfillment has no carrier or number
    dispatcher = Dispatcher(app)
    dispatcher.dispatch(shipped(order, order.shipments[0]))
    dispatcher.dispatch(shipped(order, order.shipments[0], "delivered"))
    execute_due(app)

    assert [a.key for a in app.store.list_actions()] == ["shipped:1069019862"]
    (mail,) = inbox(app)
    assert mail.subject == "Your order #1002 is on its way"
    assert mail.text.startswith("Hello,\n\nGood news: a parcel with your order #1002 has left on April 2, 2025.")
    assert "The carrier gave no tracking link" in mail.text
    assert "Carrier:" not in mail.text and "Tracking number:" not in mail.text


def test_a_shipped_event_for_another_customer_goes_to_that_customer(plugin_app):
    app = plugin_app(tracking_notice)
    order = replace(sample_order("woocommerce_order_completed"), customer=Customer("zoe@example.com", "Zoe"))
    Dispatcher(app).dispatch(shipped(order, order.shipments[0]))
    execute_due(app)
    (mail,) = inbox(app)
    assert mail.to == "zoe@example.com" and "Hi Zoe," in mail.text


@pytest.mark.parametrize(
    ("carrier", "number", "expected"),
    [
        ("UPS", "1Z999AA10123456784", "https://www.ups.com/track?tracknum=1Z999AA10123456784"),
        ("USPS", "9400 1000 0000", "https://tools.usps.com/go/TrackConfirmAction?tLabels=9400%201000%200000"),
        ("FedEx Ground", "123456789012", "https://www.fedex.com/fedextrack/?trknbr=123456789012"),
        ("DHL eCommerce", "GM123", "https://webtrack.dhlecs.com/?trackingnumber=GM123"),
        ("Correos Express", "3230001", "https://s.correosexpress.com/c?n=3230001"),
        ("econt", "1051234567", "https://www.econt.com/services/track-shipment/1051234567"),
        ("Upsilon Freight", "X1", ""),  # a name that merely starts with "ups" is not UPS
        ("", "X1", ""),
    ],
)
def test_tracking_url_from_the_carrier_name(carrier, number, expected):
    assert tracking_url(Shipment("s", carrier, number)) == expected


def test_merchant_carrier_urls_add_to_and_override_the_built_in_ones():
    mine = {"Sameday": "https://sameday.example/awb/{tracking_number}", "UPS": "https://ups.example/{tracking_number}"}
    assert tracking_url(Shipment("s", "Sameday", "AWB1"), mine) == "https://sameday.example/awb/AWB1"
    assert tracking_url(Shipment("s", "UPS", "1Z"), mine) == "https://ups.example/1Z"
    assert tracking_url(Shipment("s", "UPS", "1Z", "https://platform/1Z"), mine) == "https://platform/1Z"


def test_a_carrier_url_without_the_number_is_a_config_error(aftercare_app):
    bad = {"tracking_notice": {"enabled": True, "carrier_urls": {"sameday": "https://sameday.example/{awb}"}}}
    with pytest.raises(ConfigError, match=r"carrier_urls\['sameday'\] must be an http\(s\) URL"):
        aftercare_app(tracking_notice, settings=bad)


def test_off_until_enabled_and_templates_check_clean(aftercare_app):
    app = aftercare_app(tracking_notice)
    order = sample_order("shopify_order_paid_fulfilled")
    assert Dispatcher(app).dispatch(shipped(order, order.shipments[0])).requests == []
    assert check_templates(app) == []


def test_with_sms_on_the_parcel_is_also_texted_where_the_shop_sends_texts(plugin_app, monkeypatch):
    import responses

    from aftercare.models import Address
    from aftercare.testing import make_order

    monkeypatch.setenv("TWILIO_ACCOUNT_SID", "AC" + "1" * 32)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "token")
    sms = {"enabled": True, "from_number": "+34600111222"}
    app = plugin_app(tracking_notice, settings={"tracking_notice": {"sms": True}}, mail={"sms": sms})
    order = make_order("1001", shipping_address=Address(country_code="ES", phone="612345678"))
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, f"https://api.twilio.com/2010-04-01/Accounts/{'AC' + '1' * 32}/Messages.json",
                 json={"sid": "SM" + "0" * 32, "status": "queued"}, status=201)  # fmt: skip
        Dispatcher(app).dispatch(shipped(order, order.shipments[0]))
        execute_due(app)
        body = rsps.calls[0].request.body
    assert "To=%2B34612345678" in body
    assert "Body=Tienda+%C3%91and%C3%BA%3A+tu+pedido+1001+va+en+camino+con+DHL." in body
    assert "S%C3%ADguelo%3A+https%3A%2F%2Fwww.dhl.com%2Ftrack%3FJJD000390007" in body
    assert [(kind, state) for kind, _key, _due, state in actions(app)] == [
        (ActionKind.SEND_EMAIL, ActionState.DONE),
        (ActionKind.SEND_SMS, ActionState.DONE),
    ]
    app.plugins.channels()["send_sms"].close()
