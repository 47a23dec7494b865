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
    an Event about ``order`` (its first shipment, refund or return; for
    ``shipment_exception`` also a carrier's report, ``problem="failure"``).
``dispatch(app, event)``
    runs the hooks and returns the action requests they made, in order.

:class:`MemoryAdapter` is a whole platform kept in memory: it keeps orders,
creates coupons idempotently, records notes, tags and consent, and can be
told to fail, so executors and fire-time checks are testable without a shop.

Fault injection (the fault suite, tests/faults/, uses these; so can a plugin's own tests):

:class:`TcpProxy`
    a TCP forwarder on 127.0.0.1 to a real server (PostgreSQL, Redis, an SMTP
    relay). Point the config's DSN at ``proxy.port`` and the test can make
    the server unreachable (:meth:`~TcpProxy.stop_accepting`: new connections
    are refused, open ones cut), drop every open connection
    (:meth:`~TcpProxy.cut`) and bring it back (:meth:`~TcpProxy.resume`).
:class:`FaultySmtpSink`
    an SMTP relay on 127.0.0.1 (aiosmtpd) that keeps each message it takes,
    counted by ``X-Aftercare-Key``, and misbehaves as told: ``sink.reply =
    "421 ..."`` answers DATA with that reply instead of taking the message,
    ``sink.close_after_data = True`` takes the message and drops the
    connection before answering.
"""

from __future__ import annotations

import base64
import contextlib
import email
import email.message
import hashlib
import hmac
import json
import socket
import threading
from collections import Counter
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
    RelatedProduct,
    Shipment,
    ShipmentException,
    ShipmentProblem,
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
        #: Product id -> the products the shop relates to it (``related_products``).
        self.related: dict[str, list[RelatedProduct]] = {}

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
    def related_products(self, product_id: str) -> list[RelatedProduct]:
        self._call(f"related_products:{product_id}")
        return list(self.related.get(product_id, []))

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


def make_event(
    kind: EventKind | str,
    order: Order,
    *,
    occurred_at: datetime | None = None,
    key: str = "",
    problem: ShipmentProblem | str = ShipmentProblem.FAILURE,
) -> Event:
    """An Event about ``order``: for shipped/delivered its first shipment, and so on; for
    shipment_exception its first shipment and a carrier's report of ``problem``."""
    kind = EventKind(kind)
    parcel_kinds = (EventKind.SHIPPED, EventKind.DELIVERED, EventKind.SHIPMENT_EXCEPTION)
    shipment = order.shipments[0] if kind in parcel_kinds and order.shipments else None
    exception = (
        ShipmentException(ShipmentProblem(problem), occurred_at or START)
        if kind is EventKind.SHIPMENT_EXCEPTION
        else None
    )
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
        exception=exception,
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


# -- fault injection ----------------------------------------------------------------


class TcpProxy:
    """Forwards TCP connections from 127.0.0.1:``port`` to ``target``; a test breaks the path.

    ``with TcpProxy(("127.0.0.1", 5432)) as proxy:`` then point the DSN at
    ``proxy.port``. Threads, one pair per connection: a handful of
    connections is what tests open.
    """

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._open: set[socket.socket] = set()
        #: Connections accepted so far (a test can see that something connected).
        self.accepted = 0

    def start(self) -> TcpProxy:
        self.resume()
        return self

    def resume(self) -> None:
        """Accept connections again (on the same port)."""
        with self._lock:
            if self._listener is not None:
                return
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", self.port))
            listener.listen(64)
            self.port = listener.getsockname()[1]
            self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), name="tcp-proxy-accept", daemon=True).start()

    def stop_accepting(self) -> None:
        """The server is unreachable: new connections are refused and open ones are cut."""
        with self._lock:
            listener, self._listener = self._listener, None
        if listener is not None:
            _close(listener)
        self.cut()

    def cut(self) -> int:
        """Drop every open connection (both ends see it closed); return how many sockets were cut."""
        with self._lock:
            sockets, self._open = self._open, set()
        for sock in sockets:
            _close(sock)
        return len(sockets)

    def close(self) -> None:
        self.stop_accepting()

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:  # the listener was closed: stop_accepting()
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                _close(client)
                continue
            with self._lock:
                if self._listener is not listener:  # stopped meanwhile
                    _close(client)
                    _close(upstream)
                    continue
                self._open.update((client, upstream))
                self.accepted += 1
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), name="tcp-proxy-pump", daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        with self._lock:
            self._open.discard(source)
            self._open.discard(sink)
        _close(source)
        _close(sink)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # not connected (any more)
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


class FaultySmtpSink:
    """An SMTP relay on 127.0.0.1 that keeps what it takes and fails the way a test says.

    ``reply``: None takes each message (250); a reply like ``"451 4.3.0 try later"``
    refuses it at DATA. ``close_after_data``: take the message (it is counted in
    ``received``: it reached the relay) and drop the connection without answering.
    """

    def __init__(self) -> None:
        self.reply: str | None = None
        self.close_after_data = False
        #: Every message that reached the relay: taken, or read before the connection was dropped.
        self.received: list[email.message.EmailMessage] = []
        #: Replies given instead of taking a message.
        self.refused = 0
        self._lock = threading.Lock()
        self._controller: Any = None
        #: The port of the last start: ``start(sink.last_port)`` brings a stopped relay back there.
        self.last_port = 0

    @property
    def port(self) -> int:
        if self._controller is None:
            raise RuntimeError("the SMTP sink is not running: call start() first")
        return int(self._controller.port)

    @property
    def port_if_running(self) -> int | None:
        return None if self._controller is None else int(self._controller.port)

    def keys(self) -> Counter[str]:
        """How often each ``X-Aftercare-Key`` reached the relay."""
        with self._lock:
            return Counter(str(m.get("X-Aftercare-Key", "")) for m in self.received)

    def start(self, port: int = 0) -> FaultySmtpSink:
        """Listen on ``port`` (0: a free one); a stopped sink started on its ``last_port`` is back."""
        from aiosmtpd.controller import Controller

        if not port:
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                port = probe.getsockname()[1]
        self._controller = Controller(self, hostname="127.0.0.1", port=port)
        self._controller.start()
        self.last_port = port
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> FaultySmtpSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        from email import policy

        if self.reply is not None and not self.close_after_data:
            with self._lock:
                self.refused += 1
            return self.reply
        message = email.message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
        with self._lock:
            self.received.append(message)
        if self.close_after_data:
            server.transport.close()
            return "421 4.4.2 connection dropped"  # never reaches the client: the transport is closed
        return "250 2.0.0 Message accepted for delivery"
