"""Test helpers for plugin authors (installed as a pytest plugin).

Fixtures:

``aftercare_app``
    a factory: ``aftercare_app(my_plugin, settings={...})`` gives an
    :class:`~aftercare.app.App` with a store in a temporary folder, a
    :class:`~aftercare.clock.ManualClock`, one production shop ``"test"`` on
    the in-memory platform, and your plugin(s) registered.

Helpers:

``sample_order(name)``
    a real platform payload shipped with aftercare (see
    ``aftercare/samples/SOURCES.md``) mapped to an Order by its adapter.
``make_event(kind, order)``
    an Event about ``order`` (its first shipment, refund or return).
``dispatch(app, event)``
    runs the hooks and returns the action requests they made, in order.

:class:`MemoryAdapter` is a whole platform kept in memory: it keeps orders,
creates coupons idempotently, records notes, tags and consent, and can be
told to fail, so executors and fire-time checks are testable without a shop.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from aftercare import hookimpl, serialize
from aftercare.actions import ActionRequest
from aftercare.clock import ManualClock
from aftercare.models import (
    ConsentState,
    Customer,
    Event,
    EventKind,
    FinancialStatus,
    FulfillmentStatus,
    LineItem,
    Money,
    Order,
    Shipment,
    ShipmentStatus,
)
from aftercare.platform import (
    Adapter,
    CouponResult,
    CouponSpec,
    PayloadError,
    PlatformError,
    PollBatch,
    ShopInfo,
    WebhookDelivery,
    WebhookRejected,
    WebhookSubscription,
)

TEST_SHOP = "test"
START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
SIGNATURE_HEADER = "x-aftercare-hmac-sha256"


class MemoryAdapter(Adapter):
    """A shop platform in memory: webhooks carry core Events as JSON, signed with HMAC-SHA256."""

    platform = "memory"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.orders: dict[str, Order] = {}
        self.coupons: dict[str, CouponSpec] = {}
        self.notes: dict[str, list[str]] = {}
        self.order_tags: dict[str, set[str]] = {}
        self.customer_tags: dict[str, set[str]] = {}
        self.consent: dict[str, tuple[ConsentState, str]] = {}
        self.webhooks: list[WebhookSubscription] = []
        self.failures: list[PlatformError] = []
        self.calls: list[str] = []

    # -- test controls ------------------------------------------------------
    def put_order(self, order: Order) -> None:
        self.orders[order.platform_id] = order

    def fail_next(self, error: PlatformError) -> None:
        self.failures.append(error)

    def sign(self, body: bytes) -> str:
        digest = hmac.new(self.shop.webhook_secret.get_secret_value().encode(), body, hashlib.sha256).digest()
        return base64.b64encode(digest).decode()

    def _call(self, name: str) -> None:
        self.calls.append(name)
        if self.failures:
            raise self.failures.pop(0)

    # -- Adapter ------------------------------------------------------------
    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> WebhookDelivery:
        lowered = {k.lower(): v for k, v in headers.items()}
        given = lowered.get(SIGNATURE_HEADER)
        if not given:
            raise WebhookRejected(401, f"missing header {SIGNATURE_HEADER}")
        if not hmac.compare_digest(given.encode(), self.sign(body).encode()):
            raise WebhookRejected(401, f"{SIGNATURE_HEADER} does not match the body")
        return WebhookDelivery(
            shop_id=self.shop.id,
            topic=lowered.get("x-aftercare-topic", "event"),
            delivery_id=lowered.get("x-aftercare-delivery-id", ""),
            body=body,
        )

    def parse_webhook(self, delivery: WebhookDelivery) -> list[Event]:
        if delivery.topic == "ignored":
            return []
        try:
            event = Event.from_json(delivery.body)
        except (ValueError, TypeError) as exc:
            raise PayloadError(delivery.topic, "<event>", f"is not a valid Event: {exc}") from None
        self.put_order(event.order)
        return [event]

    def parse_order(self, payload: Mapping[str, Any]) -> Order:
        order = serialize.from_data(Order, {**payload, "shop_id": self.shop.id})
        self.put_order(order)
        return order

    def fetch_order(self, order_id: str) -> Order:
        self._call("fetch_order")
        try:
            return self.orders[order_id]
        except KeyError:
            raise PlatformError(f"order {order_id} not found", transient=False) from None

    def poll(self, cursor: str | None, since: datetime | None = None) -> Iterator[PollBatch]:
        return iter(())

    def create_coupon(self, spec: CouponSpec) -> CouponResult:
        self._call("create_coupon")
        created = spec.code not in self.coupons
        self.coupons.setdefault(spec.code, spec)
        return CouponResult(code=spec.code, platform_id=f"coupon-{spec.code}", created=created)

    def add_order_note(self, order_id: str, text: str) -> None:
        self._call("add_order_note")
        self.notes.setdefault(order_id, []).append(text)

    def tag_order(self, order_id: str, tags: Sequence[str]) -> None:
        self._call("tag_order")
        self.order_tags.setdefault(order_id, set()).update(tags)

    def tag_customer(self, customer: Customer, tags: Sequence[str]) -> None:
        self._call("tag_customer")
        self.customer_tags.setdefault(customer.email, set()).update(tags)

    def set_marketing_consent(self, customer: Customer, state: ConsentState, source: str) -> None:
        self._call("set_marketing_consent")
        self.consent[customer.email] = (state, source)

    def list_webhooks(self) -> list[WebhookSubscription]:
        return list(self.webhooks)

    def register_webhooks(self, address: str, kinds: Sequence[EventKind]) -> list[WebhookSubscription]:
        for kind in kinds:
            if not any(w.topic == kind.value and w.address == address for w in self.webhooks):
                self.webhooks.append(WebhookSubscription(str(len(self.webhooks) + 1), kind.value, address))
        return self.list_webhooks()

    def remove_webhooks(self, address: str) -> int:
        before = len(self.webhooks)
        self.webhooks = [w for w in self.webhooks if w.address != address]
        return before - len(self.webhooks)


class _MemoryPlatform:
    """Registers :class:`MemoryAdapter` (what an adapter distribution's module does)."""

    @hookimpl
    def register_adapters(self, register):
        register(MemoryAdapter)


memory_platform = _MemoryPlatform()


# -- sample data ------------------------------------------------------------------

SAMPLES = {
    "shopify_order_paid_fulfilled": "shopify",
    "shopify_order_partially_refunded": "shopify",
    "woocommerce_order_processing": "woocommerce",
    "woocommerce_order_completed": "woocommerce",
}


def sample_payload(name: str) -> dict[str, Any]:
    """The raw platform payload of a shipped sample (unwrapped from REST's ``{"order": ...}``)."""
    if name not in SAMPLES:
        raise KeyError(f"no sample {name!r}; there are: {', '.join(SAMPLES)}")
    text = resources.files("aftercare").joinpath(f"samples/{name}.json").read_text(encoding="utf-8")
    data = json.loads(text)
    return data["order"] if isinstance(data.get("order"), dict) else data


def sample_order(name: str, shop_id: str = TEST_SHOP) -> Order:
    """A shipped real payload mapped to an Order by the installed adapter of its platform."""
    from aftercare.platform import MemoryShopState
    from aftercare.plugin_manager import PluginManager

    platform = SAMPLES.get(name, "")
    adapter_class = PluginManager.load(only=[platform]).adapters().get(platform)
    if adapter_class is None:
        raise LookupError(f"the {platform or name} adapter is not installed")
    info = ShopInfo(id=shop_id, webhook_secret=_secret("sample"))
    adapter = adapter_class(info, adapter_class.offline_settings(), MemoryShopState(), lambda: START)
    return adapter.parse_order(sample_payload(name))


def make_order(
    number: str = "1001", *, shop_id: str = TEST_SHOP, email: str = "ana@example.com", **changes: Any
) -> Order:
    """A small paid order with one line and one shipment; override any field by name."""
    created = START - timedelta(days=1)
    order = Order(
        platform="memory",
        shop_id=shop_id,
        platform_id=f"order-{number}",
        number=number,
        created_at=created,
        updated_at=created,
        customer=Customer(email=email, first_name="Ana", last_name="García", locale="es", platform_id=f"cust-{email}"),
        total=Money(Decimal("59.90"), "EUR"),
        subtotal=Money(Decimal("54.90"), "EUR"),
        financial_status=FinancialStatus.PAID,
        fulfillment_status=FulfillmentStatus.FULFILLED,
        lines=(LineItem("line-1", "Espresso cups", 2, Money(Decimal("27.45"), "EUR"), "prod-1", "var-1", "CUP-2"),),
        shipments=(
            Shipment(
                "ship-1",
                "DHL",
                "JJD000390007",
                "https://www.dhl.com/track?JJD000390007",
                ShipmentStatus.IN_TRANSIT,
                shipped_at=created,
            ),
        ),  # fmt: skip
        locale="es",
    )
    return replace(order, **changes)


def make_event(kind: EventKind | str, order: Order, *, occurred_at: datetime | None = None, key: str = "") -> Event:
    """An Event about ``order``: for shipped/delivered its first shipment, and so on."""
    kind = EventKind(kind)
    shipment = order.shipments[0] if kind in (EventKind.SHIPPED, EventKind.DELIVERED) and order.shipments else None
    refund = order.refunds[0] if kind is EventKind.REFUNDED and order.refunds else None
    return_request = order.returns[0] if kind is EventKind.RETURN_REQUESTED and order.returns else None
    return Event(
        kind=kind,
        shop_id=order.shop_id,
        order=order,
        occurred_at=occurred_at or START,
        dedupe_key=key or f"test:{kind.value}:{order.platform_id}",
        shipment=shipment,
        refund=refund,
        return_request=return_request,
        source="test",
    )


def dispatch(app: Any, event: Event) -> list[ActionRequest]:
    """Run the hooks for ``event`` (storing event and actions) and return the requests made."""
    from aftercare.dispatch import Dispatcher

    return Dispatcher(app).dispatch(event).requests


def _secret(value: str) -> Any:
    from pydantic import SecretStr

    return SecretStr(value)


# -- pytest fixtures ----------------------------------------------------------------


@pytest.fixture
def aftercare_app(tmp_path: Path) -> Iterator[Any]:
    """Factory for an App in a temporary folder (see the module docstring)."""
    from aftercare.app import App
    from aftercare.config import Config, ShopConfig
    from aftercare.plugin_manager import PluginManager

    apps: list[Any] = []

    def make(
        *plugins: object,
        settings: Mapping[str, Mapping[str, Any]] | None = None,
        shop: Mapping[str, Any] | None = None,
        entry_points: bool = False,
    ) -> App:
        names = [(getattr(p, "name", None) or getattr(p, "__name__", "plugin").rsplit(".", 1)[-1], p) for p in plugins]
        manager = PluginManager.load(entry_points=entry_points, extra=[("memory-platform", memory_platform), *names])
        shop_config = ShopConfig(
            **{
                "id": TEST_SHOP,
                "platform": "memory",
                "webhook_secret": "test-secret",
                "production": True,
                **(shop or {}),
            }  # fmt: skip
        )
        config = Config(
            database=f"sqlite:///{tmp_path / f'aftercare-{len(apps)}.db'}",
            queue=f"sqlite:///{tmp_path / 'queue.db'}",
            plugins={k: dict(v) for k, v in (settings or {}).items()},
            shops=[shop_config],
            base_dir=tmp_path,
        )
        app = App(config, clock=ManualClock(START), plugins=manager)
        app.store.upgrade()
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.close()


def order_for(order: Order, shop_id: str) -> Order:
    """The same order moved to another shop (for tests with several shops)."""
    return replace(order, shop_id=shop_id)
