"""review_request: after delivery (or a shipping fallback), once per customer and product, never after a refund."""

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest

from aftercare.actions import ActionKind, ActionState
from aftercare.config import ConfigError
from aftercare.dispatch import Dispatcher, execute_due
from aftercare.mail.templates import check_templates
from aftercare.models import FinancialStatus, LineItem, Money, Refund, ReturnRequest, ShipmentStatus
from aftercare.plugins import review_request
from aftercare.testing import START, make_event, sample_order

from .conftest import inbox

DAY = timedelta(days=1)
URL = "https://tienda.example/products/{product_id}#reviews"
EMAIL = "test/review_request/send_email/customer:"


def app_with(plugin_app, **settings):
    return plugin_app(review_request, settings={"review_request": {"review_url": URL, **settings}})


def ship(app, order, at=START):
    """The order ships (now) and the platform keeps it, for the fire-time checks."""
    app.adapter("test").put_order(order)
    Dispatcher(app).dispatch(make_event("shipped", order, occurred_at=at))


def deliver(app, order, at):
    parcel = replace(order.shipments[0], status=ShipmentStatus.DELIVERED, delivered_at=at)
    order = replace(order, shipments=(parcel,))
    app.adapter("test").put_order(order)
    Dispatcher(app).dispatch(make_event("delivered", order, occurred_at=at))
    return order


def advance_to(app, moment):
    app.clock.advance(moment - app.now())
    execute_due(app)


def actions(app):
    return [(a.kind, a.key, a.due_at, a.state, a.reason) for a in sorted(app.store.list_actions(), key=lambda a: a.id)]


def spanish_shopify_order():
    order = sample_order("shopify_order_paid_fulfilled")
    parcel = replace(order.shipments[0], shipped_at=START)
    return replace(order, locale="es", customer=replace(order.customer, first_name="Lucía"), shipments=(parcel,))


def test_review_after_delivery_then_reminder_and_nothing_in_the_fallback_window(plugin_app):
    app = app_with(plugin_app, reminder_days=5)
    order = spanish_shopify_order()
    Dispatcher(app).dispatch(make_event("order_paid", order))
    ship(app, order)
    app.clock.advance(2 * DAY)
    deliver(app, order, START + 2 * DAY)

    moved = "rescheduled by on_delivered"  # the shipping fallback, moved to count from delivery
    assert actions(app) == [
        (ActionKind.SEND_EMAIL, "review:632910392", START + 9 * DAY, ActionState.DUE, moved),
        (ActionKind.SEND_EMAIL, "review-reminder:632910392", START + 14 * DAY, ActionState.DUE, moved),
    ]
    advance_to(app, START + 9 * DAY - timedelta(minutes=1))
    assert inbox(app) == []
    advance_to(app, START + 9 * DAY)
    (request,) = inbox(app)
    assert request.subject == "¿Qué te parece tu IPod Nano - 8GB?"
    assert request.key == f"{EMAIL}foo@example.com/review:632910392"
    assert not request.transactional and request.language == "es"
    assert request.text.startswith("Hola, Lucía:\n\nYa llevas unos días con tu IPod Nano - 8GB del pedido #1002.")
    assert "Escribir una reseña: https://tienda.example/products/632910392#reviews" in request.text
    assert 'href="https://tienda.example/products/632910392#reviews"' in request.html
    assert "/unsubscribe/" in request.text  # marketing mail carries the unsubscribe link

    advance_to(app, START + 14 * DAY)  # the fallback's moment: only the reminder, which is due now too
    (_, reminder) = inbox(app)
    assert reminder.subject == "¿Tienes un minuto para opinar sobre IPod Nano - 8GB?"
    assert "no volveremos a preguntar" in reminder.text
    advance_to(app, START + 30 * DAY)
    assert len(inbox(app)) == 2


def test_shipping_fallback_when_delivery_is_never_reported_in_bulgarian(plugin_app):
    app = app_with(plugin_app)
    base = sample_order("woocommerce_order_completed")
    order = replace(base, customer=replace(base.customer, first_name="Иван", locale="bg"))
    Dispatcher(app).dispatch(make_event("order_paid", order))
    ship(app, order)

    assert actions(app) == [
        (ActionKind.SEND_EMAIL, "review:93", START + 14 * DAY, ActionState.DUE, ""),
        (ActionKind.SEND_EMAIL, "review:22", START + 14 * DAY, ActionState.DUE, ""),
    ]
    advance_to(app, START + 14 * DAY)
    assert len(inbox(app)) == 1  # the second waits the minimum gap between marketing mails
    advance_to(app, START + 14 * DAY + timedelta(hours=4))
    first, second = inbox(app)
    assert first.subject == "Как ви се струва Woo Single #1?"
    assert second.subject == "Как ви се струва Ship Your Idea – Color: Black, Size: M Test?"
    assert first.text.startswith("Здравейте, Иван,\n\nВече от няколко дни имате Woo Single #1 от поръчка 727.")
    assert "Напишете отзив: https://tienda.example/products/93#reviews" in first.text
    assert "Напишете отзив: https://tienda.example/products/22#reviews" in second.text
    assert first.language == second.language == "bg"


@pytest.mark.parametrize(
    ("kind", "change", "reason"),
    [
        (
            "refunded",
            {
                "financial_status": FinancialStatus.REFUNDED,
                "refunds": (Refund("r-1", START + 4 * DAY, Money(Decimal("199.00"), "USD"), "damaged"),),
            },
            "review request withdrawn: the order was refunded",
        ),
        (
            "return_requested",
            {"returns": (ReturnRequest("ret-1", START + 4 * DAY, reason="too small"),)},
            "review request withdrawn: a return was requested",
        ),
        ("order_cancelled", {"cancelled_at": START + 4 * DAY}, "review request withdrawn: the order was cancelled"),
    ],
)
def test_a_refund_return_or_cancellation_after_delivery_withdraws_the_request(plugin_app, kind, change, reason):
    app = app_with(plugin_app, reminder_days=3)
    order = spanish_shopify_order()
    ship(app, order)
    app.clock.advance(2 * DAY)
    delivered = deliver(app, order, START + 2 * DAY)
    app.clock.advance(2 * DAY)
    changed = replace(delivered, **change)
    app.adapter("test").put_order(changed)
    Dispatcher(app).dispatch(make_event(kind, changed, occurred_at=START + 4 * DAY))
    advance_to(app, START + 60 * DAY)

    assert inbox(app) == []
    assert [(key, state, why) for _kind, key, _due, state, why in actions(app)] == [
        ("review:632910392", ActionState.DROPPED, reason),
        ("review-reminder:632910392", ActionState.DROPPED, reason),
    ]


def test_a_refund_the_plugin_never_heard_of_is_caught_at_fire_time(plugin_app):
    app = app_with(plugin_app)
    order = spanish_shopify_order()
    ship(app, order)
    delivered = deliver(app, order, START + 2 * DAY)
    app.adapter("test").put_order(replace(delivered, financial_status=FinancialStatus.REFUNDED))
    advance_to(app, START + 9 * DAY)
    assert inbox(app) == []
    assert actions(app)[-1][3:] == (ActionState.DROPPED, "fire-time check: the order was refunded")


def test_at_most_once_per_customer_and_product_across_two_orders(plugin_app):
    app = app_with(plugin_app)
    first = sample_order("shopify_order_paid_fulfilled")
    first = replace(first, shipments=(replace(first.shipments[0], shipped_at=START),))
    ship(app, first)
    deliver(app, first, START + DAY)
    advance_to(app, START + 8 * DAY)

    cable = LineItem("2000001", "USB cable", 1, Money(Decimal("9.00"), "USD"), product_id="777", sku="USB-1")
    again = replace(
        first,
        platform_id="1073459999",
        number="#1010",
        lines=(*first.lines, cable),
        shipments=(replace(first.shipments[0], platform_id="1069019999", line_item_ids=()),),
    )
    app.clock.advance(DAY)
    ship(app, again, at=app.now())
    deliver(app, again, app.now() + DAY)
    advance_to(app, START + 60 * DAY)

    subjects = [mail.subject for mail in inbox(app)]
    assert subjects == ["How do you like your IPod Nano - 8GB?", "How do you like your USB cable?"]
    second_order = [(a.key, a.state) for a in app.store.list_actions() if a.order_id == "1073459999"]
    assert sorted(second_order) == [("review:777", ActionState.DONE)]
    # the iPod's key was taken by the first order: nothing recorded for it again


def test_delivery_reported_after_the_fallback_window_leaves_the_fallback_alone(plugin_app):
    app = app_with(plugin_app, days_after_shipping=10)
    order = spanish_shopify_order()
    ship(app, order)
    advance_to(app, START + 10 * DAY)
    deliver(app, order, START + 12 * DAY)
    advance_to(app, START + 40 * DAY)
    assert [mail.key.rsplit("/", 1)[-1] for mail in inbox(app)] == ["review:632910392"]  # once, not twice


def test_review_url_is_required_and_checked(aftercare_app):
    with pytest.raises(ConfigError, match="set review_url"):
        aftercare_app(review_request, settings={"review_request": {"enabled": True}})
    with pytest.raises(ConfigError, match=r"review_url must be an http\(s\) URL using only"):
        aftercare_app(review_request, settings={"review_request": {"review_url": "https://x.example/{handle}"}})
    app = aftercare_app(review_request, settings={"review_request": {"enabled": True, "review_url": URL}})
    assert check_templates(app) == []
