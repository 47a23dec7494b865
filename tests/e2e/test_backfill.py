"""A first sync of a Shopify shop with 2,000 orders runs into the rate limit and honours it:
every order is read, every event stored once, no action fails."""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest

from aftercare.sandbox.testing import FAST_RETRIES
from aftercare.sync import sync_shop

from .conftest import hours

ORDERS = 2000
CUSTOMERS = 20


def drain_now_and_then(bucket, syncing: threading.Event, every: float = 1.0, times: int = 3) -> None:
    for _ in range(times):
        if not syncing.is_set():
            return
        bucket.drain()
        time.sleep(every)


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

    # Another app on the same shop uses up the bucket now and then, so the client's last look at it
    # is stale and some queries are answered THROTTLED. More than once: a slow machine may take
    # longer to send the first query than the bucket takes to refill.
    syncing = threading.Event()
    another_app = threading.Thread(target=drain_now_and_then, args=(shop.bucket, syncing), daemon=True)
    syncing.set()
    another_app.start()
    try:
        report = sync_shop(running.app, running.worker.queue, "shop")
    finally:
        syncing.clear()
        another_app.join()
    hours(running, 1)  # each coupon mail waits for its coupon, which the throttled API created a little later
    running.finish()

    assert shop.throttled >= 1  # THROTTLED answers were given, and each was waited out and retried
    assert (report.orders, report.new_events) == (ORDERS, ORDERS)
    actions = Counter((a.kind.value, a.state.value) for a in running.app.store.list_actions(limit=5000))
    assert actions == {("create_coupon", "done"): CUSTOMERS, ("send_email", "done"): CUSTOMERS}
    assert len(shop.coupons()) == CUSTOMERS
