"""Both sandboxes keep a customer's birthday where their platform does, and the adapters read it
only from the field their settings name: a Shopify customer metafield, a WooCommerce customer meta key."""

from __future__ import annotations

import json
from datetime import date

import pytest
from pydantic import SecretStr

from aftercare.adapters.shopify import ShopifyAdapter, ShopifySettings
from aftercare.adapters.woocommerce import WooCommerceAdapter, WooCommerceSettings
from aftercare.clock import SystemClock
from aftercare.platform import MemoryShopState, ShopInfo
from aftercare.sandbox.state import MoveError

RECORDED_CUSTOMER = "rest_customer_with_aftercare_meta.json"


def shopify_adapter(shop, **settings) -> ShopifyAdapter:
    return ShopifyAdapter(
        ShopInfo(id="sandbox", webhook_secret=SecretStr(shop.secret)),
        ShopifySettings(**{**shop.adapter_settings(), **settings}),
        MemoryShopState(),
        SystemClock().now,
        sleep=lambda seconds: None,
    )


def woocommerce_adapter(shop, **settings) -> WooCommerceAdapter:
    return WooCommerceAdapter(
        ShopInfo(id="woo", webhook_secret=SecretStr(shop.default_secret)),
        WooCommerceSettings(**{**shop.adapter_settings(), "max_retries": 0, **settings}),
        MemoryShopState(),
        SystemClock().now,
        sleep=lambda seconds: None,
    )


def test_shopify_keeps_a_date_metafield_and_the_order_query_reads_the_one_named(sandbox_shopify):
    shop = sandbox_shopify
    order = shop.create_order()
    shop.set_birthday(order.customer_id, "1990-03-15", field="facts.birth_date")
    (metafield,) = shop.state.customers[order.customer_id].metafields
    assert (metafield["namespace"], metafield["key"], metafield["type"]) == ("facts", "birth_date", "date")

    named = shopify_adapter(shop, birthday_metafield="facts.birth_date")
    assert named.fetch_order(str(order.id)).customer.birthday == date(1990, 3, 15)
    (batch,) = [b for b in named.poll(None) if b.events]
    assert {event.order.customer.birthday for event in batch.events} == {date(1990, 3, 15)}
    assert shopify_adapter(shop).fetch_order(str(order.id)).customer.birthday is None  # not named: not read
    other = shopify_adapter(shop, birthday_metafield="facts.birthday")  # another metafield: the customer has none
    assert other.fetch_order(str(order.id)).customer.birthday is None


def test_woocommerce_keeps_customer_meta_shaped_as_the_recorded_record(sandbox_woocommerce, shared_fixtures):
    shop = sandbox_woocommerce
    order = shop.create_order()
    shop.set_birthday(order.customer_id, "1990-03-15", field="billing_birth_date")
    shop.set_birthday(order.customer_id, "1991-04-20", field="billing_birth_date")  # edited: one entry, new value
    record = shop.customer_json(shop.state.customers[order.customer_id])
    recorded = json.loads(
        (shared_fixtures / "woocommerce/wc-11.0.1/rest_customer_with_aftercare_meta.json").read_text()
    )
    (entry,) = [e for e in record["meta_data"] if e["key"] == "billing_birth_date"]
    assert set(entry) == set(recorded["meta_data"][0]) and entry["value"] == "1991-04-20"

    named = woocommerce_adapter(shop, birthday_meta_key="billing_birth_date")
    assert named.fetch_order(str(order.id)).customer.birthday == date(1991, 4, 20)
    assert woocommerce_adapter(shop).fetch_order(str(order.id)).customer.birthday is None


def test_a_guest_on_woocommerce_has_no_record_and_so_no_birthday(sandbox_woocommerce):
    shop = sandbox_woocommerce
    order = shop.create_order(guest=True)
    shop.set_birthday(order.customer_id, "1990-03-15", field="billing_birth_date")  # kept, but no endpoint shows it
    named = woocommerce_adapter(shop, birthday_meta_key="billing_birth_date")
    assert named.fetch_order(str(order.id)).customer.birthday is None


@pytest.mark.parametrize("platform", ["shopify", "woocommerce"])
def test_the_shops_birthday_field_is_the_default_and_tells_the_adapter(request, platform):
    shop = request.getfixturevalue(f"sandbox_{platform}")
    with pytest.raises(MoveError, match="no field for the birthday"):
        shop.set_birthday(1, "1990-03-15")
    key = "birthday_metafield" if platform == "shopify" else "birthday_meta_key"
    assert key not in shop.adapter_settings()
    shop.birthday_field = "facts.birth_date" if platform == "shopify" else "billing_birth_date"
    assert shop.adapter_settings()[key] == shop.birthday_field
    order = shop.create_order()
    shop.set_birthday(order.customer_id, "2000-02-29")
    adapter = shopify_adapter(shop) if platform == "shopify" else woocommerce_adapter(shop)
    assert adapter.fetch_order(str(order.id)).customer.birthday == date(2000, 2, 29)
