"""A Shopify and a WooCommerce shop configured in an app, signed deliveries for them, and
the real payloads of ../shared/fixtures and the packaged samples, for tests that go through
the receiver or feed every mapper (tests/fuzz, tests/adapters/test_bad_values.py)."""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from typing import Any

from aftercare.adapters.shopify.webhooks import signature as shopify_signature
from aftercare.adapters.woocommerce.webhooks import sign as woocommerce_signature

REPO = Path(__file__).resolve().parents[2]
SHARED_FIXTURES = REPO.parent / "shared" / "fixtures"
SAMPLES = REPO / "src" / "aftercare" / "samples"

SECRET = "fuzz-webhook-secret"
SHOPIFY_DOMAIN = "acme.myshopify.com"
WOOCOMMERCE_URL = "https://shop.example"

#: Per platform: the shop's keys in the config (nothing answers on 127.0.0.1:9, and no
#: setting makes a mapping call the platform).
SHOPS = {
    "shopify": {
        "id": "acme", "platform": "shopify", "webhook_secret": SECRET, "shop_domain": SHOPIFY_DOMAIN,
        "access_token": "shpat_fuzz", "admin_url": "http://127.0.0.1:9",
    },
    "woocommerce": {
        "id": "wc1", "platform": "woocommerce", "webhook_secret": SECRET, "url": WOOCOMMERCE_URL,
        "consumer_key": "ck_fuzz", "consumer_secret": "cs_fuzz",
    },
}  # fmt: skip
TOPICS = {"shopify": "orders/paid", "woocommerce": "order.updated"}


def platform_app(aftercare_app: Any, platform: str, *plugins: object, **make: Any) -> Any:
    """An app whose one shop is a real ``platform`` adapter (``SHOPS[platform]``)."""
    return aftercare_app(*plugins, shop=SHOPS[platform], entry_points=True, **make)


def signed_headers(platform: str, body: bytes, topic: str | None = None, delivery: str = "d-1") -> dict[str, str]:
    """The headers a platform sends with ``body``, signed with SECRET."""
    topic = topic or TOPICS[platform]
    if platform == "shopify":
        return {
            "X-Shopify-Topic": topic, "X-Shopify-Hmac-Sha256": shopify_signature(SECRET, body),
            "X-Shopify-Shop-Domain": SHOPIFY_DOMAIN, "X-Shopify-API-Version": "2026-01",
            "X-Shopify-Webhook-Id": delivery, "X-Shopify-Triggered-At": "2026-07-01T10:00:00Z",
        }  # fmt: skip
    resource, _, event = topic.partition(".")
    return {
        "X-WC-Webhook-Topic": topic, "X-WC-Webhook-Resource": resource, "X-WC-Webhook-Event": event,
        "X-WC-Webhook-Signature": woocommerce_signature(SECRET, body), "X-WC-Webhook-Source": f"{WOOCOMMERCE_URL}/",
        "X-WC-Webhook-ID": "7", "X-WC-Webhook-Delivery-ID": delivery,
    }  # fmt: skip


def _json(path: Path) -> Any:
    return json.loads(path.read_text())


def shopify_payloads() -> list[tuple[str, dict[str, Any]]]:
    """(topic, body) of every real Shopify webhook-shaped payload."""
    shopify = SHARED_FIXTURES / "shopify"
    found = [
        ("orders/paid", _json(shopify / "orders_create_paid_thirdparty_yellowai.json")),
        ("orders/paid", _json(shopify / "orders_test_notification_sample_thirdparty_yellowai.json")),
        ("orders/paid", _json(shopify / "rest_order_450789469_get.json")["order"]),
        ("orders/cancelled", _json(shopify / "rest_order_paid_fulfilled_create.json")["order"]),
        ("fulfillments/create", _json(shopify / "rest_fulfillment_with_tracking.json")["fulfillment"]),
        ("fulfillments/update", _json(shopify / "rest_fulfillment_update_tracking.json")["fulfillment"]),
        ("fulfillment_events/create", _json(shopify / "rest_fulfillment_event.json")["fulfillment_event"]),
        ("refunds/create", _json(shopify / "rest_refund_get.json")["refund"]),
        ("returns/request", _json(shopify / "returns_request_thirdparty_yellowai.json")),
    ]
    found += [("orders/paid", _json(path)["order"]) for path in sorted(SAMPLES.glob("shopify_*.json"))]
    return found


def woocommerce_payloads() -> list[tuple[str, dict[str, Any]]]:
    """(topic, body) of every real WooCommerce order: REST reads and recorded WooCommerce 11 deliveries."""
    woo = SHARED_FIXTURES / "woocommerce"
    found = [("order.updated", _json(woo / name)) for name in ("order_retrieve.json", "order_update_completed.json")]
    wc11 = woo / "wc-11.0.1"
    found += [("order.updated", _json(path)) for path in sorted(wc11.glob("rest_order_*.json"))]
    found = [(topic, body) for topic, body in found if isinstance(body, dict) and "line_items" in body]
    for path in sorted(wc11.glob("webhook_order_*.json")):
        for delivery in _json(path):
            headers = {name.lower(): value for name, value in delivery["headers"]}
            body = json.loads(base64.b64decode(delivery["body_b64"]))
            found.append((headers.get("x-wc-webhook-topic", "order.updated"), body))
    found += [("order.updated", _json(path)) for path in sorted(SAMPLES.glob("woocommerce_*.json"))]
    return found


def payloads(platform: str) -> list[tuple[str, dict[str, Any]]]:
    """Fresh copies each call: tests mutate them."""
    return copy.deepcopy(shopify_payloads() if platform == "shopify" else woocommerce_payloads())


def adapter_for(platform: str, shop_id: str | None = None) -> Any:
    """A fresh adapter of ``platform`` for SHOPS[platform] (no app, no store: for mapping only)."""
    from datetime import UTC, datetime

    from pydantic import SecretStr

    from aftercare.adapters.shopify import ShopifyAdapter
    from aftercare.adapters.woocommerce import WooCommerceAdapter
    from aftercare.clock import ManualClock
    from aftercare.platform import MemoryShopState, ShopInfo

    cls = ShopifyAdapter if platform == "shopify" else WooCommerceAdapter
    keys = {k: v for k, v in SHOPS[platform].items() if k not in ("id", "platform", "webhook_secret")}
    info = ShopInfo(id=shop_id or SHOPS[platform]["id"], webhook_secret=SecretStr(SECRET))
    clock = ManualClock(datetime(2026, 7, 1, 10, 0, tzinfo=UTC))
    return cls(info, cls.Settings(**keys), MemoryShopState(), clock.now)


def map_delivery(adapter: Any, topic: str, body: bytes) -> list[Any]:
    """What the receiver does with a verified delivery: parse the JSON once, then map it."""
    from aftercare.platform import WebhookDelivery

    delivery = WebhookDelivery(shop_id=adapter.shop.id, topic=topic, delivery_id="d-1", body=body)
    delivery.payload  # noqa: B018 - the receiver's 400 for a body that is not JSON
    return adapter.parse_webhook(delivery)
