"""Contract tests on what a real WooCommerce 11.0.1 shop sent and answered
(../shared/fixtures/woocommerce/wc-11.0.1, its README says what each file shows).

Every recorded delivery goes through the adapter as received: the exact bytes
(``body_b64``), the recorded headers, the secret the shop signed with. The
events each gives and the orders they carry are checked field by field; the
REST answers are mapped as fetch_order and poll read them (over mocked HTTP
that answers with the recorded bodies).
"""

from __future__ import annotations

import base64
import copy
import json
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import responses
from pydantic import SecretStr, ValidationError

from aftercare.actions import lines_refunded
from aftercare.adapters.woocommerce import WooCommerceAdapter, WooCommerceSettings
from aftercare.clock import ManualClock
from aftercare.models import (
    Address,
    ConsentState,
    Customer,
    EventKind,
    FinancialStatus,
    FulfillmentStatus,
    LineItem,
    Money,
    ShipmentStatus,
)
from aftercare.platform import MemoryShopState, PlatformError, ShopInfo, WebhookRejected

from ...conftest import SHARED_FIXTURES

SECRET = "rw-e2e&Secret-2026"  # the README's test value
SHOP = "http://127.0.0.1:8089"
API = f"{SHOP}/wp-json/wc/v3"
RECORDED = SHARED_FIXTURES / "woocommerce" / "wc-11.0.1"
DELIVERIES = sorted(path.name for path in RECORDED.glob("webhook_*.json"))


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def wc11(shared_fixtures: Path):
    def load(name: str) -> Any:
        return json.loads((RECORDED / name).read_text(encoding="utf-8"))

    return load


@pytest.fixture
def make(wc11):
    clock = ManualClock(datetime(2026, 12, 2, 2, 0, tzinfo=UTC))

    def adapter(**settings: Any) -> WooCommerceAdapter:
        return WooCommerceAdapter(
            ShopInfo(id="wc11", webhook_secret=SecretStr(SECRET)),
            WooCommerceSettings(url=SHOP, consumer_key="ck_rec", consumer_secret=SecretStr("cs_rec"), **settings),
            MemoryShopState(),
            clock.now,
            sleep=lambda seconds: None,
            jitter=lambda: 0.5,
        )

    return adapter


@pytest.fixture
def http():
    with responses.RequestsMock() as mock:
        yield mock


def received(adapter: WooCommerceAdapter, delivery: dict) -> list:
    """The adapter's verdict on one recorded delivery, exactly as it arrived."""
    verified = adapter.verify_webhook(dict(delivery["headers"]), base64.b64decode(delivery["body_b64"]))
    return adapter.parse_webhook(verified)


# -- signatures and pings -------------------------------------------------------------


def test_every_recording_is_here():
    assert len(DELIVERIES) == 11, DELIVERIES


@pytest.mark.parametrize("name", DELIVERIES)
def test_each_delivery_verifies_with_the_shops_secret_and_its_headers(name, wc11, make):
    adapter = make()
    for delivery in wc11(name):
        body = base64.b64decode(delivery["body_b64"])
        verified = adapter.verify_webhook(dict(delivery["headers"]), body)
        headers = dict(delivery["headers"])
        if verified.is_ping:
            assert delivery["signature_valid_with_secret"] is False  # no signature to check
            assert "X-WC-Webhook-Signature" not in headers
            continue
        assert delivery["signature_valid_with_secret"] is True
        assert verified.topic == headers["X-WC-Webhook-Topic"]
        assert verified.delivery_id == f"{headers['X-WC-Webhook-ID']}:{headers['X-WC-Webhook-Delivery-ID']}"
        assert verified.payload == delivery["body_json"]


@pytest.mark.parametrize("name", [n for n in DELIVERIES if n != "webhook_pings.json"])
def test_a_delivery_with_one_byte_changed_is_refused(name, wc11, make):
    (delivery, *_rest) = wc11(name)
    body = base64.b64decode(delivery["body_b64"])
    with pytest.raises(WebhookRejected) as caught:
        make().verify_webhook(dict(delivery["headers"]), body.replace(b'"id":', b'"id" :', 1))
    assert caught.value.status == 401


def test_the_creation_pings_are_pings(wc11, make):
    adapter = make()
    pings = wc11("webhook_pings.json")
    verdicts = [adapter.verify_webhook(dict(p["headers"]), base64.b64decode(p["body_b64"])) for p in pings]
    assert [(v.is_ping, v.topic) for v in verdicts] == [(True, "ping"), (True, "ping")]
    assert [v.delivery_id for v in verdicts] == [
        f"ping:{base64.b64decode(p['body_b64']).decode().split('=')[1]}" for p in pings
    ]
    assert [adapter.parse_webhook(v) for v in verdicts] == [[], []]


# -- events of each delivery, first sight -------------------------------------------


FIRST_SIGHT = {
    # file: the (kind, dedupe key) of each event when the order is seen for the first time
    "webhook_order_created_pending.json": [],
    "webhook_order_updated_paid.json": [("order_paid", "order:14:paid")],
    "webhook_order_updated_tracking.json": [
        ("order_paid", "order:14:paid"),
        ("shipped", "tracking:14:7d5e3f0a9b1c4e2f8a6b0c1d2e3f4a5b:shipped"),
    ],
    "webhook_order_updated_completed_with_tracking.json": [
        ("order_paid", "order:14:paid"),
        ("shipped", "tracking:14:7d5e3f0a9b1c4e2f8a6b0c1d2e3f4a5b:shipped"),  # one parcel, not tracking + status
    ],
    "webhook_order_updated_return_meta.json": [
        ("order_paid", "order:16:paid"),
        ("shipped", "order:16:shipped"),
        ("return_requested", "order:16:return_requested"),
    ],
    "webhook_order_updated_partial_refund.json": [
        ("order_paid", "order:16:paid"),
        ("shipped", "order:16:shipped"),
        ("return_requested", "order:16:return_requested"),
        ("refunded", "refund:18"),
    ],
    # Refunded in full before aftercare saw it shipped: the parcel is remembered, not announced.
    "webhook_order_updated_full_refund.json": [("order_paid", "order:19:paid"), ("refunded", "refund:21")],
    "webhook_order_updated_cancelled.json": [
        ("order_paid", "order:22:paid"),
        ("order_cancelled", "order:22:cancelled"),
    ],
    # First seen delivered: no "shipped" after the fact.
    "webhook_order_updated_custom_status_delivered.json": [
        ("order_paid", "order:24:paid"),
        ("delivered", "order:24:delivered"),
    ],
    "webhook_delivery_failed_502.json": [("order_paid", "order:28:paid")],
    "webhook_pings.json": [],
}


def test_first_sight_covers_every_delivery():
    assert sorted(FIRST_SIGHT) == DELIVERIES


@pytest.mark.parametrize("name", sorted(FIRST_SIGHT))
def test_the_events_each_delivery_gives_on_first_sight(name, wc11, make):
    adapter = make()
    events = [event for delivery in wc11(name) for event in received(adapter, delivery)]
    assert [(e.kind.value, e.dedupe_key) for e in events] == FIRST_SIGHT[name]
    assert {e.source for e in events} <= {"webhook"}
    assert all(e.shop_id == "wc11" for e in events)


def test_one_rest_create_sends_created_and_updated_and_gives_no_event_twice(wc11, make):
    adapter = make()
    created, updated = wc11("webhook_order_created_pending.json")
    assert [dict(d["headers"])["X-WC-Webhook-Topic"] for d in (created, updated)] == ["order.created", "order.updated"]
    assert created["body_b64"] == updated["body_b64"]  # the same order, byte for byte
    assert received(adapter, created) == received(adapter, updated) == []
    # The same pair for an order paid at creation: the second delivery finds nothing new.
    (paid,) = wc11("webhook_delivery_failed_502.json")
    as_updated = copy.deepcopy(paid)
    as_updated["headers"] = [
        [name, {"X-WC-Webhook-Topic": "order.updated", "X-WC-Webhook-Event": "updated"}.get(name, value)]
        for name, value in paid["headers"]
    ]
    assert [e.kind for e in received(adapter, paid)] == [EventKind.ORDER_PAID]
    assert received(adapter, as_updated) == []


def test_one_orders_deliveries_in_the_order_received(wc11, make):
    """Order 14 as the shop told it: created (twice), paid, tracked, completed."""
    adapter = make()
    names = [
        "webhook_order_created_pending.json",
        "webhook_order_updated_paid.json",
        "webhook_order_updated_tracking.json",
        "webhook_order_updated_completed_with_tracking.json",
    ]
    seen = [[e.kind.value for e in received(adapter, d)] for name in names for d in wc11(name)]
    assert seen == [[], [], ["order_paid"], ["shipped"], []]
    # Order 16: return asked for, then one line refunded.
    seen = [
        [e.kind.value for e in received(adapter, d)]
        for name in ("webhook_order_updated_return_meta.json", "webhook_order_updated_partial_refund.json")
        for d in wc11(name)
    ]
    assert seen == [["order_paid", "shipped", "return_requested"], ["refunded"]]


# -- the orders the deliveries carry, field by field -----------------------------------


def test_a_tracked_completed_order_maps_field_by_field(wc11, make):
    (delivery,) = wc11("webhook_order_updated_completed_with_tracking.json")
    paid, shipped = received(make(), delivery)
    order = shipped.order
    assert (order.platform, order.shop_id, order.platform_id, order.number) == ("woocommerce", "wc11", "14", "14")
    assert order.customer == Customer(
        email="alice.walker@example.com", first_name="Alice", last_name="Walker", platform_id="2"
    )
    assert order.partial  # a registered customer: the consent is on their record, read by the worker
    assert (order.locale, order.currency) == ("", "USD")
    assert (order.total, order.subtotal) == (Money(Decimal("101.50"), "USD"), Money(Decimal("101.50"), "USD"))
    assert order.lines == (
        LineItem("1", "Espresso cups (set of 2)", 1, Money(Decimal("12.50"), "USD"), "10", "", "CUP-2"),
        LineItem("2", "Burr grinder", 1, Money(Decimal("89.00"), "USD"), "11", "", "GRIND-1"),
    )
    (parcel,) = order.shipments
    assert (parcel.platform_id, parcel.carrier, parcel.tracking_number, parcel.tracking_url) == (
        "7d5e3f0a9b1c4e2f8a6b0c1d2e3f4a5b",
        "ups",
        "1Z999AA10123456784",
        "",
    )
    assert (parcel.status, parcel.shipped_at) == (ShipmentStatus.UNKNOWN, datetime.fromtimestamp(1796172629, UTC))
    assert shipped.shipment == parcel and shipped.occurred_at == parcel.shipped_at
    assert (order.financial_status, order.fulfillment_status) == (FinancialStatus.PAID, FulfillmentStatus.FULFILLED)
    assert (order.refunds, order.returns, order.discount_codes, order.tags) == ((), (), (), ())
    assert (order.created_at, order.updated_at) == (utc("2026-12-02T01:50:22"), utc("2026-12-02T01:50:33"))
    assert paid.occurred_at == utc("2026-12-02T01:50:26")  # date_paid_gmt
    assert order.shipping_address == Address(
        first_name="Alice", last_name="Walker", address1="12 Main St", city="Springfield", province="IL",
        zip="62701", country_code="US", phone="+1 217 555 0100",
    )  # fmt: skip
    assert not order.is_cancelled and not order.is_refunded


def test_a_partly_refunded_returned_order_maps_field_by_field(wc11, make):
    (delivery,) = wc11("webhook_order_updated_partial_refund.json")
    paid, shipped, returned, refunded = received(make(), delivery)
    order = refunded.order
    assert (order.platform_id, order.number, order.locale, order.currency) == ("16", "16", "es", "EUR")
    assert order.customer == Customer(
        email="lucia.fernandez@example.es", first_name="Lucía", last_name="Fernández", locale="es", platform_id="3"
    )
    assert [(line.platform_id, line.title, line.sku, line.unit_price) for line in order.lines] == [
        ("3", "Desk lamp", "LAMP-1", Money(Decimal("35.00"), "EUR")),
        ("4", "Espresso cups (set of 2)", "CUP-2", Money(Decimal("12.50"), "EUR")),
    ]
    assert order.total == Money(Decimal("47.50"), "EUR")
    # Completed without tracking: date_completed_gmt stands for the parcel.
    (parcel,) = order.shipments
    assert (parcel.platform_id, parcel.shipped_at, parcel.tracking_number) == (
        "order-16",
        utc("2026-12-02T01:50:43"),
        "",
    )
    assert shipped.occurred_at == utc("2026-12-02T01:50:43")
    (request,) = order.returns
    assert (request.platform_id, request.reason, request.requested_at) == (
        "order-16-return",
        "Demasiado pequeño",
        utc("2026-12-02T01:50:50"),
    )
    assert returned.return_request == request
    # The summary has neither date nor lines: the refund's lines are unknown, not none.
    (refund,) = order.refunds
    assert (refund.platform_id, refund.amount, refund.reason) == (
        "18",
        Money(Decimal("35.00"), "EUR"),
        "Lámpara devuelta",
    )
    assert (refund.line_item_ids, refund.lines_known, refund.created_at) == ((), False, order.updated_at)
    assert refunded.refund == refund and order.partial  # the worker re-reads it, refunds endpoint included
    assert order.financial_status is FinancialStatus.PARTIALLY_REFUNDED
    assert paid.order == order


def test_a_fully_refunded_cancelled_and_delivered_order(wc11, make):
    (full,) = wc11("webhook_order_updated_full_refund.json")
    events = received(make(), full)
    order = events[-1].order
    assert (order.customer.first_name, order.customer.last_name, order.locale) == ("Иван", "Петров", "bg")
    assert order.financial_status is FinancialStatus.REFUNDED and order.is_refunded
    assert [s.carrier for s in order.shipments] == ["Speedy"]
    assert order.shipments[0].tracking_url == "https://www.speedy.bg/bg/track-shipment?shipmentNumber=SP300100200"
    assert order.shipments[0].shipped_at == datetime.fromtimestamp(1796169060, UTC)  # a unix time as text

    (cancelled,) = wc11("webhook_order_updated_cancelled.json")
    paid, gone = received(make(), cancelled)
    assert gone.order.cancelled_at == utc("2026-12-02T01:51:12") == gone.occurred_at
    assert gone.order.financial_status is FinancialStatus.PAID  # paid, then cancelled: money not back yet
    assert gone.order.shipments == ()

    (delivered,) = wc11("webhook_order_updated_custom_status_delivered.json")
    paid, arrived = received(make(), delivered)
    order = arrived.order
    assert order.customer == Customer(
        email="grace.guest@example.co.uk", first_name="Grace", last_name="Guest", platform_id=""
    )
    assert not order.partial  # a guest's order carries all there is
    assert (arrived.shipment.platform_id, arrived.shipment.status) == ("order-24", ShipmentStatus.DELIVERED)
    assert arrived.shipment.delivered_at == utc("2026-12-02T01:51:26")
    assert order.delivery_known and order.shipping_address.country_code == "GB"


def test_a_custom_status_the_settings_do_not_know_gives_nothing_but_paid(wc11, make):
    (delivered,) = wc11("webhook_order_updated_custom_status_delivered.json")
    events = received(make(delivered_statuses=()), delivered)
    assert [e.kind for e in events] == [EventKind.ORDER_PAID]


# -- shipped when the status moved past completed --------------------------------------


def test_missed_completion_then_sync_gives_shipped_once(wc11, make, http):
    """Order 28: its created delivery met aftercare down (502); paid came later, then it
    was completed and return-requested unseen. sync reads it with date_completed_gmt."""
    adapter = make()
    (down,) = wc11("webhook_delivery_failed_502.json")
    assert down["aftercare_answer"]["status"] == 502
    assert [e.kind for e in received(adapter, down)] == [EventKind.ORDER_PAID]  # as if redelivered

    later = wc11("rest_order_custom_status_return_requested.json")
    customer = wc11("rest_customer_with_aftercare_meta.json") | {"id": 3, "email": later["billing"]["email"]}
    http.get(f"{API}/orders", json=[later])
    http.get(f"{API}/customers/3", json=customer)
    (batch,) = adapter.poll(None, since=utc("2026-12-02T01:50:00"))
    assert [(e.kind.value, e.dedupe_key, e.source) for e in batch.events] == [
        ("shipped", "order:28:shipped", "poll"),
        ("return_requested", "order:28:return_requested", "poll"),
    ]
    shipped = batch.events[0]
    assert shipped.occurred_at == utc("2026-12-02T01:51:41") == shipped.shipment.shipped_at  # date_completed_gmt
    assert not shipped.order.partial and shipped.order.customer.marketing_consent is ConsentState.UNKNOWN
    # Polled again, or the same state delivered as a webhook: nothing twice.
    http.get(f"{API}/orders", json=[later])
    (again,) = adapter.poll(None, since=utc("2026-12-02T01:50:00"))
    assert again.events == []


def test_completed_then_return_requested_in_one_delivery_gives_shipped_once(wc11, make):
    """WooCommerce coalesces quick changes: the delivery shows only the final status."""
    adapter = make()
    (paid,) = wc11("webhook_order_updated_paid.json")
    received(adapter, paid)
    final = wc11("rest_order_custom_status_return_requested.json")
    events = adapter._events_for(final, source="webhook", topic="order.updated")
    assert [(e.kind.value, e.dedupe_key) for e in events] == [
        ("order_paid", "order:28:paid"),
        ("shipped", "order:28:shipped"),
        ("return_requested", "order:28:return_requested"),
    ]
    assert adapter._events_for(final, source="poll", topic="") == []


def test_without_completed_among_shipped_statuses_the_completion_date_means_nothing(wc11, make):
    final = wc11("rest_order_custom_status_return_requested.json")
    order = make(shipped_statuses=("shipped",)).parse_order(final)
    assert order.shipments == ()


# -- refunds: the endpoint has what the summary lacks ----------------------------------


def test_fetch_order_reads_refund_lines_from_the_refunds_endpoint(wc11, make, http):
    adapter = make()
    http.get(f"{API}/orders/26", json=wc11("rest_order_partial_refund_with_line_items.json"))
    http.get(f"{API}/orders/26/refunds", json=wc11("rest_order_refunds_with_line_items.json"))
    http.get(f"{API}/customers/4", json=wc11("rest_customer_with_aftercare_meta.json") | {"id": 4})
    order = adapter.fetch_order("26")
    (refund,) = order.refunds
    assert (refund.platform_id, refund.line_item_ids, refund.lines_known) == ("27", ("10",), True)
    assert (refund.amount, refund.created_at) == (Money(Decimal("89.00"), "EUR"), utc("2026-12-02T01:51:36"))
    assert refund.reason == "Мелачката е дефектна"
    assert [line.title for line in order.lines if line.platform_id in order.refunded_line_ids] == ["Burr grinder"]
    assert not order.partial and order.financial_status is FinancialStatus.PARTIALLY_REFUNDED
    # What the warranty reminder's fire-time check concludes from it.
    assert (
        lines_refunded(order, ["10"]) and not lines_refunded(order, ["11"]) and not lines_refunded(order, ["10", "11"])
    )


def test_a_refund_of_an_amount_has_no_lines_and_says_so(wc11, make, http):
    adapter = make()
    http.get(f"{API}/orders/19", json=wc11("rest_order_fully_refunded.json"))
    http.get(f"{API}/orders/19/refunds", json=wc11("rest_order_refunds_list.json"))
    http.get(f"{API}/customers/4", json=wc11("rest_customer_with_aftercare_meta.json") | {"id": 4})
    order = adapter.fetch_order("19")
    (refund,) = order.refunds
    assert (refund.platform_id, refund.line_item_ids, refund.lines_known) == ("21", (), True)
    assert order.financial_status is FinancialStatus.REFUNDED and lines_refunded(order, ["6"])


def test_the_refund_created_answer_maps_to_its_order_line(wc11, make):
    created = wc11("rest_refund_created_partial_line.json")
    (refund,) = make().mapper.refunds([created], "EUR")
    assert (refund.platform_id, refund.line_item_ids, refund.amount) == ("18", ("3",), Money(Decimal("35.00"), "EUR"))
    assert refund.created_at == utc("2026-12-02T01:50:49")


# -- customers: protected meta is dropped ----------------------------------------------


def test_the_customer_record_keeps_no_underscore_meta(wc11, make, http):
    """After aftercare 0.1 'set' consent and tags under _aftercare_*: nothing is there."""
    record = wc11("rest_customer_with_aftercare_meta.json")
    assert not [m for m in record["meta_data"] if m["key"].startswith("_aftercare")]
    dropped = wc11("rest_customer_put_protected_meta_dropped.json")
    sent = {m["key"] for m in dropped["request"]["meta_data"]}
    kept = {m["key"] for m in dropped["response"]["meta_data"]}
    assert sent - kept == {"_aftercare_tags"} and "aftercare_tags" in kept


def test_a_tag_the_shop_kept_is_done_and_one_it_dropped_fails_with_the_reason(wc11, make, http):
    adapter = make()
    dropped = wc11("rest_customer_put_protected_meta_dropped.json")
    http.get(f"{API}/customers/2", json=wc11("rest_customer_with_aftercare_meta.json"))
    http.put(f"{API}/customers/2", json=dropped["response"])  # what the real shop answered
    adapter.tag_customer(Customer(email="alice.walker@example.com", platform_id="2"), ["probe-plain"])
    assert json.loads(http.calls[1].request.body) == {"meta_data": [{"key": "aftercare_tags", "value": "probe-plain"}]}

    http.put(f"{API}/customers/2", json=dropped["response"])
    with pytest.raises(PlatformError) as caught:
        adapter.set_marketing_consent(
            Customer(email="alice.walker@example.com", platform_id="2"), ConsentState.SUBSCRIBED, "double opt-in"
        )
    assert "did not keep customer meta 'aftercare_marketing_consent'" in caught.value.message
    assert not caught.value.transient


@pytest.mark.parametrize("key", ["consent_meta_key", "tags_meta_key"])
def test_a_customer_meta_key_with_a_leading_underscore_is_refused(key):
    with pytest.raises(ValidationError) as caught:
        WooCommerceSettings(url=SHOP, consumer_key="ck", consumer_secret=SecretStr("cs"), **{key: "_aftercare_x"})
    (error,) = caught.value.errors()
    assert error["loc"] == (key,)
    assert error["msg"].endswith("WooCommerce silently drops protected customer meta; use 'aftercare_x'")


def test_the_old_default_key_is_refused_with_the_way_forward():
    with pytest.raises(ValidationError) as caught:
        WooCommerceSettings(
            url=SHOP, consumer_key="ck", consumer_secret=SecretStr("cs"), tags_meta_key="_aftercare_tags"
        )
    assert caught.value.errors()[0]["msg"].endswith(
        "use 'aftercare_tags' (orders written under the old key are still read)"
    )


def test_consent_is_read_from_the_customer_record_on_their_next_order(wc11, make, http):
    adapter = make()
    record = wc11("rest_customer_with_aftercare_meta.json")
    consent = {"state": "subscribed", "at": "2026-12-02T01:52:00+00:00", "source": "double opt-in"}
    record["meta_data"].append({"id": 201, "key": "aftercare_marketing_consent", "value": consent})
    (paid,) = wc11("webhook_order_updated_paid.json")
    http.get(f"{API}/orders/14", json=paid["body_json"])
    http.get(f"{API}/customers/2", json=record)
    order = adapter.fetch_order("14")
    assert order.customer.platform_id == "2" and order.customer.marketing_consent is ConsentState.SUBSCRIBED


@pytest.mark.parametrize(
    ("settings", "value", "birthday"),
    [
        ({"birthday_meta_key": "billing_birth_date"}, "1990-03-15", date(1990, 3, 15)),
        ({"birthday_meta_key": "billing_birth_date"}, "15/03/1990", None),  # day or month first: not guessed
        ({"birthday_meta_key": "billing_birth_date"}, None, None),  # the customer has no such meta
        ({}, "1990-03-15", None),  # no key named: nothing is read
    ],
)
def test_a_birthday_is_read_from_the_customer_meta_the_settings_name(wc11, make, http, settings, value, birthday):
    record = wc11("rest_customer_with_aftercare_meta.json")
    if value is not None:
        record["meta_data"].append({"id": 202, "key": "billing_birth_date", "value": value})
    (paid,) = wc11("webhook_order_updated_paid.json")
    http.get(f"{API}/orders/14", json=paid["body_json"])
    http.get(f"{API}/customers/2", json=record)
    assert make(**settings).fetch_order("14").customer.birthday == birthday


def test_the_birthday_meta_key_must_not_be_protected_meta(make):
    with pytest.raises(ValidationError, match="starts with '_'"):
        make(birthday_meta_key="_birth_date")


def test_a_guests_consent_under_the_old_key_on_the_order_still_counts(wc11, make):
    (delivered,) = wc11("webhook_order_updated_custom_status_delivered.json")
    payload = copy.deepcopy(delivered["body_json"])
    payload["meta_data"].append({"id": 9, "key": "_aftercare_marketing_consent", "value": {"state": "unsubscribed"}})
    assert make().parse_order(payload).customer.marketing_consent is ConsentState.UNSUBSCRIBED


# -- notes ---------------------------------------------------------------------------


def test_the_notes_aftercare_wrote_are_private(wc11, make, http):
    notes = wc11("rest_order_notes.json")
    ours = [n for n in notes if n["note"].startswith("Return order-16-return requested")]
    assert [n["customer_note"] for n in ours] == [False]
    http.post(f"{API}/orders/16/notes", status=201, json=ours[0])
    make().add_order_note("16", ours[0]["note"])
    assert json.loads(http.calls[0].request.body) == {"note": ours[0]["note"], "customer_note": False}
