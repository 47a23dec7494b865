"""A first sync of a Shopify shop with 2,000 orders runs into the rate limit and honours it:
every order is read, every event stored once, no action fails."""

from __future__ import annotations

from collections import Counter

import pytest

from aftercare.sandbox.testing import FAST_RETRIES
from aftercare.sync import sync_shop

from .conftest import hours

ORDERS = 2000
CUSTOMERS = 20


@pytest.mark.timeout(150)
def test_backfill_of_2000_orders_is_throttled_and_loses_nothing(deploy):
    # Shopify's bucket size, but a restore rate fast enough that 667 queries take seconds, not minutes.
    sandbox = {"bucket_size": 1000, "restore_rate": 2000, "retry_delays": FAST_RETRIES}
    running = deploy(
        {"shop": "shopify"},
        plugins={"coupon": {"enabled": True, "period": "ever"}},
        sandbox_options={"shop": sandbox},
        register=False,  # orders from before aftercare was installed: no webhooks, only the backfill
    )
    shop = running.sandboxes["shop"]
    for n in range(ORDERS):
        shop.create_order(email=f"regular-{n % CUSTOMERS}@example.com")

    shop.bucket.drain()  # another app on the same shop has just used up the bucket
    report = sync_shop(running.app, running.worker.queue, "shop")
    hours(running, 1)  # each coupon mail waits for its coupon, which the throttled API created a little later
    running.finish()

    assert shop.throttled >= 1  # THROTTLED answers were given, and each was waited out and retried
    assert (report.orders, report.new_events) == (ORDERS, ORDERS)
    actions = Counter((a.kind.value, a.state.value) for a in running.app.store.list_actions(limit=5000))
    assert actions == {("create_coupon", "done"): CUSTOMERS, ("send_email", "done"): CUSTOMERS}
    assert len(shop.coupons()) == CUSTOMERS
