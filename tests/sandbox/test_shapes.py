"""The sandbox cannot drift from the platforms.

The adapters read payloads through plain mapping access. Mapping a payload
here goes through a recording copy of the JSON, so the test learns every
field path an adapter reads, from the real payloads in ../shared/fixtures and
from the sandbox's own webhook bodies of the same topics. Then:

- every field the adapter reads and the real payload carries must be in the
  sandbox's payload too, with the same JSON type;
- every field the adapter reads and the sandbox carries must exist in a real
  payload of that topic, or be named below with the reason it is optional.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from aftercare.models import EventKind
from aftercare.platform import WebhookDelivery

from .test_shopify_sandbox import adapter_for as shopify_adapter_for
from .test_woocommerce_sandbox import adapter_for as woocommerce_adapter_for

Path = tuple[str, ...]

#: Read when present; the real payloads at hand do not carry them (sandbox -> real direction).
OPTIONAL = {
    ("shopify", "fulfillments/create"): {
        ("shipment_status",): "null until a carrier reports; the fixture's fulfillment has no carrier events",
    },
    ("shopify", "orders/cancelled"): {
        ("cancelled_at",): "set on cancelled orders only; the order fixtures are not cancelled",
    },
    ("woocommerce", "order.updated"): {
        ("shipping", "phone"): "WooCommerce 5.6 added it; the REST docs' order samples are from 3.0",
    },
}
#: Real-payload fields the sandbox need not send (real -> sandbox direction).
NOT_IN_SANDBOX = {
    ("shopify", "returns/request"): {
        ("customer",): "only in the third-party returns sample (yellow.ai, unverified); Shopify's omit it",
    },
}
#: The Shipment Tracking extension's item, as its REST endpoint returns it (../shared/fixtures).
TRACKING_ITEM = ("meta_data", "[]", "value", "[]")


class RecordingDict(dict):
    """A JSON object that notes the path of every key read from it."""

    def __init__(self, data: dict, path: Path, reads: set[Path]) -> None:
        super().__init__({k: _wrap(v, (*path, k), reads) for k, v in data.items()})
        self._path, self._reads = path, reads

    def get(self, key, default=None):
        self._reads.add((*self._path, key))
        return super().get(key, default)

    def __getitem__(self, key):
        self._reads.add((*self._path, key))
        return super().__getitem__(key)

    def __contains__(self, key):
        self._reads.add((*self._path, key))
        return super().__contains__(key)


def _wrap(value: Any, path: Path, reads: set[Path]) -> Any:
    if isinstance(value, dict):
        return RecordingDict(value, path, reads)
    if isinstance(value, list):
        return [_wrap(item, (*path, "[]"), reads) for item in value]
    return value


def fields_read(adapter: Any, topic: str, body: bytes) -> set[Path]:
    """Map ``body`` as a webhook of ``topic``; return the paths the adapter read."""
    reads: set[Path] = set()
    delivery = WebhookDelivery(shop_id=adapter.shop.id, topic=topic, delivery_id="shape", body=body)
    # The adapter maps delivery.payload (parsed once, cached on the instance): hand it a recording one.
    delivery.__dict__["payload"] = _wrap(json.loads(body), (), reads)
    adapter.parse_webhook(delivery)
    return reads


def values_at(payload: Any, path: Path) -> Iterator[Any]:
    """Every value at ``path``, null included (``[]`` steps into each list item)."""
    if not path:
        yield payload
        return
    head, *rest = path
    if head == "[]":
        for item in payload if isinstance(payload, list) else ():
            yield from values_at(item, tuple(rest))
    elif isinstance(payload, dict) and head in payload:
        yield from values_at(payload[head], tuple(rest))


def json_types(payloads: list[Any], path: Path) -> set[str]:
    """The JSON types of the non-null values at ``path`` in any of ``payloads``."""
    names = {bool: "boolean", int: "number", float: "number", str: "string", dict: "object", list: "array"}
    return {names[type(v)] for p in payloads for v in values_at(p, path) if v is not None}


def comparable(payloads: list[Any], path: Path) -> bool:
    """False when a list on the way is empty in every payload: nothing there to compare."""
    for cut in range(len(path)):
        if path[cut] == "[]" and not any(isinstance(v, list) and v for p in payloads for v in values_at(p, path[:cut])):
            return False
    return True


def has_key(payloads: list[Any], path: Path) -> bool:
    return any(True for p in payloads for _ in values_at(p, path))


def check(platform: str, topic: str, real: list, real_reads: set[Path], sandbox: list, sandbox_reads: set[Path]):
    """What differs between real and sandbox payloads in the fields the adapter reads."""
    problems = []
    excused = NOT_IN_SANDBOX.get((platform, topic), {})
    for path in sorted(real_reads):
        real_types = json_types(real, path)
        if not real_types or not comparable(sandbox, path) or any(path[: len(e)] == e for e in excused):
            continue
        if not has_key(sandbox, path):
            problems.append(f"{topic}: the sandbox lacks {'.'.join(path)} ({'/'.join(sorted(real_types))})")
        elif not json_types(sandbox, path) <= real_types:
            problems.append(
                f"{topic}: {'.'.join(path)} is {json_types(sandbox, path)} in the sandbox, {real_types} for real"
            )
    allowed = OPTIONAL.get((platform, topic), {})
    for path in sorted(sandbox_reads):
        if path[: len(TRACKING_ITEM)] == TRACKING_ITEM:
            continue  # checked against the tracking extension's own fixture
        if json_types(sandbox, path) and not has_key(real, path) and path not in allowed:
            problems.append(f"{topic}: the adapter reads {'.'.join(path)}, which no real payload here carries")
    return problems


def fixture(shared_fixtures, name: str, wrapper: str | None = None) -> tuple[dict, bytes]:
    data = json.loads((shared_fixtures / name).read_text())
    data = data[wrapper] if wrapper else data
    return data, json.dumps(data).encode()


def sandbox_bodies(receiver, header: str) -> dict[str, list[dict]]:
    bodies: dict[str, list[dict]] = {}
    for delivery in receiver.received:
        if header in delivery.headers:
            bodies.setdefault(delivery.headers[header], []).append(json.loads(delivery.body))
    return bodies


def test_shopify_sandbox_payloads_carry_what_the_adapter_reads(
    sandbox_shopify, webhook_receiver, shared_fixtures
):
    adapter = shopify_adapter_for(sandbox_shopify)
    adapter.register_webhooks(webhook_receiver.url, list(EventKind)[:6])
    order = sandbox_shopify.create_order()
    sandbox_shopify.ship(order.id)
    sandbox_shopify.deliver(order.id)
    sandbox_shopify.request_return(order.id)
    sandbox_shopify.refund(order.id)
    other = sandbox_shopify.create_order()
    sandbox_shopify.cancel(other.id)
    sandbox_shopify.flush()
    bodies = sandbox_bodies(webhook_receiver, "x-shopify-topic")

    orders = [
        fixture(shared_fixtures, "shopify/orders_create_paid_thirdparty_yellowai.json"),
        fixture(shared_fixtures, "shopify/rest_order_paid_fulfilled_create.json", "order"),
        fixture(shared_fixtures, "shopify/rest_order_450789469_get.json", "order"),
    ]
    real_payloads = {
        "orders/paid": orders,
        "orders/cancelled": orders,
        "fulfillments/create": [fixture(shared_fixtures, "shopify/rest_fulfillment_with_tracking.json", "fulfillment")],
        "fulfillment_events/create": [
            fixture(shared_fixtures, "shopify/rest_fulfillment_event.json", "fulfillment_event")
        ],
        "refunds/create": [fixture(shared_fixtures, "shopify/rest_refund_get.json", "refund")],
        "returns/request": [fixture(shared_fixtures, "shopify/returns_request_thirdparty_yellowai.json")],
    }
    problems = []
    for topic, payloads in real_payloads.items():
        assert topic in bodies, f"the sandbox sent no {topic}"
        real_reads = set().union(*(fields_read(adapter, topic, b) for _p, b in payloads))
        sandbox_reads = set().union(
            *(fields_read(adapter, topic, json.dumps(b).encode()) for b in bodies[topic])
        )
        assert real_reads, f"the adapter read nothing of {topic}"
        problems += check("shopify", topic, [p for p, _b in payloads], real_reads, bodies[topic], sandbox_reads)
    assert problems == [], "\n".join(problems)


def test_woocommerce_sandbox_payloads_carry_what_the_adapter_reads(
    sandbox_woocommerce, webhook_receiver, shared_fixtures
):
    adapter = woocommerce_adapter_for(sandbox_woocommerce)
    adapter.register_webhooks(webhook_receiver.url, list(EventKind)[:6])
    order = sandbox_woocommerce.create_order()
    sandbox_woocommerce.ship(order.id)
    sandbox_woocommerce.flush()
    bodies = sandbox_bodies(webhook_receiver, "x-wc-webhook-topic")["order.updated"]
    real = [
        fixture(shared_fixtures, "woocommerce/order_retrieve.json"),
        fixture(shared_fixtures, "woocommerce/order_update_completed.json"),
    ]

    def reads(body: bytes) -> set[Path]:  # a fresh adapter each time: no remembered order state
        return fields_read(woocommerce_adapter_for(sandbox_woocommerce), "order.updated", body)

    real_reads = set().union(*(reads(b) for _p, b in real))
    sandbox_reads = set().union(*(reads(json.dumps(b).encode()) for b in bodies))
    problems = check("woocommerce", "order.updated", [p for p, _b in real], real_reads, bodies, sandbox_reads)

    tracking_item = json.loads((shared_fixtures / "woocommerce/shipment_tracking_item.json").read_text())
    for path in sorted(sandbox_reads):
        key = path[len(TRACKING_ITEM) :]
        if path[: len(TRACKING_ITEM)] == TRACKING_ITEM and key and key[0] not in tracking_item:
            extra = key[0] in ("custom_tracking_provider", "custom_tracking_link")  # the item's custom-carrier pair
            if not extra:
                problems.append(f"tracking items: the adapter reads {key[0]}, which the extension's item lacks")
    assert any(p[: len(TRACKING_ITEM)] == TRACKING_ITEM for p in sandbox_reads), "no tracking item was read"
    assert problems == [], "\n".join(problems)


def test_the_check_finds_a_missing_field_a_changed_type_and_an_unknown_read():
    real = [{"a": "x", "b": [{"c": 1}], "d": None}]
    drifted = [{"b": [{"c": "1"}]}]
    assert check("shopify", "t", real, {("a",), ("b", "[]", "c")}, drifted, set()) == [
        "t: the sandbox lacks a (string)",
        "t: b.[].c is {'string'} in the sandbox, {'number'} for real",
    ]
    invented = [{"a": "x", "b": [{"c": 2}], "e": "y"}]
    assert check("shopify", "t", real, set(), invented, {("e",)}) == [
        "t: the adapter reads e, which no real payload here carries"
    ]
