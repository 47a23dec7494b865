"""What a real WooCommerce 11 does that the sandbox now does too, end to end: webhooks into
the receiver, the worker on the queue, sync over the REST API. A registered customer's
consent lives on their record; a status that moves past completed keeps date_completed_gmt;
a refund's lines are only on the refunds endpoint."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

import pytest

from aftercare.models import ConsentState, Customer, EventKind
from aftercare.sandbox import Item
from aftercare.sync import sync_shop

from .conftest import hours

WALLET = Item("Leather Card Holder", 1, Decimal("35.00"), "CARD-TAN")  # warranty_reminder group "leather"
COFFEE = Item("Single-Origin Coffee 250 g", 1, Decimal("11.50"), "COFFEE-250")


def events_of(running, order_id, kind):
    return [
        e.event
        for e in running.app.store.list_events(limit=1000)
        if e.event.kind is kind and e.event.order.platform_id == str(order_id)
    ]


def actions_of(running, order_id, plugin):
    return [a for a in running.app.store.list_actions(limit=1000, plugin=plugin) if a.order_id == str(order_id)]


@pytest.mark.timeout(90)
def test_a_partly_refunded_product_gets_no_warranty_reminder(deploy):
    running = deploy({"shop": "woocommerce"})
    shop = running.sandboxes["shop"]
    order = shop.create_order(email="ivan@example.com", locale="bg", items=[WALLET, COFFEE])
    hours(running, 1)
    shop.ship(order.id)
    hours(running, 1)
    (reminder,) = actions_of(running, order.id, "warranty_reminder")
    assert reminder.state.value == "due"

    wallet = next(line for line in order.lines if line.sku == "CARD-TAN")
    shop.refund(order.id, lines=[wallet.id], reason="defective")
    hours(running, 1)
    running.finish()

    (refunded,) = events_of(running, order.id, EventKind.REFUNDED)
    assert refunded.refund.lines_known is False  # the delivery's summary did not say; the worker read them
    (reminder,) = actions_of(running, order.id, "warranty_reminder")
    assert (reminder.state.value, reminder.reason) == (
        "dropped",
        "its products were refunded: no warranty reminder for leather",
    )
    assert shop.deliveries and all(d.status == 200 for d in shop.deliveries)


@pytest.mark.timeout(90)
def test_completed_then_return_requested_in_one_delivery_ships_once(deploy):
    running = deploy({"shop": "woocommerce"})
    shop = running.sandboxes["shop"]
    order = shop.create_order(email="lucia@example.com", locale="es")
    hours(running, 1)
    with shop.state.lock:  # two quick changes: the deliveries are built after both, showing the last
        shop.complete(order.id)
        shop.request_return(order.id, reason="too small")
    hours(running, 1)
    running.finish()

    (shipped,) = events_of(running, order.id, EventKind.SHIPPED)
    assert shipped.dedupe_key == f"order:{order.id}:shipped"
    assert shipped.order.shipments[0].shipped_at == order.completed_at.replace(microsecond=0)
    assert len(events_of(running, order.id, EventKind.RETURN_REQUESTED)) == 1
    notices = Counter((a.kind.value, a.state.value) for a in actions_of(running, order.id, "tracking_notice"))
    assert notices == {("send_email", "done"): 1, ("send_sms", "done"): 1}  # one notice, one text (the demo's plugins)


@pytest.mark.timeout(90)
def test_completed_and_return_requested_while_aftercare_was_down_then_sync_ships_once(deploy, monkeypatch):
    running = deploy({"shop": "woocommerce"})
    shop = running.sandboxes["shop"]
    order = shop.create_order(email="lucia@example.com", locale="es")
    hours(running, 1)
    assert len(events_of(running, order.id, EventKind.ORDER_PAID)) == 1

    store = running.app.store
    real = store.add_events

    def down(conn, batch):
        if batch:
            raise OSError("aftercare is down (injected)")
        return real(conn, batch)

    monkeypatch.setattr(store, "add_events", down)
    shop.complete(order.id)
    hours(running, 1)
    shop.request_return(order.id, reason="too small")
    hours(running, 1)
    monkeypatch.setattr(store, "add_events", real)
    assert events_of(running, order.id, EventKind.SHIPPED) == []  # both deliveries were lost

    report = sync_shop(running.app, running.worker.queue, "shop")
    running.finish()
    assert report.new_events == 2
    (shipped,) = events_of(running, order.id, EventKind.SHIPPED)
    assert (shipped.source, shipped.dedupe_key) == ("poll", f"order:{order.id}:shipped")
    assert len(events_of(running, order.id, EventKind.RETURN_REQUESTED)) == 1
    assert sync_shop(running.app, running.worker.queue, "shop").new_events == 0


@pytest.mark.timeout(120)
def test_a_registered_customers_consent_is_on_their_record_and_read_on_their_next_order(deploy):
    """The newsletter invitation goes to customers whose platform consent is not 'subscribed':
    one who subscribed gets none on their next order, because the worker reads their record."""
    running = deploy({"shop": "woocommerce"})
    shop = running.sandboxes["shop"]
    first = shop.create_order(email="ana@example.com", locale="es")
    other = shop.create_order(email="eve@example.com", locale="en")
    hours(running, 1)
    adapter = running.app.adapter("shop")
    ana = Customer(email="ana@example.com", platform_id=str(first.customer_id))
    adapter.set_marketing_consent(ana, ConsentState.SUBSCRIBED, "double opt-in")
    adapter.tag_customer(ana, ["newsletter"])
    record = shop.state.customers[first.customer_id]
    meta = {entry["key"]: entry["value"] for entry in record.meta}
    assert meta["aftercare_marketing_consent"]["state"] == "subscribed" and meta["aftercare_tags"] == "newsletter"

    second = shop.create_order(email="ana@example.com", locale="es")
    assert second.customer_id == first.customer_id
    for order in (second, other):
        shop.ship(order.id)
    hours(running, 1)
    for order in (second, other):
        shop.deliver(order.id)
    hours(running, 24 * 3)
    running.finish()

    invites = Counter(a.customer_email for a in running.app.store.list_actions(limit=1000, plugin="newsletter_optin"))
    assert invites == {"eve@example.com": 1}
    assert adapter.fetch_order(str(second.id)).customer.marketing_consent is ConsentState.SUBSCRIBED
