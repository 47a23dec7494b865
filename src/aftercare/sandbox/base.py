"""What both sandbox shops share: the server's life, the control endpoints and the state moves.

A state move (create, pay, ship, deliver, request a return, refund, cancel)
changes the platform-neutral records in :mod:`.state` and then asks the
platform subclass to fire the webhooks its platform would fire. The moves are
Python methods for tests and the demo, and ``/_sandbox/...`` endpoints for the
CLI (``aftercare sandbox order ...``), so a shell can drive a running shop.
"""

from __future__ import annotations

import abc
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar

from . import people
from .delivery import Attempt, Delivery, WebhookSender
from .http import LocalService, Request, Response, Router, json_response
from .state import (
    Address,
    Customer,
    Fulfillment,
    FulfillmentEvent,
    Line,
    MoveError,
    Order,
    Product,
    Refund,
    Return,
    ShopState,
)
from .state import money as money_text


def system_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Item:
    """A line to put in a new order: what the customer bought, at which unit price."""

    title: str
    quantity: int
    price: Decimal
    sku: str = ""
    variant_title: str = ""


class SandboxShop(LocalService, abc.ABC):
    """One platform's sandbox shop. Use as a context manager or ``start()``/``stop()``."""

    what = "the sandbox shop"

    platform: ClassVar[str]
    #: First id handed out: platform-like magnitudes (Shopify's are 13 digits).
    first_id: ClassVar[int] = 1

    def __init__(
        self,
        *,
        clock: Callable[[], datetime] | None = None,
        seed: int = 0,
        webhook_timeout: tuple[float, float] = (1.0, 5.0),
        birthday_field: str | None = None,
    ) -> None:
        self.clock = clock or system_now
        #: Where this shop keeps customers' birthdays (a Shopify metafield ``namespace.key``, a
        #: WooCommerce customer meta key): :meth:`set_birthday` writes there, and
        #: :meth:`adapter_settings` tells the adapter to read it. None: the shop keeps none.
        self.birthday_field = birthday_field
        self.rng = random.Random(seed)
        self.state = ShopState(self.first_id)
        self.sender = WebhookSender(
            success=self.delivered_ok,
            on_outcome=self.after_attempt,
            timeout=webhook_timeout,
            user_agent=self.webhook_user_agent,
        )
        self.router = Router()
        self.add_routes(self.router)
        self._add_control_routes(self.router)

    # -- life --------------------------------------------------------------
    def start(self, port: int = 0) -> str:
        """Listen on 127.0.0.1 (``port`` 0 picks a free one), send webhooks, and return the base URL."""
        if not self.running:
            super().start(port)
            self.sender.start()
        return self.url

    def stop(self) -> None:
        self.sender.stop()
        super().stop()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every webhook (retries included) has been sent; False on timeout."""
        return self.sender.flush(timeout)

    @property
    def deliveries(self) -> list[Attempt]:
        """Every webhook attempt so far, oldest first."""
        return list(self.sender.attempts)

    def now(self) -> datetime:
        """The shop clock, to the second: both platforms store whole seconds."""
        return self.clock().astimezone(UTC).replace(microsecond=0)

    # -- what a subclass provides -------------------------------------------
    webhook_user_agent: ClassVar[str] = ""

    @abc.abstractmethod
    def add_routes(self, router: Router) -> None:
        """The platform API's endpoints."""

    @abc.abstractmethod
    def adapter_settings(self) -> dict[str, Any]:
        """The ``[[shops]]`` keys that point the platform's adapter at this sandbox."""

    @abc.abstractmethod
    def delivered_ok(self, status: int) -> bool:
        """Which webhook answers count as delivered on this platform."""

    @abc.abstractmethod
    def after_attempt(self, delivery: Delivery, attempt: Attempt, final: bool) -> None:
        """Platform bookkeeping after a webhook attempt (failure counts, disabling)."""

    @abc.abstractmethod
    def order_changed(self, order: Order, move: str, subject: Any = None) -> None:
        """Fire the webhooks the platform fires for ``move`` (called with the lock held)."""

    def store_customer_field(self, customer: Customer, field: str, value: str) -> None:
        """Keep a custom customer field where the platform keeps one (with the lock held)."""
        raise NotImplementedError(f"the {self.platform} sandbox keeps no custom customer fields")

    def describe(self) -> dict[str, Any]:
        return {"platform": self.platform, "url": self.url, "settings": self.adapter_settings()}

    # -- state moves -------------------------------------------------------
    def create_order(
        self,
        *,
        email: str | None = None,
        first_name: str | None = None,
        last_name: str | None = None,
        locale: str | None = None,
        currency: str | None = None,
        items: Sequence[Item] | None = None,
        paid: bool = True,
        guest: bool = False,
        shipping: Decimal | None = None,
        discount_codes: Sequence[str] = (),
    ) -> Order:
        """A new order from a new or returning customer (same email = same customer).

        Unspecified parts are made up, realistically, from the shop's seeded
        random source: a name and address in the customer's language, one to
        three products priced in the currency that language's customers pay in.
        """
        with self.state.lock:
            now = self.now()
            customer = self.state.customer_by_email(email) if email else None
            if customer is None:
                customer = self._new_customer(email, first_name, last_name, locale, guest, now)
            locale = locale or customer.locale
            currency = (currency or people.LOCALE_CURRENCY.get(locale, "EUR")).upper()
            lines = self._lines(items, currency)
            order = Order(
                id=self.state.next_id(),
                number=self.state.next_number(),
                customer_id=customer.id,
                email=customer.email,
                locale=locale,
                currency=currency,
                lines=lines,
                shipping_price=Decimal("4.95") if shipping is None else Decimal(shipping),
                shipping_address=customer.address,
                billing_address=customer.address,
                created_at=now,
                updated_at=now,
                paid_at=now if paid else None,
                status="processing" if paid else "pending",
                discount_codes=list(discount_codes),
            )
            self.state.orders[order.id] = order
            self.order_changed(order, "created")
            return order

    def add_customer(
        self, *, email: str, id: int | None = None, first_name: str = "", last_name: str = "", locale: str = "en"
    ) -> Customer:
        """A customer who signed up before ordering (a made-up name unless given). With a known
        ``id``, a test can post a real platform payload whose customer the sandbox must then
        recognise (coupons restricted to them, consent)."""
        with self.state.lock:
            customer = self._new_customer(email, first_name, last_name, locale, False, self.now())
            if id is not None:
                del self.state.customers[customer.id]
                customer.id = id
                self.state.customers[id] = customer
            return customer

    def set_birthday(self, customer_id: int, birthday: str, *, field: str | None = None) -> Customer:
        """Keep ``birthday`` (text as the shop stores it, ``1990-03-15``) on the customer, where
        the platform keeps such a field: on Shopify the customer metafield ``field``
        (``namespace.key``, type ``date``), on WooCommerce the customer meta key ``field``
        (``GET /customers/{id}`` shows it in ``meta_data``); ``field`` defaults to the shop's
        ``birthday_field``. Fires no webhook: on neither platform does editing a customer's
        custom field touch their orders."""
        field = field or self.birthday_field
        if not field:
            raise MoveError("no field for the birthday: give field= or the shop's birthday_field")
        with self.state.lock:
            customer = self.state.customers.get(customer_id)
            if customer is None:
                raise MoveError(f"no customer {customer_id}")
            self.store_customer_field(customer, field, birthday)
            customer.updated_at = self.now()
            return customer

    def add_product(
        self,
        title: str,
        price: Decimal | str,
        *,
        id: int | None = None,
        image_url: str = "",
        published: bool = True,
        related: Sequence[int] = (),
        upsells: Sequence[int] = (),
    ) -> Product:
        """A catalogue product (``id``: an order line's product id, to relate products to what was
        bought). ``related`` is what the platform relates to it: Shopify's complementary
        products (Search & Discovery), WooCommerce's cross-sells; ``upsells`` WooCommerce's upsells."""
        with self.state.lock:
            product_id = id if id is not None else self.state.next_id()
            handle = people.ascii_slug(title) or str(product_id)
            product = Product(
                product_id, title, handle, Decimal(str(price)), image_url, published, list(related), list(upsells)
            )
            self.state.products[product_id] = product
            return product

    def add_catalogue(self) -> list[Product]:
        """The products made-up baskets are filled with (:mod:`.people`), in the catalogue with
        the products the shop relates to each (``people.RELATED_SKUS``), so mails can suggest them."""
        return [
            self.add_product(title, price, id=product_id, related=related)
            for product_id, title, price, related in people.catalogue()
        ]

    def pay(self, order_id: int) -> Order:
        with self.state.lock:
            order = self._live(order_id)
            if order.paid_at is not None:
                raise MoveError(f"order {order.id} is paid already")
            order.paid_at = order.updated_at = self.now()
            order.status = "processing"
            self.order_changed(order, "paid")
            return order

    def ship(
        self,
        order_id: int,
        *,
        carrier: str | None = None,
        tracking_number: str | None = None,
        tracking_url: str | None = None,
    ) -> Fulfillment:
        """Fulfil every line in one parcel with a carrier and tracking number."""
        with self.state.lock:
            order = self._live(order_id)
            if order.paid_at is None:
                raise MoveError(f"order {order.id} is not paid: pay it before shipping")
            carrier = carrier or people.LOCALE_CARRIER.get(order.locale, "UPS")
            if tracking_number is None:
                tracking_number, made_url = people.tracking(self.rng, carrier)
                tracking_url = tracking_url or made_url
            now = self.now()
            fulfillment = Fulfillment(
                id=self.state.next_id(),
                number=len(order.fulfillments) + 1,
                carrier=carrier,
                tracking_number=tracking_number,
                tracking_url=tracking_url or "",
                created_at=now,
                updated_at=now,
                line_ids=[line.id for line in order.lines],
                shipment_status="in_transit",
                in_transit_at=now,
                tracking_id=f"{self.rng.getrandbits(128):032x}",
            )
            order.fulfillments.append(fulfillment)
            order.updated_at = order.completed_at = now
            order.status = "completed"
            self.order_changed(order, "shipped", fulfillment)
            return fulfillment

    def deliver(self, order_id: int, fulfillment_id: int | None = None) -> Fulfillment:
        """The carrier reports the parcel delivered (the newest one unless named)."""
        with self.state.lock:
            order = self.state.order(order_id)
            candidates = [f for f in order.fulfillments if fulfillment_id in (None, f.id)]
            if not candidates:
                raise MoveError(
                    f"order {order.id} has no shipment {fulfillment_id or ''} to deliver".replace("  ", " ")
                )
            fulfillment = candidates[-1]
            if fulfillment.delivered_at is not None:
                raise MoveError(f"shipment {fulfillment.id} is delivered already")
            now = self.now()
            fulfillment.shipment_status = "delivered"
            fulfillment.delivered_at = fulfillment.updated_at = now
            fulfillment.events.append(FulfillmentEvent(self.state.next_id(), "delivered", now))
            order.status = "delivered"
            self.order_changed(order, "delivered", fulfillment)
            return fulfillment

    #: The carrier statuses :meth:`fail_delivery` takes, in the platform's spelling; the first is
    #: the default. :attr:`pickup_status` is the one :meth:`ready_for_pickup` records.
    problem_statuses: tuple[str, ...] = ("failure",)
    pickup_status: str = "ready_for_pickup"

    def fail_delivery(
        self,
        order_id: int,
        *,
        status: str | None = None,
        fulfillment_id: int | None = None,
        message: str = "",
        address1: str = "",
        zip: str = "",
        city: str = "",
        province: str = "",
        country: str = "",
    ) -> Fulfillment:
        """The carrier reports a problem with the parcel (the newest one unless named): a failed
        delivery by default, or any of :attr:`problem_statuses`. The platform records it as it
        would (a fulfillment event on Shopify, TrackShip's meta on WooCommerce) and fires its
        webhooks. The address is where the carrier says the event happened (Shopify only)."""
        status = status or self.problem_statuses[0]
        if status not in (*self.problem_statuses, self.pickup_status):
            raise MoveError(f"unknown carrier problem {status!r}; one of {', '.join(self.problem_statuses)}")
        with self.state.lock:
            order = self.state.order(order_id)
            candidates = [f for f in order.fulfillments if fulfillment_id in (None, f.id)]
            if not candidates:
                raise MoveError(f"order {order.id} has no shipment {fulfillment_id or ''} to fail".replace("  ", " "))
            fulfillment = candidates[-1]
            if fulfillment.delivered_at is not None:
                raise MoveError(f"shipment {fulfillment.id} is delivered already")
            now = self.now()
            fulfillment.shipment_status = status
            fulfillment.updated_at = now
            fulfillment.events.append(
                FulfillmentEvent(
                    self.state.next_id(), status, now, message=message, address1=address1, zip=zip,
                    city=city, province=province, country=country,
                )  # fmt: skip
            )
            self.order_changed(order, "delivery_problem", fulfillment)
            return fulfillment

    def ready_for_pickup(self, order_id: int, **where: Any) -> Fulfillment:
        """The carrier reports the parcel waiting at a pickup point; ``where`` takes
        :meth:`fail_delivery`'s ``fulfillment_id``, ``message`` and address fields."""
        return self.fail_delivery(order_id, status=self.pickup_status, **where)

    def request_return(self, order_id: int, *, reason: str = "unwanted") -> Return:
        with self.state.lock:
            order = self._live(order_id)
            if not order.fulfillments and order.completed_at is None:
                raise MoveError(f"order {order.id} was not shipped: nothing to return")
            now = self.now()
            request = Return(
                id=self.state.next_id(),
                number=len(order.returns) + 1,
                status="requested",
                reason=reason,
                line_ids=[line.id for line in order.lines],
                created_at=now,
                line_item_ids=[self.state.next_id() for _ in order.lines],
            )
            order.returns.append(request)
            order.updated_at = now
            order.status = "return-requested"
            self.order_changed(order, "return_requested", request)
            return request

    def refund(
        self, order_id: int, *, amount: Decimal | None = None, reason: str = "", lines: Sequence[int] = ()
    ) -> Refund:
        """Refund ``amount`` (default: what is left, or the total of ``lines``) of a paid
        order; ``lines`` names the order lines refunded (a refund of products, not only money)."""
        with self.state.lock:
            order = self.state.order(order_id)
            if order.paid_at is None:
                raise MoveError(f"order {order.id} is not paid: nothing to refund")
            by_id = {line.id: line for line in order.lines}
            unknown = [line_id for line_id in lines if line_id not in by_id]
            if unknown:
                raise MoveError(f"order {order.id} has no line {unknown[0]}")
            left = order.total - order.refunded
            if amount is None and lines:
                amount = sum((by_id[line_id].total for line_id in lines), Decimal(0))
            amount = left if amount is None else Decimal(amount)
            if amount <= 0 or amount > left:
                raise MoveError(f"order {order.id}: can refund between 0.01 and {money_text(left)}, not {amount}")
            now = self.now()
            refund = Refund(
                id=self.state.next_id(),
                created_at=now,
                amount=amount,
                reason=reason,
                line_ids=list(lines) or ([line.id for line in order.lines] if amount == order.total else []),
                transaction_id=self.state.next_id(),
            )
            order.refunds.append(refund)
            order.updated_at = now
            if order.refunded >= order.total:
                order.status = "refunded"
            self.order_changed(order, "refunded", refund)
            return refund

    def cancel(self, order_id: int, *, reason: str = "customer", refund: bool = False) -> Order:
        """Cancel an order that has not shipped; ``refund`` also refunds what was paid, in the
        same merchant action (Shopify then sends ``orders/cancelled`` and ``refunds/create``)."""
        with self.state.lock:
            order = self._live(order_id)
            if order.fulfillments:
                raise MoveError(f"order {order.id} has shipped: request a return or refund it instead")
            now = self.now()
            made = None
            if refund and order.paid_at is not None and order.total > order.refunded:
                made = Refund(
                    id=self.state.next_id(),
                    created_at=now,
                    amount=order.total - order.refunded,
                    reason=reason,
                    line_ids=[line.id for line in order.lines] if not order.refunds else [],
                    transaction_id=self.state.next_id(),
                )
                order.refunds.append(made)
            order.cancelled_at = order.updated_at = now
            order.cancel_reason = reason
            order.status = "cancelled"
            self.order_changed(order, "cancelled", made)
            return order

    # -- helpers ------------------------------------------------------------
    def _live(self, order_id: int) -> Order:
        order = self.state.order(order_id)
        if order.cancelled_at is not None:
            raise MoveError(f"order {order.id} is cancelled")
        return order

    def _new_customer(self, email, first_name, last_name, locale, guest, now) -> Customer:
        made = people.person(self.rng, locale)
        first, last = first_name or made.first_name, last_name or made.last_name
        address = Address(
            first,
            last,
            made.address.address1,
            made.address.city,
            made.address.zip,
            made.address.country_code,
            phone=made.phone,
        )
        customer = Customer(
            id=self.state.next_id(),
            email=email or made.email,
            first_name=first,
            last_name=last,
            locale=locale or made.locale,
            created_at=now,
            updated_at=now,
            address=address,
            phone=made.phone,
            registered=not guest,
        )
        self.state.customers[customer.id] = customer
        return customer

    def _lines(self, items: Sequence[Item] | None, currency: str) -> list[Line]:
        if items:
            return [
                Line(
                    id=self.state.next_id(),
                    product_id=self.state.next_id(),
                    variant_id=self.state.next_id(),
                    title=item.title,
                    variant_title=item.variant_title,
                    sku=item.sku,
                    quantity=int(item.quantity),
                    unit_price=Decimal(item.price),
                )
                for item in items
            ]
        return [
            Line(
                id=self.state.next_id(),
                product_id=product.product_id,
                variant_id=product.variant_id,
                title=product.title,
                variant_title=product.variant_title,
                sku=product.sku,
                quantity=quantity,
                unit_price=product.price,
            )
            for product, quantity in people.basket(self.rng, currency)
        ]

    def summary(self, order: Order) -> dict[str, Any]:
        """A platform-neutral view of an order for the CLI and the demo."""
        return {
            "id": str(order.id),
            "number": order.number,
            "email": order.email,
            "locale": order.locale,
            "currency": order.currency,
            "total": money_text(order.total),
            "paid": order.paid_at is not None,
            "cancelled": order.cancelled_at is not None,
            "refunded": money_text(order.refunded),
            "shipments": [
                {
                    "id": str(f.id),
                    "carrier": f.carrier,
                    "tracking_number": f.tracking_number,
                    "tracking_url": f.tracking_url,
                    "delivered": f.delivered_at is not None,
                }
                for f in order.fulfillments
            ],
            "returns": [{"id": str(r.id), "status": r.status, "reason": r.reason} for r in order.returns],
            "updated_at": order.updated_at.isoformat(),
        }

    def coupons(self) -> list[dict[str, Any]]:
        with self.state.lock:
            return [
                {
                    "id": str(c.id),
                    "code": c.code,
                    "kind": c.kind,
                    "amount": money_text(c.amount),
                    "customers": [str(i) for i in c.customer_ids] + c.email_restrictions,
                    "ends_at": c.ends_at.isoformat() if c.ends_at else None,
                }
                for c in self.state.coupons.values()
            ]

    # -- control endpoints (/_sandbox) ----------------------------------------
    def _add_control_routes(self, router: Router) -> None:
        router.add("GET", "/_sandbox", lambda r: json_response(self.describe()))
        router.add("GET", "/_sandbox/orders", self._control_list)
        router.add("POST", "/_sandbox/orders", self._control_create)
        router.add("POST", r"/_sandbox/orders/(?P<id>\d+)/(?P<move>[a-z_]+)", self._control_move)
        router.add("GET", "/_sandbox/coupons", lambda r: json_response(self.coupons()))
        router.add("GET", "/_sandbox/deliveries", lambda r: json_response([a.as_json() for a in self.deliveries]))
        router.add("POST", "/_sandbox/flush", self._control_flush)

    def _control_list(self, request: Request) -> Response:
        with self.state.lock:
            return json_response([self.summary(order) for order in self.state.orders.values()])

    def _control_create(self, request: Request) -> Response:
        spec = request.json()
        try:
            count = int(spec.pop("count", 1))
            items = [
                Item(i["title"], int(i.get("quantity", 1)), Decimal(str(i["price"])), i.get("sku", ""))
                for i in spec.pop("items", None) or []
            ]
            allowed = {"email", "first_name", "last_name", "locale", "currency", "paid", "guest", "shipping"}
            unknown = set(spec) - allowed
            if unknown:
                raise MoveError(f"unknown order fields: {', '.join(sorted(unknown))}")
            if "shipping" in spec:
                spec["shipping"] = Decimal(str(spec["shipping"]))
            orders = [self.create_order(items=items or None, **spec) for _ in range(count)]
        except (MoveError, ValueError, KeyError, TypeError, InvalidOperation) as exc:
            return json_response({"error": str(exc)}, 400)
        return json_response([self.summary(order) for order in orders], 201)

    def _control_move(self, request: Request) -> Response:
        order_id, move = int(request.params["id"]), request.params["move"]
        options = request.json()
        moves: dict[str, Callable[..., Any]] = {
            "pay": self.pay,
            "ship": self.ship,
            "deliver": self.deliver,
            "fail_delivery": self.fail_delivery,
            "ready_for_pickup": self.ready_for_pickup,
            "return": self.request_return,
            "refund": self.refund,
            "cancel": self.cancel,
        }
        if move not in moves:
            return json_response({"error": f"unknown move {move!r}; one of {', '.join(moves)}"}, 404)
        if "amount" in options and options["amount"] is not None:
            options["amount"] = Decimal(str(options["amount"]))
        if "fulfillment_id" in options and options["fulfillment_id"] is not None:
            options["fulfillment_id"] = int(options["fulfillment_id"])
        if isinstance(options.get("lines"), list):
            options["lines"] = [int(line) for line in options["lines"]]
        try:
            moves[move](order_id, **{k: v for k, v in options.items() if v is not None})
        except LookupError as exc:
            return json_response({"error": str(exc)}, 404)
        except (MoveError, TypeError, InvalidOperation) as exc:
            return json_response({"error": str(exc)}, 400)
        with self.state.lock:
            return json_response(self.summary(self.state.order(order_id)))

    def _control_flush(self, request: Request) -> Response:
        done = self.flush(float(request.query.get("timeout", "10")))
        return json_response({"flushed": done}, 200 if done else 504)
