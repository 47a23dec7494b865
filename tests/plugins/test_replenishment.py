"""replenishment: a buy-again reminder when a product's usage cycle since delivery runs out."""

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest
from pydantic import ValidationError

from aftercare.actions import ActionState, ReasonCode
from aftercare.dispatch import Dispatcher, execute_due
from aftercare.mail.templates import check_templates
from aftercare.models import FinancialStatus, LineItem, Money, ShipmentStatus
from aftercare.plugins import replenishment
from aftercare.testing import START, make_event, make_order

from .conftest import inbox

DAY = timedelta(days=1)
BEANS = LineItem("line-2", "Espresso beans, 1 kg", 2, Money(Decimal("18"), "EUR"), "prod-7", "var-7", "BEANS-1KG")
SETTINGS = {
    "shop_url": "https://tienda.example.com/",
    "assumed_transit_days": 3,
    "groups": {"coffee": {"skus": ["beans-1kg"], "cycle_days": 30}},
}


def delivered(order, at):
    parcel = replace(order.shipments[0], status=ShipmentStatus.DELIVERED, delivered_at=at)
    return replace(order, shipments=(parcel,))


def dispatch(app, kind, order, at=None):
    app.adapter("test").put_order(order)
    Dispatcher(app).dispatch(make_event(kind, order, occurred_at=at or app.now()))


def test_the_reminder_goes_when_the_cycle_since_delivery_runs_out_times_the_quantity(plugin_app):
    app = plugin_app(replenishment, settings={"replenishment": SETTINGS})
    order = make_order("1001", lines=(*make_order().lines, BEANS))
    dispatch(app, "order_paid", order)
    dispatch(app, "shipped", order)  # shipped a day before START; delivery unknown: + 3 + 2 x 30 days
    (reminder,) = app.store.list_actions()
    assert reminder.due_at == START + 62 * DAY and reminder.key == "replenish:coffee"
    app.clock.advance(3 * DAY)
    dispatch(app, "delivered", delivered(order, app.now()))  # moves it to count from the delivery
    (reminder,) = app.store.list_actions()
    assert reminder.due_at == START + 63 * DAY and reminder.reason_code is ReasonCode.RESCHEDULED

    app.clock.advance(60 * DAY)
    execute_due(app)
    (mail,) = inbox(app)
    assert mail.subject == "¿Te queda poco Espresso beans, 1 kg?"
    assert "pedido 1001" in mail.text and "Espresso beans, 1 kg" in mail.text and "Espresso cups" not in mail.text
    assert "https://tienda.example.com" in mail.text  # the memory platform has no cart link: the shop
    assert not mail.transactional and mail.message["List-Unsubscribe"]


def test_a_new_order_with_the_product_withdraws_the_reminder_and_one_without_it_does_not(plugin_app):
    app = plugin_app(replenishment, settings={"replenishment": SETTINGS})
    first = make_order("1001", lines=(BEANS,))
    dispatch(app, "order_paid", first)
    dispatch(app, "delivered", delivered(first, app.now()))
    app.clock.advance(10 * DAY)
    dispatch(app, "order_paid", make_order("1002"))  # cups only
    assert [a.state for a in app.store.list_actions()] == [ActionState.DUE]
    app.clock.advance(10 * DAY)
    dispatch(app, "order_paid", make_order("1003", lines=(BEANS,)))
    (reminder,) = app.store.list_actions()
    assert (reminder.state, reminder.reason) == (
        ActionState.DROPPED,
        "replenishment withdrawn: the customer bought it again",
    )


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"cancelled_at": START + DAY}, "fire-time check: the order was cancelled"),
        ({"financial_status": FinancialStatus.REFUNDED}, "fire-time check: the order was refunded"),
    ],
)
def test_dropped_when_due_if_the_order_was_cancelled_or_refunded(plugin_app, change, reason):
    app = plugin_app(replenishment, settings={"replenishment": SETTINGS})
    order = make_order("1001", lines=(BEANS,))
    dispatch(app, "delivered", delivered(order, app.now()))
    app.adapter("test").put_order(replace(order, **change))
    app.clock.advance(60 * DAY)
    execute_due(app)
    assert [(a.state, a.reason) for a in app.store.list_actions()] == [(ActionState.DROPPED, reason)]
    assert inbox(app) == []


def test_nothing_for_orders_without_the_products_or_whose_cycle_already_ran_out(plugin_app):
    app = plugin_app(replenishment, settings={"replenishment": SETTINGS})
    dispatch(app, "delivered", delivered(make_order("1001"), app.now()))
    app.clock.advance(90 * DAY)
    old = make_order("1002", lines=(BEANS,))
    dispatch(app, "delivered", delivered(old, START), at=START)  # a backfill of last quarter
    assert app.store.list_actions() == []


def test_cart_links_of_each_platform():
    cups = make_order().lines[0]
    assert replenishment.cart_link("shopify", "https://s.example.com/", [cups, BEANS]) == (
        "https://s.example.com/cart/var-1:2,var-7:2"
    )
    assert replenishment.cart_link("woocommerce", "https://w.example.com", [BEANS]) == (
        "https://w.example.com/?add-to-cart=var-7&quantity=2"
    )
    no_ids = replace(BEANS, product_id="", variant_id="")
    assert replenishment.cart_link("woocommerce", "https://w.example.com", [no_ids]) == "https://w.example.com"


def test_settings_need_a_link_and_templates_render(aftercare_app):
    with pytest.raises(ValidationError, match="groups.coffee: set its url, or the plugin's shop_url"):
        replenishment.Settings(groups={"coffee": {"skus": ["B"], "cycle_days": 30}})
    own_link = {"skus": ["B"], "cycle_days": 90, "url": "https://shop.example.com/beans"}
    assert replenishment.Settings(groups={"coffee": own_link}).longest_delay() == 90 * DAY
    assert check_templates(aftercare_app(replenishment)) == []
