"""The real Shopify adapter against the sandbox Shopify shop, over 127.0.0.1."""

from __future__ import annotations

import json
import time
from decimal import Decimal

import pytest
from pydantic import SecretStr

from aftercare.adapters.shopify import ShopifyAdapter, ShopifySettings
from aftercare.clock import SystemClock
from aftercare.models import ConsentState, Customer, EventKind
from aftercare.platform import CouponSpec, MemoryShopState, ShopInfo
from aftercare.sandbox import ShopifySandbox
from aftercare.sandbox.testing import FAST_RETRIES

ALL_KINDS = list(ShopifyAdapter.topics)


def adapter_for(shop: ShopifySandbox, *, secret: str | None = None, sleep=None, **settings) -> ShopifyAdapter:
    values = {**shop.adapter_settings(), "poll_page_size": 3, **settings}
    return ShopifyAdapter(
        ShopInfo(id="sandbox", webhook_secret=SecretStr(secret or shop.secret)),
        ShopifySettings(**values),
        MemoryShopState(),
        SystemClock().now,
        sleep=sleep,
    )


@pytest.fixture
def roomy_shop():
    """A shop whose bucket fits the adapter's five-order delivery-watch query (1305 points,
    above Shopify's single-query limit of 1000: see test_adapter_queries_fit_the_cost_limit)."""
    with ShopifySandbox(bucket_size=2000, restore_rate=1000, max_query_cost=None, retry_delays=FAST_RETRIES) as shop:
        yield shop


def test_poll_finds_orders_and_derives_every_event(roomy_shop):
    shop = roomy_shop
    paid = shop.create_order(locale="en")
    shipped = shop.create_order(locale="es")
    shop.ship(shipped.id)
    delivered = shop.create_order(locale="bg")
    shop.ship(delivered.id)
    shop.deliver(delivered.id)
    returned = shop.create_order()
    shop.ship(returned.id)
    shop.request_return(returned.id, reason="size_too_small")
    refunded = shop.create_order()
    shop.refund(refunded.id, reason="out of stock")
    cancelled = shop.create_order(paid=False)
    shop.cancel(cancelled.id)

    adapter = adapter_for(shop)
    batches = list(adapter.poll(None))
    events = {(e.order.platform_id, e.kind) for batch in batches for e in batch.events}

    assert (str(paid.id), EventKind.ORDER_PAID) in events
    assert (str(shipped.id), EventKind.SHIPPED) in events
    assert (str(delivered.id), EventKind.DELIVERED) in events
    assert (str(returned.id), EventKind.RETURN_REQUESTED) in events
    assert (str(refunded.id), EventKind.REFUNDED) in events
    assert (str(cancelled.id), EventKind.ORDER_CANCELLED) in events
    assert (str(cancelled.id), EventKind.ORDER_PAID) not in events
    assert sum(batch.orders_seen for batch in batches[:2]) == 6  # two pages of three


def test_delivery_is_seen_through_the_delivery_watch(roomy_shop):
    """Delivery leaves updated_at alone (as on Shopify): only the watch can see it."""
    shop = roomy_shop
    order = shop.create_order()
    shop.ship(order.id)
    adapter = adapter_for(shop)
    cursor = None
    for batch in adapter.poll(None):
        cursor = batch.cursor
    shop.deliver(order.id)

    kinds = [e.kind for batch in adapter.poll(cursor) for e in batch.events]

    assert EventKind.DELIVERED in kinds


def test_fetch_order_maps_the_whole_order(sandbox_shopify):
    order = sandbox_shopify.create_order(
        email="ana@example.com", locale="es", currency="EUR", discount_codes=["WELCOME-ABCDE"]
    )
    shipment = sandbox_shopify.ship(
        order.id, carrier="Correos", tracking_number="PQ1ES", tracking_url="https://t/PQ1ES"
    )

    fetched = adapter_for(sandbox_shopify).fetch_order(str(order.id))

    assert fetched.customer.email == "ana@example.com"
    assert fetched.locale == "es"
    assert fetched.total.amount == order.total and fetched.total.currency == "EUR"
    assert [line.title for line in fetched.lines] == [line.title for line in order.lines]
    assert fetched.shipments[0].platform_id == str(shipment.id)
    assert (fetched.shipments[0].carrier, fetched.shipments[0].tracking_number) == ("Correos", "PQ1ES")
    assert fetched.discount_codes == ("WELCOME-ABCDE",)


def test_create_coupon_twice_creates_one(sandbox_shopify):
    order = sandbox_shopify.create_order()
    adapter = adapter_for(sandbox_shopify)
    spec = CouponSpec("THANKYOU-10", "percent", Decimal(10), "EUR", customer_id=str(order.customer_id))

    first, second = adapter.create_coupon(spec), adapter.create_coupon(spec)

    assert first.created and not second.created
    assert first.platform_id == second.platform_id
    (coupon,) = sandbox_shopify.state.coupons.values()
    assert coupon.amount == Decimal("10.0") and coupon.customer_ids == [order.customer_id]


def test_notes_tags_and_consent_change_the_shop(sandbox_shopify):
    order = sandbox_shopify.create_order()
    adapter = adapter_for(sandbox_shopify)
    customer = Customer(email=order.email)  # no id: the adapter looks it up by email

    adapter.add_order_note(str(order.id), "review mail sent")
    adapter.add_order_note(str(order.id), "coupon sent")
    adapter.add_order_note(str(order.id), "coupon sent")  # a retry: no duplicate
    adapter.tag_order(str(order.id), ["aftercare", "reviewed"])
    adapter.tag_customer(customer, ["newsletter"])
    adapter.set_marketing_consent(customer, ConsentState.SUBSCRIBED, "double_opt_in")

    assert order.note == "review mail sent\n\ncoupon sent"
    assert order.tags == ["aftercare", "reviewed"]
    record = sandbox_shopify.state.customers[order.customer_id]
    assert record.tags == ["newsletter"]
    assert (record.marketing_state, record.marketing_opt_in_level) == ("subscribed", "confirmed_opt_in")
    assert adapter.fetch_order(str(order.id)).customer.marketing_consent is ConsentState.SUBSCRIBED


def test_webhook_subscriptions_register_list_remove(sandbox_shopify):
    adapter = adapter_for(sandbox_shopify)
    address = "https://aftercare.example/webhooks/shopify/sandbox"

    created = adapter.register_webhooks(address, ALL_KINDS)
    again = adapter.register_webhooks(address, ALL_KINDS)

    topics = sorted(sub.topic for sub in adapter.list_webhooks())
    assert topics == sorted({t for ts in ShopifyAdapter.topics.values() for t in ts})
    assert [s.platform_id for s in again] == [s.platform_id for s in created]
    assert adapter.remove_webhooks(address) == len(topics)
    assert adapter.list_webhooks() == []


def test_check_live_passes_and_reports_a_bad_token_or_missing_scope(sandbox_shopify):
    assert adapter_for(sandbox_shopify).check_live() == []
    (problem,) = adapter_for(sandbox_shopify, access_token="shpat_wrong").check_live()
    assert "401" in problem and "access_token" in problem
    with ShopifySandbox(scopes=("read_orders", "write_orders")) as narrow:
        problems = adapter_for(narrow).check_live()
    assert "the access token lacks the write_discounts scope" in problems


def test_throttled_queries_wait_and_succeed(sandbox_shopify):
    shop = ShopifySandbox(bucket_size=300, restore_rate=1500, retry_delays=FAST_RETRIES)
    with shop:
        order = shop.create_order()
        shop.bucket.drain()  # another app call spent the bucket
        sleeps: list[float] = []

        def sleep(seconds: float) -> None:
            sleeps.append(seconds)
            time.sleep(seconds)

        adapter = adapter_for(shop, sleep=sleep)
        fetched = adapter.fetch_order(str(order.id))  # 261 points: throttled, waits, retries
        for _ in range(3):  # now the client knows the bucket and waits before sending
            adapter.fetch_order(str(order.id))

    assert fetched.platform_id == str(order.id)
    assert shop.throttled == 1
    assert sleeps and all(0 < s < 1 for s in sleeps)


def test_throttled_answer_has_shopifys_shape(sandbox_shopify):
    import requests

    bucket = sandbox_shopify.bucket
    bucket.drain()
    stopped = bucket.monotonic()
    bucket.monotonic = lambda: stopped  # no refill while the request is in flight, however slow the machine
    settings = sandbox_shopify.adapter_settings()
    answer = requests.post(
        f"{settings['admin_url']}/admin/api/2026-10/graphql.json",
        json={"query": "{ shop { name } }"},
        headers={"X-Shopify-Access-Token": settings["access_token"]},
        timeout=5,
    ).json()
    assert answer["errors"] == [
        {
            "message": "Throttled",
            "extensions": {"code": "THROTTLED", "documentation": "https://shopify.dev/api/usage/rate-limits"},
        }
    ]
    status = answer["extensions"]["cost"]["throttleStatus"]
    assert status["maximumAvailable"] == 1000 and status["restoreRate"] == 50


def _receive_all(shop, receiver, adapter):
    shop.flush()
    deliveries = [adapter.verify_webhook(r.headers, r.body) for r in receiver.received if r.status == 200]
    return [event for delivery in deliveries for event in adapter.parse_webhook(delivery)]


def test_webhooks_verify_and_parse_into_events(sandbox_shopify, webhook_receiver):
    adapter = adapter_for(sandbox_shopify)
    adapter.register_webhooks(webhook_receiver.url, ALL_KINDS)
    order = sandbox_shopify.create_order(locale="bg")
    sandbox_shopify.ship(order.id)
    sandbox_shopify.deliver(order.id)
    sandbox_shopify.request_return(order.id)
    sandbox_shopify.refund(order.id, amount=Decimal("5.00"))
    other = sandbox_shopify.create_order(paid=False)
    sandbox_shopify.cancel(other.id)

    events = _receive_all(sandbox_shopify, webhook_receiver, adapter)

    kinds = [(e.kind, e.order.platform_id) for e in events]
    assert (EventKind.ORDER_PAID, str(order.id)) in kinds
    assert (EventKind.SHIPPED, str(order.id)) in kinds
    assert kinds.count((EventKind.DELIVERED, str(order.id))) == 2  # fulfillment_events/create + fulfillments/update
    delivered_keys = {e.dedupe_key for e in events if e.kind is EventKind.DELIVERED}
    assert len(delivered_keys) == 1  # one transition: the inbox keeps one of the two
    assert (EventKind.RETURN_REQUESTED, str(order.id)) in kinds
    assert (EventKind.REFUNDED, str(order.id)) in kinds
    assert (EventKind.ORDER_CANCELLED, str(other.id)) in kinds
    refund = next(e for e in events if e.kind is EventKind.REFUNDED).refund
    assert refund.amount.amount == Decimal("5.00") and refund.amount.currency == order.currency
    headers = webhook_receiver.received[0].headers
    assert headers["x-shopify-shop-domain"] == sandbox_shopify.shop_domain
    assert {"x-shopify-webhook-id", "x-shopify-event-id", "x-shopify-triggered-at"} <= set(headers)


def test_a_failed_delivery_is_retried_with_the_same_payload(sandbox_shopify, webhook_receiver):
    adapter = adapter_for(sandbox_shopify)
    adapter.register_webhooks(webhook_receiver.url, [EventKind.ORDER_PAID])
    webhook_receiver.answer(500, 503)

    order = sandbox_shopify.create_order()
    sandbox_shopify.flush()

    received = webhook_receiver.received
    assert [r.status for r in received] == [500, 503, 200]
    assert len({r.body for r in received}) == 1
    assert len({r.headers["x-shopify-webhook-id"] for r in received}) == 1
    events = [e for r in received for e in adapter.parse_webhook(adapter.verify_webhook(r.headers, r.body))]
    assert {e.dedupe_key for e in events} == {f"order:{order.id}:paid"}
    assert events[0].order.platform_id == str(order.id)


def test_a_delivery_that_exhausts_its_retries_deletes_the_subscription(sandbox_shopify, webhook_receiver):
    adapter = adapter_for(sandbox_shopify)
    adapter.register_webhooks(webhook_receiver.url, [EventKind.ORDER_PAID])
    webhook_receiver.answer(*[500] * (len(FAST_RETRIES) + 1))

    sandbox_shopify.create_order()
    sandbox_shopify.flush()

    assert len(webhook_receiver.received) == len(FAST_RETRIES) + 1
    assert adapter.list_webhooks() == []


def test_webhook_bodies_have_the_fixture_fields(sandbox_shopify, webhook_receiver, shared_fixtures):
    """Every top-level field of the real REST order and fulfillment is in the sandbox's."""
    adapter = adapter_for(sandbox_shopify)
    adapter.register_webhooks(webhook_receiver.url, [EventKind.ORDER_PAID, EventKind.SHIPPED])
    order = sandbox_shopify.create_order()
    sandbox_shopify.ship(order.id)
    sandbox_shopify.flush()
    bodies = {r.headers["x-shopify-topic"]: json.loads(r.body) for r in webhook_receiver.received}
    real_order = json.loads((shared_fixtures / "shopify/rest_order_paid_fulfilled_create.json").read_text())["order"]
    real_fulfillment = json.loads((shared_fixtures / "shopify/rest_fulfillment_with_tracking.json").read_text())
    wanted_order = {"id", "email", "customer", "line_items", "financial_status", "fulfillments", "total_price_set"}
    assert wanted_order <= set(bodies["orders/paid"]) & set(real_order)
    assert set(real_fulfillment["fulfillment"]) <= set(bodies["fulfillments/create"])


def test_adapter_queries_fit_the_cost_limit(sandbox_shopify):
    """With Shopify's default bucket (1000 points, also the single-query limit) the
    adapter's default poll page and delivery watch can be paid for."""
    for _ in range(4):  # more than a page, each shipped: the delivery watch re-reads them all
        order = sandbox_shopify.create_order()
        sandbox_shopify.ship(order.id)
    adapter = adapter_for(sandbox_shopify, max_attempts=1)
    events = [e for batch in adapter.poll(None) for e in batch.events]
    assert sum(e.kind.value == "shipped" for e in events) == 4


def test_without_read_all_orders_an_old_order_is_unreadable_and_says_why():
    from datetime import UTC, datetime, timedelta

    from aftercare.clock import ManualClock
    from aftercare.platform import LiveWarning, PlatformError

    clock = ManualClock(datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
    with ShopifySandbox(clock=clock.now, retry_delays=FAST_RETRIES) as shop:
        order = shop.create_order()
        adapter = adapter_for(shop)
        assert adapter.fetch_order(str(order.id)).platform_id == str(order.id)
        clock.advance(timedelta(days=61))
        with pytest.raises(PlatformError) as caught:
            adapter.fetch_order(str(order.id))
        assert "cannot read orders older than 60 days: the app lacks the read_all_orders scope" in caught.value.message
        assert not caught.value.transient
        assert [e for b in adapter.poll(None, since=clock.now() - timedelta(days=90)) for e in b.events] == []

        shop.scopes = (*shop.scopes, "read_all_orders")
        assert adapter.fetch_order(str(order.id)).platform_id == str(order.id)
        shop.scopes = shop.scopes[:-1]
        with pytest.raises(PlatformError) as caught:
            adapter.fetch_order("5612300000999")
        assert "read_all_orders" in caught.value.message  # a deleted order cannot be told apart

        # check --live asks for the scope when an enabled plugin waits past 60 days.
        settings = ShopifySettings(**shop.adapter_settings())
        info = ShopInfo(id="sandbox", webhook_secret=SecretStr(shop.secret), longest_delay=timedelta(days=342))
        waiting = ShopifyAdapter(info, settings, MemoryShopState(), clock.now)
        (problem,) = [p for p in waiting.check_live() if not isinstance(p, LiveWarning)]
        assert problem.startswith("the access token lacks the read_all_orders scope: an enabled plugin waits up to 342")
        assert [p for p in adapter_for(shop).check_live() if not isinstance(p, LiveWarning)] == []


def test_redacted_customer_data_blanks_fields_and_check_live_warns():
    from aftercare.platform import LiveWarning

    with ShopifySandbox(redact_customer_data=True, retry_delays=FAST_RETRIES) as shop:
        order = shop.create_order(email="ana@example.com", first_name="Ana")
        shop.ship(order.id)
        adapter = adapter_for(shop)
        read = adapter.fetch_order(str(order.id))
        assert (read.customer.email, read.customer.first_name, read.shipping_address) == ("", "", None)
        assert read.number == f"#{order.number}" and read.shipments[0].carrier  # the rest is there
        events = [e for b in adapter.poll(None) for e in b.events]
        assert {e.kind for e in events} >= {EventKind.ORDER_PAID, EventKind.SHIPPED}  # polling goes on
        (warning,) = adapter.check_live()
        assert isinstance(warning, LiveWarning)
        assert warning.startswith("Shopify withholds protected customer data from this app (customer.")
        assert "most mails need the customer's email and name" in warning


def test_check_live_warns_three_months_before_the_version_ends():
    from datetime import UTC, datetime

    from aftercare.clock import ManualClock
    from aftercare.platform import LiveWarning

    with ShopifySandbox(retry_delays=FAST_RETRIES) as shop:
        settings = ShopifySettings(**shop.adapter_settings())
        info = ShopInfo(id="sandbox", webhook_secret=SecretStr(shop.secret))

        def live_at(moment, version="2026-10"):
            pinned = settings.model_copy(update={"api_version": version})
            adapter = ShopifyAdapter(info, pinned, MemoryShopState(), ManualClock(moment).now)
            adapter.client.url = pinned.graphql_url.replace(version, shop.api_version)  # the sandbox serves one
            return adapter.check_live()

        assert live_at(datetime(2027, 6, 30, tzinfo=UTC)) == []
        (soon,) = live_at(datetime(2027, 7, 15, tzinfo=UTC))
        assert isinstance(soon, LiveWarning)
        assert soon == (
            "api_version 2026-10 is supported until 2027-10-01 (78 days from now): test and set a newer api_version"
        )
        (gone,) = live_at(datetime(2026, 12, 2, tzinfo=UTC), version="2025-10")
        assert isinstance(gone, LiveWarning) and "out of support since 2026-10-01" in gone
