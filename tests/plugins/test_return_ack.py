"""return_ack: a transactional acknowledgement with the policy and next steps, a note, the customer's history."""

from dataclasses import replace
from datetime import timedelta

from aftercare.actions import ActionKind, ActionState
from aftercare.dispatch import Dispatcher, execute_due
from aftercare.mail.templates import check_templates
from aftercare.models import ConsentState, EventKind, ReturnRequest, ShipmentStatus
from aftercare.plugins import return_ack
from aftercare.testing import START, make_event, sample_order

from .conftest import inbox

DAY = timedelta(days=1)
POLICY = {
    "policy_url": "https://tienda.example/devoluciones",
    "policy_lines": {
        "en": ["Returns are accepted within 30 days of delivery."],
        "es": ["Aceptamos devoluciones hasta 30 días después de la entrega.", "Los artículos deben estar sin usar."],
        "bg": ["Приемаме връщания до 30 дни след доставката."],
    },
}


def actions(app):
    records = sorted(app.store.list_actions(), key=lambda a: a.id)
    return [(a.kind, a.key, a.due_at, a.state, a.payload.get("transactional")) for a in records]


def through_delivery(app, order):
    """Paid, shipped and delivered at START; returns the delivered order."""
    parcel = replace(order.shipments[0], shipped_at=START - DAY, status=ShipmentStatus.DELIVERED, delivered_at=START)
    order = replace(order, shipments=(parcel,))
    for kind in ("order_paid", "shipped", "delivered"):
        Dispatcher(app).dispatch(make_event(kind, order))
    return order


def test_woocommerce_return_in_spanish_acknowledged_noted_and_tagged(plugin_app):
    settings = {"return_ack": {**POLICY, "tag": "returns"}}
    app = plugin_app(return_ack, settings=settings)
    base = sample_order("woocommerce_order_completed")
    order = through_delivery(app, replace(base, customer=replace(base.customer, first_name="Lucía", locale="es")))
    app.clock.advance(4 * DAY)
    request = ReturnRequest("ret-9", START + 4 * DAY, reason="Talla equivocada", line_item_ids=("316",))
    returning = replace(order, returns=(request,))
    Dispatcher(app).dispatch(make_event("return_requested", returning, occurred_at=START + 4 * DAY))
    Dispatcher(app).dispatch(make_event("return_requested", returning, key="poll:return:ret-9"))  # seen twice
    execute_due(app)

    at = START + 4 * DAY
    assert actions(app) == [
        (ActionKind.SEND_EMAIL, "return:ret-9", at, ActionState.DONE, True),
        (ActionKind.ADD_ORDER_NOTE, "return:ret-9", at, ActionState.DONE, None),
        (ActionKind.TAG_CUSTOMER, "returns:return:ret-9:order:727", at, ActionState.DONE, None),
    ]
    (mail,) = inbox(app)
    assert mail.to == "john.doe@example.com" and mail.transactional and mail.language == "es"
    assert mail.subject == "Hemos recibido tu solicitud de devolución del pedido 727"
    assert "Hola, Lucía:" in mail.text
    assert "Artículos que devuelves:\n- 1 × Ship Your Idea – Color: Black, Size: M Test\n" in mail.text
    assert "Woo Single" not in mail.text  # only the line being returned
    assert "Motivo que nos indicaste: Talla equivocada" in mail.text
    assert "- Aceptamos devoluciones hasta 30 días después de la entrega.\n- Los artículos deben estar sin usar." in (
        mail.text
    )
    assert "Lee la política de devoluciones completa: https://tienda.example/devoluciones" in mail.text
    assert "1. Revisamos tu solicitud y te enviamos por correo las instrucciones de devolución" in mail.text
    assert 'href="https://tienda.example/devoluciones"' in mail.html and "Próximos pasos" in mail.html
    assert "unsubscribe" not in mail.text.lower()  # transactional: no unsubscribe link

    adapter = app.adapter("test")
    assert adapter.notes == {
        "727": [
            "Return ret-9 requested (Talla equivocada): 1 × Ship Your Idea – Color: Black, Size: M Test. "
            "Acknowledgement with the return policy emailed to john.doe@example.com."
        ]
    }
    assert adapter.customer_tags == {"john.doe@example.com": {"returns"}}
    history = [kind for _order, kind, _at in app.store.customer_history("test", "john.doe@example.com")]
    assert history[-1] is EventKind.RETURN_REQUESTED  # the incident, in the customer's history


def test_shopify_return_in_bulgarian_reaches_an_unsubscribed_customer_with_the_merchants_steps(plugin_app):
    settings = {"return_ack": {**POLICY, "next_steps": ["Изпратете пратката с Еконт до офис 1000."]}}
    app = plugin_app(return_ack, settings=settings)
    base = sample_order("shopify_order_paid_fulfilled")
    customer = replace(base.customer, first_name="Мария", locale="bg")
    app.store.record_consent("test", "foo@example.com", ConsentState.UNSUBSCRIBED, "unsubscribe link")
    order = through_delivery(app, replace(base, customer=customer))
    returning = replace(order, returns=(ReturnRequest("gid-77", START + DAY),))  # whole order, no reason given
    Dispatcher(app).dispatch(make_event("return_requested", returning))
    execute_due(app)

    assert [(kind, key, state) for kind, key, _at, state, _t in actions(app)] == [
        (ActionKind.SEND_EMAIL, "return:gid-77", ActionState.DONE),
        (ActionKind.ADD_ORDER_NOTE, "return:gid-77", ActionState.DONE),
    ]
    (mail,) = inbox(app)
    assert mail.subject == "Получихме заявката ви за връщане по поръчка #1002"
    assert "Здравейте, Мария," in mail.text
    assert "Артикули за връщане:\n- 1 × IPod Nano - 8GB" in mail.text
    assert "Посочена причина" not in mail.text
    assert "- Приемаме връщания до 30 дни след доставката." in mail.text
    assert "Какво следва:\n1. Изпратете пратката с Еконт до офис 1000." in mail.text
    assert "Ще прегледаме заявката ви" not in mail.text  # the merchant's steps replace the general ones
    assert app.adapter("test").notes["1073459970"] == [
        "Return gid-77 requested: 1 × IPod Nano - 8GB. "
        "Acknowledgement with the return policy emailed to foo@example.com."
    ]


def test_english_without_policy_settings_and_without_a_note(plugin_app):
    app = plugin_app(return_ack, settings={"return_ack": {"add_note": False}})
    order = sample_order("shopify_order_paid_fulfilled")
    returning = replace(order, returns=(ReturnRequest("r1", START, reason="Broken"),))
    Dispatcher(app).dispatch(make_event("return_requested", returning))
    execute_due(app)
    assert [a.kind for a in app.store.list_actions()] == [ActionKind.SEND_EMAIL]
    (mail,) = inbox(app)
    assert mail.subject == "We received your return request for order #1002"
    assert "Reason you gave: Broken" in mail.text
    assert "Our return policy" not in mail.text
    assert "3. Once they are back with us and checked, we refund you" in mail.text


def test_policy_lines_follow_the_customers_language_then_the_shops_then_english():
    lines = {"en": ["en"], "es": ["es"], "pt_BR": ["br"]}
    assert return_ack._in_language(lines, "es-ES", "en") == ["es"]
    assert return_ack._in_language(lines, "pt-BR", "en") == ["br"]
    assert return_ack._in_language(lines, "de", "es") == ["es"]
    assert return_ack._in_language(lines, "de", "fr") == ["en"]
    assert return_ack._in_language(["one list"], "bg", "en") == ["one list"]


def test_off_until_enabled_and_templates_check_clean(aftercare_app):
    app = aftercare_app(return_ack)
    order = replace(sample_order("shopify_order_paid_fulfilled"), returns=(ReturnRequest("r1", START),))
    assert Dispatcher(app).dispatch(make_event("return_requested", order)).requests == []
    assert check_templates(app) == []
