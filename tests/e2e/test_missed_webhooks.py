"""A webhook aftercare failed to store: Shopify's sandbox retries it and it is stored once;
WooCommerce's never retries, and ``aftercare sync`` recovers the order from the API."""

from __future__ import annotations

from collections import Counter

import pytest

from aftercare.models import EventKind
from aftercare.sync import sync_shop

from .conftest import hours


def fail_first_store(monkeypatch, running, commits: int = 1):
    """The store raises on its first ``commits`` commits of events, as a full disk or a lost
    database would: the receiver must answer 503 and keep nothing."""
    store = running.app.store
    real = store.add_events
    failures = []

    def add_events(conn, batch):
        if batch and len(failures) < commits:
            failures.append([e.kind for e in batch])
            raise OSError("disk I/O error (injected)")
        return real(conn, batch)

    monkeypatch.setattr(store, "add_events", add_events)
    return failures


def stored(running, kind):
    return [e for e in running.app.store.list_events(limit=1000) if e.event.kind is kind]


def coupon_actions(running):
    return Counter((a.kind.value, a.state.value) for a in running.app.store.list_actions(plugin="coupon"))


@pytest.mark.timeout(60)
def test_shopify_retries_after_a_500_and_the_event_is_stored_once(deploy, monkeypatch):
    running = deploy({"shop": "shopify"})
    shop = running.sandboxes["shop"]
    failures = fail_first_store(monkeypatch, running)

    order = shop.create_order(email="ana@example.com")
    hours(running, 1)

    assert failures == [[EventKind.ORDER_PAID]]
    paid = [(d.attempt, d.status) for d in shop.deliveries if d.topic == "orders/paid"]
    assert [status for _attempt, status in paid] == [503, 200]  # the same delivery, tried again
    assert [e.event.order.platform_id for e in stored(running, EventKind.ORDER_PAID)] == [str(order.id)]
    assert coupon_actions(running) == {("create_coupon", "done"): 1, ("send_email", "done"): 1}
    assert len(shop.coupons()) == 1


@pytest.mark.timeout(60)
def test_woocommerce_does_not_retry_and_sync_recovers_the_missed_order(deploy, monkeypatch):
    running = deploy({"shop": "woocommerce"})
    shop = running.sandboxes["shop"]
    # WooCommerce 11 sends order.created and order.updated for one new order: both meet the failure.
    failures = fail_first_store(monkeypatch, running, commits=2)

    order = shop.create_order(email="ana@example.com")
    hours(running, 1)

    assert failures == [[EventKind.ORDER_PAID], [EventKind.ORDER_PAID]]
    assert sorted(d.topic for d in shop.deliveries) == ["order.created", "order.updated"]
    assert [d.status for d in shop.deliveries] == [503, 503]  # never retried
    assert stored(running, EventKind.ORDER_PAID) == []

    report = sync_shop(running.app, running.worker.queue, "shop")
    running.settle()
    assert (report.orders, report.new_events) == (1, 1)
    assert [e.event.source for e in stored(running, EventKind.ORDER_PAID)] == ["poll"]
    assert stored(running, EventKind.ORDER_PAID)[0].event.order.platform_id == str(order.id)
    assert coupon_actions(running) == {("create_coupon", "done"): 1, ("send_email", "done"): 1}

    # Polling again, or the next webhook about the same order, adds nothing and acts on nothing twice.
    assert sync_shop(running.app, running.worker.queue, "shop").new_events == 0
    shop.ship(order.id)
    hours(running, 1)
    running.finish()
    assert len(stored(running, EventKind.ORDER_PAID)) == 1
    assert coupon_actions(running) == {("create_coupon", "done"): 1, ("send_email", "done"): 1}
    assert len(shop.coupons()) == 1
