"""Contract tests: every Shopify fixture mapped to core models and events, field by field."""

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aftercare.models import (
    ConsentState,
    EventKind,
    FinancialStatus,
    FulfillmentStatus,
    Money,
    ShipmentStatus,
)
from aftercare.platform import PayloadError, WebhookDelivery

from .shopify_support import headers_for


def deliver(adapter, topic, payload, **headers):
    body = json.dumps(payload).encode()
    delivery = adapter.verify_webhook(headers_for(body, topic, **headers), body)
    return adapter.parse_webhook(delivery)


def utc(*args):
    return datetime(*args, tzinfo=UTC)


def test_rest_order_450789469(adapter, load):
    order = adapter.parse_order(load("rest_order_450789469_get.json")["order"])
    assert (order.platform, order.shop_id, order.platform_id, order.number) == (
        "shopify",
        "acme",
        "450789469",
        "#1001",
    )
    assert order.created_at == utc(2008, 1, 10, 16, 0) == order.updated_at
    assert order.total == Money(Decimal("598.94"), "USD")
    assert order.subtotal == Money(Decimal("597.00"), "USD")
    assert order.financial_status is FinancialStatus.PARTIALLY_REFUNDED
    assert order.fulfillment_status is FulfillmentStatus.UNFULFILLED  # null in REST
    assert order.customer.email == "bob.norman@mail.example.com"
    assert (order.customer.first_name, order.customer.last_name) == ("Bob", "Norman")
    assert order.customer.platform_id == "207119551"
    assert order.customer.marketing_consent is ConsentState.NOT_SUBSCRIBED
    assert order.customer.sms_consent is ConsentState.NOT_SUBSCRIBED  # its own sms_marketing_consent
    assert order.locale == order.customer.locale == ""  # customer_locale is null
    assert [line.platform_id for line in order.lines] == ["466157049", "518995019", "703073504"]
    first = order.lines[0]
    assert (first.title, first.quantity, first.sku) == ("IPod Nano - 8gb", 1, "IPOD2008GREEN")
    assert first.unit_price == Money(Decimal("199.00"), "USD")
    assert (first.product_id, first.variant_id) == ("632910392", "39072856")
    (shipment,) = order.shipments
    assert shipment.platform_id == "255858046"
    assert (shipment.carrier, shipment.tracking_number) == ("USPS", "1Z1234512345123456")
    assert shipment.tracking_url.startswith("https://tools.usps.com/")
    assert shipment.status is ShipmentStatus.FAILURE  # fulfillment status "failure"
    assert shipment.shipped_at == utc(2025, 4, 2, 16, 29, 59)
    assert shipment.line_item_ids == ("466157049",)
    (refund,) = order.refunds
    assert refund.platform_id == "509562969"
    assert refund.amount == Money(Decimal("209.00"), "USD")
    assert refund.reason == "it broke during shipping"
    assert refund.line_item_ids == ("703073504", "466157049")
    assert order.shipping_address.city == "Louisville"
    assert order.shipping_address.country_code == "US"
    assert order.tags == ()
    assert order.discount_codes == ("TENOFF",)
    assert order.test is False and order.cancelled_at is None


def test_orders_paid_webhook(adapter, load):
    payload = load("rest_order_paid_fulfilled_create.json")["order"]
    (event,) = deliver(adapter, "orders/paid", payload)
    assert event.kind is EventKind.ORDER_PAID
    assert event.dedupe_key == "order:1073459970:paid"  # as polling keys it
    assert (event.topic, event.source, event.shop_id) == ("orders/paid", "webhook", "acme")
    assert event.occurred_at == utc(2025, 4, 2, 16, 31, 2)
    order = event.order
    assert order.platform_id == "1073459970"
    assert order.financial_status is FinancialStatus.PAID
    assert order.fulfillment_status is FulfillmentStatus.FULFILLED
    assert order.customer.email == "foo@example.com"
    assert order.customer.first_name == ""  # null
    (shipment,) = order.shipments
    assert shipment.carrier == "" and shipment.status is ShipmentStatus.UNKNOWN


def test_third_party_orders_create_has_locale_and_currency(adapter, load):
    order = adapter.parse_order(load("orders_create_paid_thirdparty_yellowai.json"))
    assert order.platform_id == "5159806763157"
    assert order.locale == order.customer.locale == "en-IN"
    assert order.total == Money(Decimal("30.00"), "INR")
    assert order.created_at == utc(2023, 9, 22, 12, 14, 46)
    assert order.test is True
    assert order.lines[0].unit_price.currency == "INR"
    assert order.shipping_address.country_code == "IN"


def test_rounded_ids_of_the_test_notification_are_repaired(adapter, load):
    """The JSON ids went through a JS float; the gid strings kept the real ones."""
    payload = load("orders_test_notification_sample_thirdparty_yellowai.json")
    assert payload["id"] == 820982911946154500  # the published, rounded number
    (event,) = deliver(adapter, "orders/cancelled", payload)
    order = event.order
    assert order.platform_id == "820982911946154508"
    assert order.customer.platform_id == "115310627314723954"
    assert order.lines[0].platform_id == "866550311766439020"
    assert event.kind is EventKind.ORDER_CANCELLED
    assert event.occurred_at == order.cancelled_at == utc(2022, 1, 1, 0, 0)
    assert order.financial_status is FinancialStatus.VOIDED
    assert order.fulfillment_status is FulfillmentStatus.UNFULFILLED  # "pending"
    assert order.locale == "en"


def test_big_ids_stay_exact_without_gid(adapter, load):
    payload = load("orders_create_paid_thirdparty_yellowai.json")
    payload.pop("admin_graphql_api_id")
    payload["id"] = 820982911946154508
    assert adapter.parse_order(payload).platform_id == "820982911946154508"


def test_fulfillment_with_tracking_is_shipped(adapter, load):
    payload = load("rest_fulfillment_with_tracking.json")["fulfillment"]
    (event,) = deliver(adapter, "fulfillments/create", payload)
    assert event.kind is EventKind.SHIPPED
    shipment = event.shipment
    assert shipment.platform_id == "1069019871"
    assert (shipment.carrier, shipment.tracking_number) == ("UPS", "1Z001985YW99744790")
    assert shipment.tracking_url.startswith("https://www.ups.com/")
    assert shipment.shipped_at == event.occurred_at == utc(2025, 4, 2, 16, 38, 40)
    assert shipment.line_item_ids == ("1071823210",)
    order = event.order
    assert (order.platform_id, order.number, order.shop_id) == ("450789469", "#1001", "acme")
    assert order.total == Money(Decimal(0), "USD")  # unknown amount, currency from price_set
    assert order.financial_status is FinancialStatus.UNKNOWN
    assert order.customer.email == ""
    assert order.shipments == (shipment,)
    assert adapter.state.get("delivery_watch") == {"450789469": "2025-05-01T12:00:00+00:00"}


def test_fulfillment_without_tracking_is_not_shipped(adapter, load):
    payload = load("rest_order_paid_fulfilled_create.json")["order"]["fulfillments"][0]
    assert deliver(adapter, "fulfillments/create", payload) == []


def test_fulfillment_update(adapter, load):
    payload = load("rest_fulfillment_update_tracking.json")["fulfillment"]
    assert deliver(adapter, "fulfillments/update", payload) == []  # shipment_status null
    payload["shipment_status"] = "delivered"  # synthetic: no official delivered sample
    (event,) = deliver(adapter, "fulfillments/update", payload)
    assert event.kind is EventKind.DELIVERED
    assert event.shipment.status is ShipmentStatus.DELIVERED
    assert event.shipment.delivered_at == utc(2025, 4, 2, 16, 38, 39)


def test_fulfillment_event(adapter, load):
    payload = load("rest_fulfillment_event.json")["fulfillment_event"]
    assert deliver(adapter, "fulfillment_events/create", payload) == []  # in_transit
    payload["status"] = "delivered"  # synthetic, as SOURCES.md suggests
    (event,) = deliver(adapter, "fulfillment_events/create", payload)
    assert event.kind is EventKind.DELIVERED
    assert event.shipment.platform_id == "255858046"
    assert event.occurred_at == event.shipment.delivered_at == utc(2025, 4, 2, 16, 39, 28)
    assert event.order.platform_id == "450789469"


def test_refund_created(adapter, load):
    (event,) = deliver(adapter, "refunds/create", load("rest_refund_get.json")["refund"])
    assert event.kind is EventKind.REFUNDED
    assert event.refund.platform_id == "509562969"
    assert event.refund.amount == Money(Decimal("209.00"), "USD")
    assert event.refund.line_item_ids == ("703073504", "466157049")
    assert event.occurred_at == utc(2025, 4, 2, 16, 38, 15)
    assert event.order.platform_id == "450789469"
    assert event.order.refunds == (event.refund,)


def test_return_requested(adapter, load):
    (event,) = deliver(adapter, "returns/request", load("returns_request_thirdparty_yellowai.json"))
    assert event.kind is EventKind.RETURN_REQUESTED
    request = event.return_request
    assert (request.platform_id, request.status, request.reason) == (
        "3547267221",
        "requested",
        "unwanted",
    )
    assert request.line_item_ids == ("12695210000533",)
    assert request.requested_at == event.occurred_at == utc(2025, 4, 2, 16, 40, 0, 123456)
    assert (event.order.platform_id, event.order.number) == ("5196695273621", "#1106")
    assert event.order.customer.email == "andrew@gmail.com"
    assert event.order.customer.platform_id == "7029431102139"


def test_other_topics_give_no_event(adapter, load):
    assert (
        deliver(adapter, "orders/updated", load("rest_order_paid_fulfilled_create.json")["order"])
        == []
    )
    assert deliver(adapter, "customers/update", load("rest_customer_get.json")["customer"]) == []


def test_missing_field_names_topic_and_path(adapter, load):
    payload = load("rest_order_paid_fulfilled_create.json")["order"]
    del payload["line_items"][0]["price"]
    with pytest.raises(PayloadError) as caught:
        deliver(adapter, "orders/paid", payload)
    assert str(caught.value) == "orders/paid: field 'line_items[0].price' is missing"


def test_body_that_is_not_json(adapter):
    delivery = WebhookDelivery("acme", "orders/paid", "d1", b"not json")
    with pytest.raises(PayloadError, match="is not JSON"):
        adapter.parse_webhook(delivery)


# -- hypothesis: mutilated payloads map or raise PayloadError, nothing else ---------------

FIXTURES = {
    "orders/paid": ("rest_order_450789469_get.json", "order"),
    "orders/cancelled": ("orders_test_notification_sample_thirdparty_yellowai.json", None),
    "fulfillments/create": ("rest_fulfillment_with_tracking.json", "fulfillment"),
    "fulfillments/update": ("rest_fulfillment_update_tracking.json", "fulfillment"),
    "fulfillment_events/create": ("rest_fulfillment_event.json", "fulfillment_event"),
    "refunds/create": ("rest_refund_get.json", "refund"),
    "returns/request": ("returns_request_thirdparty_yellowai.json", None),
}

junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=8),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value[:2]):
            yield from _paths(child, (*prefix, index))


def _mutate(payload, path, action, replacement):
    if not path:
        return replacement
    parent = payload
    for step in path[:-1]:
        parent = parent[step]
    if action == "delete" and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = replacement
    return payload


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_mutilated_payloads_map_or_raise_payload_error(adapter, shopify_dir, data):
    topic = data.draw(st.sampled_from(sorted(FIXTURES)))
    name, key = FIXTURES[topic]
    payload = json.loads((shopify_dir / name).read_text())
    payload = payload[key] if key else payload
    for _ in range(data.draw(st.integers(1, 3))):
        paths = list(_paths(payload))
        path = data.draw(st.sampled_from(paths))
        payload = _mutate(
            payload, path, data.draw(st.sampled_from(["delete", "replace"])), data.draw(junk)
        )
    delivery = WebhookDelivery("acme", topic, "d1", json.dumps(payload).encode())
    try:
        events = adapter.parse_webhook(delivery)
    except PayloadError as exc:
        assert exc.topic == topic
    else:
        assert all(event.order.shop_id == "acme" and event.order.platform_id for event in events)


def test_sms_consent_is_read_apart_from_email_consent(adapter, load):
    payload = load("rest_order_450789469_get.json")["order"]
    payload["customer"]["sms_marketing_consent"] = {"state": "subscribed", "opt_in_level": "confirmed_opt_in"}
    customer = adapter.parse_order(payload).customer
    assert (customer.sms_consent, customer.marketing_consent) == (ConsentState.SUBSCRIBED, ConsentState.NOT_SUBSCRIBED)
    payload["customer"]["sms_marketing_consent"] = None  # no phone on the customer: Shopify sends null
    assert adapter.parse_order(payload).customer.sms_consent is ConsentState.UNKNOWN
