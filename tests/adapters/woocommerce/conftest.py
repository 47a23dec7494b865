"""Fixtures for the WooCommerce adapter: a shop on https://shop.example, the real
REST payloads from ../shared/fixtures/woocommerce, and helpers to sign
deliveries and build later states of an order from copies of them."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from aftercare.adapters.woocommerce import WooCommerceAdapter, WooCommerceSettings
from aftercare.adapters.woocommerce.webhooks import sign
from aftercare.clock import ManualClock
from aftercare.platform import MemoryShopState, ShopInfo

SHOP_URL = "https://shop.example"
SECRET = "whsec-test-&-secret"
API = f"{SHOP_URL}/wp-json/wc/v3"


@pytest.fixture
def wc_fixtures(shared_fixtures: Path) -> Callable[[str], Any]:
    def load(name: str) -> Any:
        return json.loads((shared_fixtures / "woocommerce" / name).read_text())

    return load


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 7, 12, 9, 0, tzinfo=UTC))


@pytest.fixture
def sleeps() -> list[float]:
    """Every wait the client asked for; nothing really sleeps."""
    return []


@pytest.fixture
def make_adapter(clock: ManualClock, sleeps: list[float]) -> Callable[..., WooCommerceAdapter]:
    def make(state: MemoryShopState | None = None, **overrides: Any) -> WooCommerceAdapter:
        settings = WooCommerceSettings(
            url=SHOP_URL,
            consumer_key="ck_test",
            consumer_secret=SecretStr("cs_test"),
            **overrides,
        )
        return WooCommerceAdapter(
            ShopInfo(id="wc1", webhook_secret=SecretStr(SECRET)),
            settings,
            state if state is not None else MemoryShopState(),
            clock.now,
            sleep=sleeps.append,
            jitter=lambda: 0.5,
        )

    return make


@pytest.fixture
def adapter(make_adapter: Callable[..., WooCommerceAdapter]) -> WooCommerceAdapter:
    return make_adapter()


def delivery_headers(body: bytes, topic: str = "order.updated", **overrides: str) -> dict[str, str]:
    resource, _, event = topic.partition(".")
    headers = {
        "X-WC-Webhook-Source": f"{SHOP_URL}/",
        "X-WC-Webhook-Topic": topic,
        "X-WC-Webhook-Resource": resource,
        "X-WC-Webhook-Event": event,
        "X-WC-Webhook-Signature": sign(SECRET, body),
        "X-WC-Webhook-ID": "142",
        "X-WC-Webhook-Delivery-ID": "5f2b6c1e0d8a",
        "Content-Type": "application/json",
    }
    headers.update(overrides)
    return headers


@pytest.fixture
def deliver(adapter: WooCommerceAdapter):
    """Sign ``payload`` as WooCommerce would, verify it and parse it."""

    def send(payload: Any, topic: str = "order.updated", target: WooCommerceAdapter | None = None):
        target = target or adapter
        body = json.dumps(payload).encode()
        delivery = target.verify_webhook(delivery_headers(body, topic), body)
        return target.parse_webhook(delivery)

    return send


def with_meta(order: dict, key: str, value: Any, meta_id: int = 20000) -> dict:
    """A copy of ``order`` with one meta entry set (replacing one of that key)."""
    changed = copy.deepcopy(order)
    changed["meta_data"] = [m for m in changed["meta_data"] if m["key"] != key]
    changed["meta_data"].append({"id": meta_id, "key": key, "value": value})
    return changed


def tracking_meta(tracking_item: dict) -> list[dict]:
    """The official extension's REST item in its order-meta storage shape."""
    shipped = datetime.fromisoformat(tracking_item["date_shipped"]).replace(tzinfo=UTC)
    return [
        {
            "tracking_provider": tracking_item["tracking_provider"].lower(),
            "custom_tracking_provider": "",
            "custom_tracking_link": "",
            "tracking_number": tracking_item["tracking_number"],
            "date_shipped": str(int(shipped.timestamp())),
            "tracking_id": tracking_item["tracking_id"],
        }
    ]


@pytest.fixture
def lifecycle(wc_fixtures) -> dict[str, dict]:
    """One order's states, built from the official payloads: processing (as
    retrieved), tracking added, completed (the official update), refunded."""
    processing = wc_fixtures("order_retrieve.json")
    completed = wc_fixtures("order_update_completed.json")
    refund = wc_fixtures("order_refund_retrieve.json")
    items = tracking_meta(wc_fixtures("shipment_tracking_item.json"))

    tracked = with_meta(processing, "_wc_shipment_tracking_items", items)
    tracked["date_modified_gmt"] = "2017-03-22T19:29:00"
    completed = with_meta(completed, "_wc_shipment_tracking_items", items)
    refunded = copy.deepcopy(completed)
    refunded["refunds"] = [{"id": refund["id"], "reason": refund["reason"], "total": f"-{refund['amount']}"}]
    refunded["date_modified_gmt"] = refund["date_created_gmt"]
    return {
        "processing": processing,
        "tracked": tracked,
        "completed": completed,
        "refunded": refunded,
    }


@pytest.fixture(name="signed_headers")
def _signed_headers() -> Callable[..., dict[str, str]]:
    return delivery_headers


@pytest.fixture(name="with_meta")
def _with_meta() -> Callable[..., dict]:
    return with_meta
