"""Contract tests: the official WooCommerce REST payloads mapped to core models
field by field, and random or mutilated payloads giving a mapping or a
PayloadError, never anything else."""

from __future__ import annotations

import contextlib
import copy
import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aftercare.adapters.woocommerce import WooCommerceSettings
from aftercare.adapters.woocommerce.mapping import OrderMapper, tracking_shipment
from aftercare.models import (
    Address,
    ConsentState,
    FinancialStatus,
    FulfillmentStatus,
    Money,
    ShipmentStatus,
)
from aftercare.platform import PayloadError, WebhookDelivery


def test_order_retrieve_maps_field_by_field(adapter, wc_fixtures):
    order = adapter.parse_order(wc_fixtures("order_retrieve.json"))

    assert (order.platform, order.shop_id, order.platform_id, order.number) == (
        "woocommerce",
        "wc1",
        "727",
        "727",
    )
    assert order.created_at == datetime(2017, 3, 22, 19, 28, 2, tzinfo=UTC)
    assert order.updated_at == datetime(2017, 3, 22, 19, 28, 8, tzinfo=UTC)
    assert order.total == Money(Decimal("29.35"), "USD")
    assert order.subtotal == Money(Decimal("18.00"), "USD")
    assert order.financial_status is FinancialStatus.PAID
    assert order.fulfillment_status is FulfillmentStatus.UNFULFILLED
    assert order.customer.email == "john.doe@example.com"
    assert (order.customer.first_name, order.customer.last_name) == ("John", "Doe")
    assert order.customer.platform_id == ""  # customer_id 0: a guest
    assert order.customer.locale == "" and order.locale == ""
    assert order.customer.marketing_consent is ConsentState.UNKNOWN
    assert order.shipping_address == Address(
        first_name="John",
        last_name="Doe",
        address1="969 Market",
        city="San Francisco",
        province="CA",
        zip="94103",
        country_code="US",
        phone="(555) 555-5555",
    )
    single, variant = order.lines
    assert (single.platform_id, single.title, single.quantity) == ("315", "Woo Single #1", 2)
    assert single.unit_price == Money(Decimal("3.00"), "USD")
    assert (single.product_id, single.variant_id, single.sku) == ("93", "", "")
    assert variant.title == "Ship Your Idea \u2013 Color: Black, Size: M Test"  # &ndash; decoded
    assert variant.unit_price == Money(Decimal("12.00"), "USD")
    assert (variant.product_id, variant.variant_id, variant.sku) == ("22", "23", "Bar3")
    assert order.shipments == order.refunds == order.returns == ()
    assert order.cancelled_at is None and order.tags == ()
    assert order.discount_codes == ()  # its coupon_lines is empty


def test_coupon_lines_give_the_discount_codes(adapter, wc_fixtures):
    """The order fixture with the coupon of coupon_retrieve.json applied, in the REST coupon_lines shape."""
    payload = wc_fixtures("order_retrieve.json")
    code = wc_fixtures("coupon_retrieve.json")["code"]
    payload["coupon_lines"] = [
        {"id": 728, "code": code, "discount": "10.00", "discount_tax": "0.00", "meta_data": []}
    ]
    assert adapter.parse_order(payload).discount_codes == (code,)
    payload["coupon_lines"] = [{"id": 728, "discount": "10.00"}]
    with pytest.raises(PayloadError, match="coupon_lines\\[0\\].code"):
        adapter.parse_order(payload)


def test_completed_order_counts_as_one_parcel_by_default(adapter, wc_fixtures):
    order = adapter.parse_order(wc_fixtures("order_update_completed.json"))
    assert order.fulfillment_status is FulfillmentStatus.FULFILLED
    (shipment,) = order.shipments
    assert shipment.platform_id == "order-727"
    assert shipment.shipped_at == datetime(2017, 3, 22, 19, 30, 35, tzinfo=UTC)


def test_completed_is_not_shipped_when_the_setting_says_so(make_adapter, wc_fixtures):
    adapter = make_adapter(shipped_statuses=())
    assert adapter.parse_order(wc_fixtures("order_update_completed.json")).shipments == ()


def test_tracking_item_rest_shape(wc_fixtures):
    shipment = tracking_shipment(wc_fixtures("shipment_tracking_item.json"), 0)
    assert shipment.platform_id == "7f4978c390ee633c6294ae0f258656f9"
    assert shipment.carrier == "USPS"
    assert shipment.tracking_number == "9400111899560000000000"
    assert shipment.tracking_url == "https://tools.usps.com/tracking/9400111899560000000000"
    assert shipment.shipped_at == datetime(2026, 7, 10, tzinfo=UTC)
    assert shipment.status is ShipmentStatus.UNKNOWN


def test_tracking_items_from_order_meta(adapter, lifecycle):
    (shipment,) = adapter.parse_order(lifecycle["tracked"]).shipments
    assert shipment.platform_id == "7f4978c390ee633c6294ae0f258656f9"
    assert (shipment.carrier, shipment.tracking_number) == ("usps", "9400111899560000000000")
    assert shipment.shipped_at == datetime(2026, 7, 10, tzinfo=UTC)


def test_custom_provider_and_trackship_status(adapter, lifecycle, with_meta):
    order = copy.deepcopy(lifecycle["tracked"])
    items = [dict(m["value"][0]) for m in order["meta_data"] if m["key"] == "_wc_shipment_tracking_items"]
    items[0].update(custom_tracking_provider="Local Courier", custom_tracking_link="https://t.example/1")
    order = with_meta(order, "_wc_shipment_tracking_items", items)
    order = with_meta(order, "shipment_status", [{"status": "delivered", "status_date": "2026-07-12 10:00:00"}])
    (shipment,) = adapter.parse_order(order).shipments
    assert (shipment.carrier, shipment.tracking_url) == ("Local Courier", "https://t.example/1")
    assert shipment.status is ShipmentStatus.DELIVERED
    assert shipment.delivered_at == datetime(2026, 7, 12, 10, tzinfo=UTC)


def test_refund_summary_in_order(adapter, lifecycle, wc_fixtures):
    refund_doc = wc_fixtures("order_refund_retrieve.json")
    order = adapter.parse_order(lifecycle["refunded"])
    (refund,) = order.refunds
    assert refund.platform_id == str(refund_doc["id"])
    assert refund.amount == Money(Decimal(refund_doc["amount"]), "USD")
    assert refund.created_at == datetime(2017, 3, 21, 20, 7, 11, tzinfo=UTC)
    assert order.financial_status is FinancialStatus.PARTIALLY_REFUNDED
    assert order.is_refunded


def test_locale_tags_and_consent_from_meta(adapter, wc_fixtures, with_meta):
    order = with_meta(wc_fixtures("order_retrieve.json"), "wpml_language", "de")
    order = with_meta(order, "_aftercare_tags", "vip, repeat", meta_id=20001)
    order = with_meta(
        order,
        "_aftercare_marketing_consent",
        {"state": "subscribed", "at": "2026-07-01T10:00:00+00:00", "source": "optin"},
        meta_id=20002,
    )
    mapped = adapter.parse_order(order)
    assert mapped.locale == mapped.customer.locale == "de"
    assert mapped.tags == ("vip", "repeat")
    assert mapped.customer.marketing_consent is ConsentState.SUBSCRIBED


def test_locale_meta_key_is_configurable(make_adapter, wc_fixtures, with_meta):
    adapter = make_adapter(locale_meta_key="pll_language")
    order = with_meta(wc_fixtures("order_retrieve.json"), "pll_language", "fr")
    assert adapter.parse_order(order).locale == "fr"


def test_cancelled_order(adapter, wc_fixtures):
    order = wc_fixtures("order_retrieve.json") | {"status": "cancelled"}
    mapped = adapter.parse_order(order)
    assert mapped.cancelled_at == mapped.updated_at
    assert mapped.is_cancelled


def test_registered_customer_id(adapter, wc_fixtures):
    order = wc_fixtures("order_retrieve.json") | {"customer_id": 25}
    assert adapter.parse_order(order).customer.platform_id == "25"


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda o: o.pop("id"), "id"),
        (lambda o: o.pop("currency"), "currency"),
        (lambda o: o.pop("date_created_gmt"), "date_created_gmt"),
        (lambda o: o.update(total="lots"), "total"),
        (lambda o: o.update(date_created_gmt="yesterday"), "date_created_gmt"),
        (lambda o: o["line_items"][1].pop("quantity"), "line_items[1].quantity"),
        (lambda o: o.update(billing="john"), "billing"),
        (lambda o: o["refunds"].append({"total": "-1.00"}), "refunds[0].id"),
    ],
)
def test_missing_or_bad_field_names_its_path(adapter, wc_fixtures, mutate, field):
    order = wc_fixtures("order_retrieve.json")
    mutate(order)
    with pytest.raises(PayloadError) as caught:
        adapter.parse_order(order)
    assert caught.value.field == field


def test_webhook_body_errors_name_the_topic(adapter):
    delivery = WebhookDelivery(shop_id="wc1", topic="order.updated", delivery_id="d", body=b"<html>")
    with pytest.raises(PayloadError, match="order.updated: field '<body>' is not JSON"):
        adapter.parse_webhook(delivery)


# -- property tests -------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)


def _paths(value, prefix=()):
    """Every (container, key) inside a decoded JSON document."""
    if isinstance(value, dict):
        for key, child in value.items():
            yield value, key
            yield from _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield value, index
            yield from _paths(child, (*prefix, index))


@st.composite
def mutilated_orders(draw, base):
    order = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 4))):
        spots = list(_paths(order))
        container, key = spots[draw(st.integers(0, len(spots) - 1))]
        if draw(st.booleans()):
            del container[key]
        else:
            container[key] = draw(json_values)
    return order


FIXTURE_ORDERS = ["order_retrieve.json", "order_update_completed.json"]


@pytest.mark.parametrize("name", FIXTURE_ORDERS)
def test_mutilated_orders_map_or_raise_payload_error(shared_fixtures, make_adapter, name):
    base = json.loads((shared_fixtures / "woocommerce" / name).read_text())
    base["meta_data"].append(
        {
            "key": "_wc_shipment_tracking_items",
            "value": [{"tracking_id": "t1", "tracking_number": "1Z", "date_shipped": "1752105600"}],
        }
    )
    base["refunds"] = [{"id": 726, "reason": "", "total": "-10.00"}]

    @given(mutilated_orders(base))
    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    def check(order):
        adapter = make_adapter()
        body = json.dumps(order).encode()
        delivery = WebhookDelivery(shop_id="wc1", topic="order.updated", delivery_id="d", body=body)
        with contextlib.suppress(PayloadError):
            adapter.parse_webhook(delivery)
            adapter.parse_webhook(delivery)  # and again, against the state the first one left

    check()


ORDER_KEYS = [
    "id",
    "number",
    "status",
    "currency",
    "total",
    "date_created_gmt",
    "date_modified_gmt",
    "date_paid_gmt",
    "customer_id",
    "billing",
    "shipping",
    "line_items",
    "refunds",
    "meta_data",
]
shaped_orders = st.dictionaries(st.sampled_from(ORDER_KEYS), json_values, max_size=len(ORDER_KEYS))


@given(json_values | shaped_orders)
@settings(max_examples=300, deadline=None)
def test_random_documents_map_or_raise_payload_error(document):
    settings_ = WooCommerceSettings(url="https://s.example", consumer_key="k", consumer_secret="s")
    with contextlib.suppress(PayloadError):
        OrderMapper("wc1", settings_).order(document)
