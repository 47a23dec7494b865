"""The sandbox shop's memory: orders, customers, coupons, in platform-neutral records.

Both sandbox platforms keep the same records and render them in their own
shapes (Shopify REST/GraphQL, WooCommerce REST v3), so a state move such as
"shipped" is written once and every payload built from it agrees. Money is
Decimal and times are aware UTC datetimes from the shop's clock; nothing
here knows about HTTP.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

CENT = Decimal("0.01")


def money(value: Decimal) -> str:
    """Amounts travel as strings with two decimals, as both platforms send them."""
    return str(Decimal(value).quantize(CENT))


@dataclass
class Address:
    first_name: str
    last_name: str
    address1: str
    city: str
    zip: str
    country_code: str
    province: str = ""
    address2: str = ""
    company: str = ""
    phone: str = ""


@dataclass
class Customer:
    id: int
    email: str
    first_name: str
    last_name: str
    locale: str
    created_at: datetime
    updated_at: datetime
    address: Address
    phone: str = ""
    #: WooCommerce: a registered customer has a record; a guest exists only on orders.
    registered: bool = True
    #: Shopify's CustomerEmailMarketingState, lower case (``not_subscribed``, ``subscribed``...).
    marketing_state: str = "not_subscribed"
    marketing_opt_in_level: str = "single_opt_in"
    consent_updated_at: datetime | None = None
    #: Shopify's SMS marketing state, apart from email's; sent only for a customer with a phone
    #: (null otherwise, as the real webhooks do).
    sms_marketing_state: str = "not_subscribed"
    tags: list[str] = field(default_factory=list)
    #: WooCommerce customer meta_data entries ``{id, key, value}``.
    meta: list[dict[str, Any]] = field(default_factory=list)
    #: Shopify customer metafields ``{id, namespace, key, type, value}`` (value as text).
    metafields: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Product:
    """A product of the catalogue, as far as related products need one."""

    id: int
    title: str
    handle: str
    price: Decimal  # in the shop currency
    image_url: str = ""
    #: Shopify: active and published to the online store; WooCommerce: status ``publish``.
    published: bool = True
    #: Shopify: Search & Discovery's complementary products; WooCommerce: ``cross_sell_ids``.
    related: list[int] = field(default_factory=list)
    #: WooCommerce's ``upsell_ids`` (Shopify keeps no such list).
    upsells: list[int] = field(default_factory=list)


@dataclass
class Line:
    id: int
    product_id: int
    variant_id: int
    title: str
    variant_title: str
    sku: str
    quantity: int
    unit_price: Decimal

    @property
    def total(self) -> Decimal:
        return self.unit_price * self.quantity


@dataclass
class FulfillmentEvent:
    id: int
    status: str
    happened_at: datetime
    #: The carrier's text and where the event happened (Shopify's fulfillment event fields).
    message: str = ""
    address1: str = ""
    zip: str = ""
    city: str = ""
    province: str = ""
    country: str = ""


@dataclass
class Fulfillment:
    id: int
    number: int  # "#1001.1": the order's name plus this
    carrier: str
    tracking_number: str
    tracking_url: str
    created_at: datetime
    updated_at: datetime
    line_ids: list[int]
    #: Shopify REST ``shipment_status`` (lower case): None, in_transit, delivered...
    shipment_status: str | None = None
    delivered_at: datetime | None = None
    in_transit_at: datetime | None = None
    events: list[FulfillmentEvent] = field(default_factory=list)
    #: WooCommerce Shipment Tracking's ``tracking_id``.
    tracking_id: str = ""


@dataclass
class Refund:
    id: int
    created_at: datetime
    amount: Decimal
    reason: str
    line_ids: list[int]
    transaction_id: int


@dataclass
class Return:
    id: int
    number: int  # "#1001-R1"
    status: str  # Shopify ReturnStatus lower case: requested, open, closed, declined, canceled
    reason: str  # Shopify ReturnReason lower case: unwanted, size_too_small, defective...
    line_ids: list[int]
    created_at: datetime
    line_item_ids: list[int] = field(default_factory=list)  # ids of the ReturnLineItems


@dataclass
class Note:
    id: int
    text: str
    customer_note: bool
    created_at: datetime
    author: str = "WooCommerce"


@dataclass
class Order:
    id: int
    number: int
    customer_id: int
    email: str
    locale: str
    currency: str
    lines: list[Line]
    shipping_price: Decimal
    shipping_address: Address
    billing_address: Address
    created_at: datetime
    updated_at: datetime
    paid_at: datetime | None = None
    completed_at: datetime | None = None
    cancelled_at: datetime | None = None
    cancel_reason: str | None = None
    fulfillments: list[Fulfillment] = field(default_factory=list)
    refunds: list[Refund] = field(default_factory=list)
    returns: list[Return] = field(default_factory=list)
    #: Shopify's single order note (``orderUpdate`` replaces it).
    note: str = ""
    #: WooCommerce order notes.
    notes: list[Note] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    #: Discount codes the customer entered at checkout (the sandbox does not take the discount off the total).
    discount_codes: list[str] = field(default_factory=list)
    #: WooCommerce order meta_data entries ``{id, key, value}``.
    meta: list[dict[str, Any]] = field(default_factory=list)
    #: WooCommerce post status without ``wc-`` (pending, processing, completed...).
    status: str = "pending"
    payment_method: str = "stripe"
    payment_method_title: str = "Credit card (Stripe)"
    test: bool = False

    @property
    def subtotal(self) -> Decimal:
        return sum((line.total for line in self.lines), Decimal(0))

    @property
    def total(self) -> Decimal:
        return self.subtotal + self.shipping_price

    @property
    def refunded(self) -> Decimal:
        return sum((refund.amount for refund in self.refunds), Decimal(0))


@dataclass
class Coupon:
    """A Shopify basic code discount or a WooCommerce coupon."""

    id: int
    code: str
    kind: str  # percent | fixed_amount (Shopify) / percent | fixed_cart | fixed_product (Woo)
    amount: Decimal  # percent as 0-100, or an amount
    created_at: datetime
    updated_at: datetime
    title: str = ""
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    usage_limit: int | None = None
    usage_limit_per_user: int | None = None
    applies_once_per_customer: bool = False
    individual_use: bool = False
    customer_ids: list[int] = field(default_factory=list)
    email_restrictions: list[str] = field(default_factory=list)
    minimum_amount: Decimal | None = None
    raw: dict[str, Any] = field(default_factory=dict)  # the create input, for inspection


class ShopState:
    """All records of one sandbox shop, behind one lock.

    Request handlers, state moves and the webhook sender run on different
    threads; each takes ``lock`` for a whole read or change so nobody sees an
    order half-moved.
    """

    def __init__(self, first_id: int, first_number: int = 1001) -> None:
        self.lock = threading.RLock()
        self._ids = itertools.count(first_id)
        self._numbers = itertools.count(first_number)
        self.orders: dict[int, Order] = {}
        self.customers: dict[int, Customer] = {}
        self.coupons: dict[int, Coupon] = {}
        self.products: dict[int, Product] = {}

    def next_id(self) -> int:
        with self.lock:
            return next(self._ids)

    def next_number(self) -> int:
        with self.lock:
            return next(self._numbers)

    def order(self, order_id: int) -> Order:
        try:
            return self.orders[int(order_id)]
        except (KeyError, ValueError):
            raise UnknownRecord(f"no order {order_id}") from None

    def customer_by_email(self, email: str) -> Customer | None:
        wanted = email.strip().lower()
        return next((c for c in self.customers.values() if c.email.lower() == wanted), None)

    def coupon_by_code(self, code: str) -> Coupon | None:
        wanted = code.strip().lower()
        return next((c for c in self.coupons.values() if c.code.lower() == wanted), None)


class UnknownRecord(LookupError):
    """An id that names no order, customer or coupon in the sandbox."""


class MoveError(ValueError):
    """A state move that the order's state does not allow (shipping a cancelled order...)."""
