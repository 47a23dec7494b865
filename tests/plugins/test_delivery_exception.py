"""delivery_exception: a transactional notice at once, a note, an apology coupon once per order; and when not."""

from dataclasses import replace
from datetime import timedelta

import pytest
from pydantic import ValidationError

from aftercare.actions import ActionKind, ActionState, ReasonCode
from aftercare.dispatch import Dispatcher, execute_due
from aftercare.mail.templates import check_templates
from aftercare.models import (
    ConsentState,
    FinancialStatus,
    Refund,
    ShipmentStatus,
)
from aftercare.plugins import delivery_exception
from aftercare.testing import START, make_event, make_order

from .conftest import inbox

HOUR = timedelta(hours=1)
COUPON = {"coupon": {"enabled": True, "value": "15", "valid_days": 30}}


def exception_event(order, problem, *, message="", location="", at=START, key=""):
    """What an adapter gives for a carrier's report about the order's first parcel."""
    event = make_event("shipment_exception", order, occurred_at=at, problem=problem)
    return replace(
        event,
        dedupe_key=key or f"fulfillment:{event.shipment.platform_id}:{event.exception.problem.value}",
        exception=replace(event.exception, message=message, location=location),
    )


def report(app, order, problem, **options):
    """The platform has ``order`` as it is now, and reports ``problem``; run what is due."""
    app.adapter("test").put_order(order)
    outcome = Dispatcher(app).dispatch(exception_event(order, problem, **options))
    execute_due(app)
    return outcome


def actions(app):
    return [(a.kind, a.key, a.state) for a in sorted(app.store.list_actions(), key=lambda a: a.id)]


def test_a_failed_delivery_is_answered_at_once_with_a_note_and_an_apology_coupon(plugin_app):
    app = plugin_app(delivery_exception, settings={"delivery_exception": COUPON})
    order = make_order()
    report(app, order, "failure", message="Address not found")

    assert actions(app) == [
        (ActionKind.SEND_EMAIL, "exception:ship-1:failure", ActionState.DONE),
        (ActionKind.ADD_ORDER_NOTE, "exception:ship-1:failure", ActionState.DONE),
        (ActionKind.CREATE_COUPON, "apology", ActionState.DONE),
        (ActionKind.SEND_EMAIL, "apology", ActionState.DONE),
    ]
    assert all(a.due_at == START for a in app.store.list_actions())  # right away
    notice, apology = inbox(app)
    assert notice.to == "ana@example.com" and notice.transactional and notice.language == "es"
    assert notice.subject == "Un problema con tu paquete del pedido 1001"
    assert "Hola, Ana:" in notice.text
    assert "DHL indica que no se ha podido entregar tu paquete del pedido 1001." in notice.text
    assert "Mensaje de la empresa de transporte: Address not found" in notice.text
    assert "Qué hacer: Responde a este correo y lo resolveremos con la empresa de transporte." in notice.text
    assert "Síguelo aquí: https://www.dhl.com/track?JJD000390007" in notice.text
    assert "- 2 × Espresso cups" in notice.text
    assert 'href="https://www.dhl.com/track?JJD000390007"' in notice.html

    (code,) = app.adapter("test").coupons
    spec = app.adapter("test").coupons[code]
    assert code.startswith("SORRY-") and spec.kind == "percent" and str(spec.value) == "15"
    assert apology.transactional and code in apology.text
    assert apology.subject == "Perdona lo de tu paquete: un 15 % de descuento en tu próximo pedido"
    assert app.adapter("test").notes == {
        "order-1001": [
            "Carrier report: the delivery failed (parcel JJD000390007). Emailed ana@example.com what to do. "
            "Apology coupon offered."
        ]
    }


def test_no_marketing_consent_is_needed(plugin_app):
    app = plugin_app(delivery_exception, settings={"delivery_exception": COUPON})
    base = make_order()
    order = replace(base, customer=replace(base.customer, marketing_consent=ConsentState.UNSUBSCRIBED))
    app.store.record_consent("test", "ana@example.com", ConsentState.UNSUBSCRIBED, source="unsubscribe_link")
    report(app, order, "return_to_sender")

    notice, apology = inbox(app)
    assert notice.subject == "Un problema con tu paquete del pedido 1001"
    assert "DHL nos lo está devolviendo" in notice.text and "que te lo enviemos de nuevo" in notice.text
    assert apology.transactional and "SORRY-" in apology.text


def test_ready_for_pickup_says_where_to_collect_when_the_platform_says(plugin_app):
    app = plugin_app(delivery_exception, settings={"delivery_exception": COUPON})
    base = make_order()
    order = replace(base, locale="en", customer=replace(base.customer, locale="en"))
    report(app, order, "ready_for_pickup", location="Calle Mayor 12, 28013, Madrid, ES")

    (mail,) = inbox(app)  # no apology: waiting at a pickup point is no trouble
    assert mail.subject == "Your parcel from order 1001 is ready for pickup"
    assert "Collect it at: Calle Mayor 12, 28013, Madrid, ES" in mail.text
    assert "Calle Mayor 12" in mail.html
    assert [kind for kind, _key, _state in actions(app)] == [ActionKind.SEND_EMAIL, ActionKind.ADD_ORDER_NOTE]


def test_ready_for_pickup_without_an_address_guesses_none(plugin_app):
    app = plugin_app(delivery_exception)
    base = make_order()
    order = replace(base, locale="bg", customer=replace(base.customer, locale="bg", first_name="Мария"))
    report(app, order, "ready_for_pickup")

    (mail,) = inbox(app)
    assert mail.subject == "Пратката ви от поръчка 1001 е готова за получаване"
    assert "DHL не ни съобщи адреса на офиса за получаване" in mail.text
    assert "Получете я от" not in mail.text
    assert "Calle" not in mail.text and (order.shipping_address is None or order.shipping_address.city not in mail.text)


def test_each_problem_of_a_parcel_once_and_the_apology_once_per_order(plugin_app):
    app = plugin_app(delivery_exception, settings={"delivery_exception": COUPON})
    order = make_order()
    report(app, order, "delayed")
    report(app, order, "delayed", key="poll:delayed")  # the same report seen again (a poll, a retry)
    app.clock.advance(24 * HOUR)
    report(app, order, "attempted_delivery", at=START + 24 * HOUR)

    assert [(a.kind, a.key) for a in sorted(app.store.list_actions(), key=lambda a: a.id)] == [
        (ActionKind.SEND_EMAIL, "exception:ship-1:delayed"),
        (ActionKind.ADD_ORDER_NOTE, "exception:ship-1:delayed"),
        (ActionKind.CREATE_COUPON, "apology"),
        (ActionKind.SEND_EMAIL, "apology"),
        (ActionKind.SEND_EMAIL, "exception:ship-1:attempted_delivery"),
        (ActionKind.ADD_ORDER_NOTE, "exception:ship-1:attempted_delivery"),
    ]
    assert len(app.adapter("test").coupons) == 1
    subjects = [mail.subject for mail in inbox(app)]
    assert subjects == [
        "Tu paquete del pedido 1001 viene con retraso",
        "Perdona lo de tu paquete: un 15 % de descuento en tu próximo pedido",
        "No te encontramos: tu paquete del pedido 1001",
    ]


def test_cancelled_or_refunded_orders_get_nothing(plugin_app):
    app = plugin_app(delivery_exception, settings={"delivery_exception": COUPON})
    cancelled = make_order("1002", cancelled_at=START - HOUR)
    refunded = make_order("1003", financial_status=FinancialStatus.REFUNDED)
    for order in (cancelled, refunded):
        report(app, order, "failure")
    assert app.store.list_actions() == [] and inbox(app) == []


def test_a_partial_refund_of_other_products_still_gets_the_notice(plugin_app):
    app = plugin_app(delivery_exception)
    base = make_order()
    parcel = replace(base.shipments[0], line_item_ids=("line-1",))
    order = replace(
        base,
        shipments=(parcel,),
        lines=(*base.lines, replace(base.lines[0], platform_id="line-2", title="Grinder")),
        refunds=(Refund("r-1", START - HOUR, line_item_ids=("line-2",)),),
        financial_status=FinancialStatus.PARTIALLY_REFUNDED,
    )
    report(app, order, "failure")
    (mail,) = inbox(app)
    assert "- 2 × Espresso cups" in mail.text and "Grinder" not in mail.text


def test_a_refund_of_every_product_in_the_parcel_gets_nothing(plugin_app):
    app = plugin_app(delivery_exception)
    base = make_order()
    order = replace(
        base,
        shipments=(replace(base.shipments[0], line_item_ids=("line-1",)),),
        lines=(*base.lines, replace(base.lines[0], platform_id="line-2", title="Grinder")),
        refunds=(Refund("r-2", START - HOUR, line_item_ids=("line-1",)),),
        financial_status=FinancialStatus.PARTIALLY_REFUNDED,
    )
    report(app, order, "failure")
    assert app.store.list_actions() == [] and inbox(app) == []


def test_cancelled_before_the_notice_fires_drops_it(plugin_app):
    app = plugin_app(delivery_exception, settings={"delivery_exception": COUPON})
    order = make_order()
    app.adapter("test").put_order(replace(order, cancelled_at=START))  # the platform knows more than the event
    Dispatcher(app).dispatch(exception_event(order, "failure"))
    execute_due(app)

    records = app.store.list_actions()
    assert records and all(a.state is ActionState.DROPPED for a in records)
    first = min(records, key=lambda a: a.id)
    assert (
        first.reason_code is ReasonCode.FIRE_TIME_CHECK and first.reason == "fire-time check: the order was cancelled"
    )
    assert inbox(app) == [] and app.adapter("test").coupons == {}


def test_a_report_after_the_parcel_arrived_sends_nothing(plugin_app):
    app = plugin_app(delivery_exception, settings={"delivery_exception": COUPON})
    base = make_order()
    delivered = replace(base.shipments[0], status=ShipmentStatus.DELIVERED, delivered_at=START)
    order = replace(base, shipments=(delivered,))
    event = replace(exception_event(base, "delayed", at=START - HOUR), order=order)  # a late webhook
    app.adapter("test").put_order(order)
    Dispatcher(app).dispatch(event)
    execute_due(app)
    assert app.store.list_actions() == [] and inbox(app) == []


def test_only_the_problems_configured(plugin_app):
    settings = {"delivery_exception": {"problems": ["failure"], "note_text": ""}}
    app = plugin_app(delivery_exception, settings=settings)
    order = make_order()
    report(app, order, "delayed")
    assert app.store.list_actions() == []
    report(app, order, "failure")
    assert [a.kind for a in app.store.list_actions()] == [ActionKind.SEND_EMAIL]  # no note: note_text = ""


def test_settings_name_what_is_wrong():
    with pytest.raises(ValidationError, match="note_text names 'order'"):
        delivery_exception.Settings(note_text="Order {order}")
    with pytest.raises(ValidationError, match="a percent coupon takes a value up to 100"):
        delivery_exception.Settings(coupon={"value": "120"})
    with pytest.raises(ValidationError):
        delivery_exception.Settings(problems=["lost"])
    assert delivery_exception.Settings().enabled is False  # off until enabled


def test_templates_render_in_every_language(plugin_app):
    app = plugin_app(delivery_exception)
    assert check_templates(app) == []
