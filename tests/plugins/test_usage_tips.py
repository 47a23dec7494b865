"""usage_tips: tips per product group (SKU, product id, title keyword), days after delivery or shipping."""

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest
from pydantic import ValidationError

from aftercare.actions import ActionKind, ActionState
from aftercare.dispatch import Dispatcher, execute_due
from aftercare.mail.templates import check_templates
from aftercare.models import FinancialStatus, LineItem, Money, ShipmentStatus
from aftercare.plugins import usage_tips
from aftercare.testing import START, make_event, sample_order

from .conftest import inbox

DAY = timedelta(days=1)
GROUPS = {
    "coffee": {"skus": ["cup-2"], "template": "tips_coffee", "days_after_delivery": 7},
    "shirts": {"title_keywords": ["Ship Your Idea"], "tips": ["Lávala del revés, a 30 °C.", "No uses secadora."]},
    "ipods": {"product_ids": ["632910392"]},
}
CUPS = LineItem("317", "Tazas de espresso", 2, Money(Decimal("12.50"), "USD"), "prod-1", "var-1", "CUP-2")


def actions(app):
    records = sorted(app.store.list_actions(), key=lambda a: a.id)
    return [(a.kind, a.key, a.due_at, a.state, a.reason, a.payload.get("template")) for a in records]


def test_each_group_gets_its_own_mail_after_delivery_in_spanish(plugin_app):
    app = plugin_app(usage_tips, settings={"usage_tips": {"groups": GROUPS}})
    base = sample_order("woocommerce_order_completed")
    parcel = replace(base.shipments[0], carrier="Correos", shipped_at=START)
    customer = replace(base.customer, first_name="Lucía", locale="es")
    order = replace(base, customer=customer, lines=(*base.lines, CUPS), shipments=(parcel,))
    arrived = replace(
        order, shipments=(replace(parcel, status=ShipmentStatus.DELIVERED, delivered_at=START + 2 * DAY),)
    )
    adapter, dispatcher = app.adapter("test"), Dispatcher(app)
    adapter.put_order(arrived)
    dispatcher.dispatch(make_event("order_paid", order))
    dispatcher.dispatch(make_event("shipped", order))
    app.clock.advance(2 * DAY)
    dispatcher.dispatch(make_event("delivered", arrived, occurred_at=START + 2 * DAY))

    moved = "rescheduled by on_delivered"  # the shipping fallbacks, moved to count from the delivery
    assert actions(app) == [
        (ActionKind.SEND_EMAIL, "tips:coffee", START + 9 * DAY, ActionState.DUE, moved, "tips_coffee"),
        (ActionKind.SEND_EMAIL, "tips:shirts", START + 7 * DAY, ActionState.DUE, moved, "usage_tips"),
    ]
    app.clock.advance(5 * DAY)
    execute_due(app)
    (shirts,) = inbox(app)
    app.clock.advance(2 * DAY)
    execute_due(app)
    _, coffee = inbox(app)

    assert shirts.key == "test/usage_tips/send_email/order:727/tips:shirts"
    assert shirts.subject == "Saca el máximo partido a Ship Your Idea – Color: Black, Size: M Test"
    assert "Hola, Lucía:" in shirts.text and "Unos consejos para lo que compraste:" in shirts.text
    assert "* Lávala del revés, a 30 °C.\n* No uses secadora." in shirts.text
    assert "Tazas" not in shirts.text and "Woo Single" not in shirts.text  # only the group's products
    assert coffee.subject == "Mejor café en tus nuevas tazas"
    assert "1. Calienta antes las tazas" in coffee.text and "7–9 g de café" in coffee.html
    assert not coffee.transactional and coffee.message["List-Unsubscribe"]  # marketing mail


def test_the_product_id_group_in_bulgarian_falls_back_to_shipping(plugin_app):
    app = plugin_app(usage_tips, settings={"usage_tips": {"groups": GROUPS, "assumed_transit_days": 3}})
    base = sample_order("shopify_order_paid_fulfilled")
    order = replace(
        base,
        customer=replace(base.customer, first_name="Мария", locale="bg"),
        shipments=(replace(base.shipments[0], shipped_at=START),),
    )
    app.adapter("test").put_order(order)
    Dispatcher(app).dispatch(make_event("shipped", order))
    assert actions(app) == [
        (ActionKind.SEND_EMAIL, "tips:ipods", START + 8 * DAY, ActionState.DUE, "", "usage_tips")
    ]
    app.clock.advance(8 * DAY)
    execute_due(app)
    (mail,) = inbox(app)
    assert mail.subject == "Как да извлечете най-доброто от IPod Nano - 8GB"
    assert "Здравейте, Мария," in mail.text
    assert "Как ви се струва това, което купихте?\n- IPod Nano - 8GB" in mail.text  # no tips: a check-in
    assert "просто отговорете на този имейл" in mail.text


def test_a_refund_before_the_tips_are_due_drops_them(plugin_app):
    app = plugin_app(usage_tips, settings={"usage_tips": {"groups": GROUPS}})
    order = sample_order("shopify_order_paid_fulfilled")
    parcel = replace(order.shipments[0], shipped_at=START - DAY, delivered_at=START)
    arrived = replace(order, shipments=(parcel,))
    Dispatcher(app).dispatch(make_event("delivered", arrived))
    app.adapter("test").put_order(replace(arrived, financial_status=FinancialStatus.REFUNDED))
    app.clock.advance(5 * DAY)
    execute_due(app)
    assert actions(app) == [
        (
            ActionKind.SEND_EMAIL, "tips:ipods", START + 5 * DAY, ActionState.DROPPED,
            "fire-time check: the order was refunded", "usage_tips",
        )
    ]  # fmt: skip
    assert inbox(app) == []


def test_nothing_for_an_order_without_a_matching_product(plugin_app):
    app = plugin_app(usage_tips, settings={"usage_tips": {"groups": {"coffee": GROUPS["coffee"]}}})
    order = sample_order("woocommerce_order_completed")
    assert Dispatcher(app).dispatch(make_event("shipped", order)).requests == []


def test_matching_by_sku_product_id_or_title_keyword():
    group = usage_tips.Group(skus=[" cup-2 "], product_ids=["93"], title_keywords=["grinder"])
    price = Money(Decimal("1"), "EUR")
    assert group.matches(LineItem("1", "Cups", 1, price, sku="CUP-2"))
    assert group.matches(LineItem("2", "Woo Single #1", 1, price, product_id="93"))
    assert group.matches(LineItem("3", "Burr GRINDER, steel", 1, price))
    assert not group.matches(LineItem("4", "Cup saucer", 1, price, sku="CUP-3", product_id="930"))


def test_a_group_must_match_something():
    with pytest.raises(ValidationError, match="at least one of skus, product_ids or title_keywords"):
        usage_tips.Settings(groups={"empty": {"template": "tips_coffee"}})


def test_off_until_enabled_and_templates_check_clean(aftercare_app):
    app = aftercare_app(usage_tips, settings={"usage_tips": {"groups": GROUPS}})
    assert Dispatcher(app).dispatch(make_event("shipped", sample_order("shopify_order_paid_fulfilled"))).requests == []
    assert check_templates(app) == []
