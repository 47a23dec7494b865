"""One merchant action, several topics: Shopify gives them one X-Shopify-Event-Id and each
delivery its own X-Shopify-Webhook-Id. Every topic's event is stored; a retry stores nothing."""

from __future__ import annotations

import pytest
import requests

from aftercare.models import EventKind
from aftercare.sync import sync_shop

from .conftest import hours


def stored(running):
    return sorted((e.event.kind.value, e.event.topic) for e in running.app.store.list_events(limit=1000))


@pytest.mark.timeout(60)
def test_a_cancel_with_refund_stores_both_events_and_a_retry_of_either_stores_nothing(deploy):
    running = deploy({"shop": "shopify"})
    shop = running.sandboxes["shop"]
    order = shop.create_order(email="ana@example.com")
    hours(running, 1)
    shop.cancel(order.id, refund=True)
    hours(running, 1)

    sent = {d.topic: d for d in shop.deliveries if d.topic in ("orders/cancelled", "refunds/create")}
    cancelled, refunded = sent["orders/cancelled"], sent["refunds/create"]
    assert cancelled.headers["X-Shopify-Event-Id"] == refunded.headers["X-Shopify-Event-Id"]
    assert cancelled.headers["X-Shopify-Webhook-Id"] != refunded.headers["X-Shopify-Webhook-Id"]
    assert (cancelled.status, refunded.status) == (200, 200)
    after_action = stored(running)
    assert ("order_cancelled", "orders/cancelled") in after_action
    assert ("refunded", "refunds/create") in after_action

    for attempt in (cancelled, refunded):  # Shopify's retry: the same body and headers
        answer = requests.post(running.webhook_address("shop"), data=attempt.body, headers=attempt.headers, timeout=10)
        assert answer.status_code == 200, answer.text
        assert answer.json()["stored"] == 0
    # Polling sees the same transitions under the same keys: nothing new either.
    report = sync_shop(running.app, running.worker.queue, "shop")
    assert (report.orders, report.new_events) == (1, 0) and report.events >= 3  # paid, cancelled, refunded
    assert stored(running) == after_action
    kinds = [kind for kind, _topic in after_action]
    assert kinds.count(EventKind.ORDER_CANCELLED.value) == kinds.count(EventKind.REFUNDED.value) == 1
