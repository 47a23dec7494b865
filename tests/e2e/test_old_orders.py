"""A reminder due months after delivery re-reads its order: without read_all_orders Shopify
hides orders older than 60 days, and the action says that, not that the order does not exist."""

from __future__ import annotations

from datetime import timedelta

import pytest

from aftercare.sandbox import Item
from aftercare.sandbox.shopify import DEFAULT_SCOPES
from aftercare.sandbox.testing import FAST_RETRIES

WARRANTY = {"warranty_reminder": {"enabled": True, "groups": {"mugs": {"title_keywords": ["mug"], "months": 3,
                                                                        "days_before": 0}}}}  # fmt: skip


def reminder(running):
    (action,) = [a for a in running.app.store.list_actions(plugin="warranty_reminder")]
    return action


@pytest.mark.timeout(60)
@pytest.mark.parametrize("scopes", [DEFAULT_SCOPES, (*DEFAULT_SCOPES, "read_all_orders")], ids=["without", "with"])
def test_a_warranty_reminder_on_an_order_older_than_60_days_needs_read_all_orders(deploy, scopes):
    options = {"shop": {"retry_delays": FAST_RETRIES, "scopes": scopes}}
    running = deploy({"shop": "shopify"}, plugins=WARRANTY, sandbox_options=options)
    shop = running.sandboxes["shop"]
    order = shop.create_order(email="ana@example.com", items=[Item("Stoneware mug", 1, 12)])
    shop.ship(order.id)
    shop.deliver(order.id)
    running.settle()
    assert reminder(running).state.value == "due"

    running.advance(timedelta(days=93))
    running.advance(timedelta(hours=3))  # past the mail's quiet hours, if it got that far
    action = reminder(running)
    if "read_all_orders" in scopes:
        assert action.state.value == "done", action.reason
    else:
        assert action.state.value == "failed"
        assert "cannot read orders older than 60 days: the app lacks the read_all_orders scope" in action.reason
        assert "does not exist" not in action.reason
