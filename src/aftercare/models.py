"""The core models: what an order, its customer and its parcels look like to aftercare.

Adapters build these from platform payloads; plugins read them. They are
frozen dataclasses so a hook cannot change what another hook sees, and they
round-trip through JSON (see :mod:`aftercare.serialize`) because the queue and
the store carry them. Rules every adapter keeps:

- platform ids are strings (Shopify's exceed 2**53 and break as floats);
- money is a :class:`Money`: a Decimal amount with an ISO 4217 currency;
- every timestamp is timezone-aware and in UTC.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, fields, replace
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation

from aftercare import serialize

_CURRENCY = re.compile(r"^[A-Z]{3}$")


def _require_utc(name: str, value: datetime | None) -> None:
    if value is None:
        return
    if not isinstance(value, datetime):
        raise TypeError(f"{name} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() != UTC.utcoffset(None):
        raise ValueError(f"{name} must be a timezone-aware UTC datetime, got {value.isoformat()}")


def normalise_email(email: str) -> str:
    """An address as aftercare compares and keeps it: without surrounding blanks, lower case.

    (Strictly only the domain is case-insensitive, but shops and mail providers
    treat the whole address so, and two spellings must be one customer.)"""
    return email.strip().lower()


def utc(value: datetime) -> datetime:
    """Convert an aware datetime to UTC; reject a naive one (it has no meaning)."""
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value.isoformat()} has no time zone")
    return value.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Money:
    """An amount in one currency. Never a float: ``Money(Decimal("19.99"), "EUR")``."""

    amount: Decimal
    currency: str

    def __post_init__(self) -> None:
        if isinstance(self.amount, float) or not isinstance(self.amount, Decimal):
            raise TypeError(f"Money.amount must be a Decimal, got {type(self.amount).__name__}")
        if not self.amount.is_finite():
            raise ValueError(f"Money.amount must be finite, got {self.amount}")
        if not isinstance(self.currency, str) or not _CURRENCY.match(self.currency):
            raise ValueError(f"Money.currency must be an ISO 4217 code like 'EUR', got {self.currency!r}")

    @classmethod
    def parse(cls, amount: str | int | Decimal, currency: str) -> Money:
        """Build from a platform's text amount (``"19.99"``); floats are refused."""
        if isinstance(amount, float):
            raise TypeError("Money.parse takes the amount as text, not a float")
        try:
            value = Decimal(str(amount).strip())
        except InvalidOperation:
            raise ValueError(f"not an amount: {amount!r}") from None
        return cls(value, currency.upper() if isinstance(currency, str) else currency)

    def __str__(self) -> str:
        return f"{self.amount} {self.currency}"


class ConsentState(enum.StrEnum):
    """Email marketing consent as the platform or the customer last stated it."""

    SUBSCRIBED = "subscribed"
    NOT_SUBSCRIBED = "not_subscribed"
    UNSUBSCRIBED = "unsubscribed"
    PENDING = "pending"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Address:
    first_name: str = ""
    last_name: str = ""
    company: str = ""
    address1: str = ""
    address2: str = ""
    city: str = ""
    province: str = ""
    zip: str = ""
    country_code: str = ""
    phone: str = ""


@dataclass(frozen=True, slots=True)
class Customer:
    email: str
    first_name: str = ""
    last_name: str = ""
    locale: str = ""
    marketing_consent: ConsentState = ConsentState.UNKNOWN
    platform_id: str = ""
    #: Consent to marketing texts, apart from email's (Shopify's ``smsMarketingConsent``;
    #: WooCommerce has none: unknown, so no marketing text goes out).
    sms_consent: ConsentState = ConsentState.UNKNOWN
    #: The birthday the shop keeps for the customer, read only from the field the shop's
    #: adapter settings name (Shopify's ``birthday_metafield``, WooCommerce's
    #: ``birthday_meta_key``); None when none is named, the customer has none, or it is
    #: not a date. Its year may be a placeholder (some forms ask only day and month).
    birthday: date | None = None

    @property
    def name(self) -> str:
        return " ".join(part for part in (self.first_name, self.last_name) if part)


@dataclass(frozen=True, slots=True)
class LineItem:
    platform_id: str
    title: str
    quantity: int
    unit_price: Money
    product_id: str = ""
    variant_id: str = ""
    sku: str = ""


@dataclass(frozen=True, slots=True)
class RelatedProduct:
    """A product the shop itself relates to one that was bought (Shopify's complementary
    products from Search & Discovery, WooCommerce's cross-sells and upsells), as a mail shows
    it: only what the platform gives, never a guess. ``url`` is its page in the shop."""

    platform_id: str
    title: str
    url: str
    image_url: str = ""
    price: Money | None = None


class ShipmentStatus(enum.StrEnum):
    """Normalised tracking status (Shopify's FulfillmentEventStatus, tracking plugins' states)."""

    PENDING = "pending"
    IN_TRANSIT = "in_transit"
    OUT_FOR_DELIVERY = "out_for_delivery"
    ATTEMPTED_DELIVERY = "attempted_delivery"
    READY_FOR_PICKUP = "ready_for_pickup"
    DELIVERED = "delivered"
    FAILURE = "failure"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Shipment:
    platform_id: str
    carrier: str = ""
    tracking_number: str = ""
    tracking_url: str = ""
    status: ShipmentStatus = ShipmentStatus.UNKNOWN
    shipped_at: datetime | None = None
    delivered_at: datetime | None = None
    line_item_ids: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _require_utc("Shipment.shipped_at", self.shipped_at)
        _require_utc("Shipment.delivered_at", self.delivered_at)


class ShipmentProblem(enum.StrEnum):
    """What a carrier reported going wrong with a parcel, or that it waits to be collected.

    Shopify's ``FulfillmentEventStatus`` (``ATTEMPTED_DELIVERY``, ``DELAYED``,
    ``FAILURE``, ``READY_FOR_PICKUP``) and the tracking plugins' states on
    WooCommerce (TrackShip's ``exception``, ``failure``, ``on_hold``,
    ``return_to_sender``, ``available_for_pickup``).
    """

    ATTEMPTED_DELIVERY = "attempted_delivery"
    DELAYED = "delayed"
    FAILURE = "failure"
    READY_FOR_PICKUP = "ready_for_pickup"
    EXCEPTION = "exception"
    ON_HOLD = "on_hold"
    RETURN_TO_SENDER = "return_to_sender"


@dataclass(frozen=True, slots=True)
class ShipmentException:
    """One problem report about a parcel (``Event.exception`` of ``shipment_exception``).

    ``message`` is the carrier's own text, if the platform passes one on;
    ``location`` is where the carrier reports the parcel, the parts the
    platform gives joined by ", " (Shopify's fulfillment event address1, zip,
    city, province, country: for ``ready_for_pickup``, where to collect it),
    ``""`` when it does not say. Nothing here is guessed.
    """

    problem: ShipmentProblem
    happened_at: datetime
    message: str = ""
    location: str = ""

    def __post_init__(self) -> None:
        _require_utc("ShipmentException.happened_at", self.happened_at)


@dataclass(frozen=True, slots=True)
class ReturnRequest:
    platform_id: str
    requested_at: datetime
    status: str = "requested"
    reason: str = ""
    line_item_ids: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _require_utc("ReturnRequest.requested_at", self.requested_at)


@dataclass(frozen=True, slots=True)
class Refund:
    """Money given back. ``line_item_ids`` are the order's lines it refunded; empty
    with ``lines_known`` is a refund of an amount only, empty without it means the
    platform's report did not say (WooCommerce's order summary): re-read the order."""

    platform_id: str
    created_at: datetime
    amount: Money | None = None
    reason: str = ""
    line_item_ids: tuple[str, ...] = ()
    lines_known: bool = True

    def __post_init__(self) -> None:
        _require_utc("Refund.created_at", self.created_at)


class FinancialStatus(enum.StrEnum):
    PENDING = "pending"
    AUTHORIZED = "authorized"
    PAID = "paid"
    PARTIALLY_PAID = "partially_paid"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"
    VOIDED = "voided"
    UNKNOWN = "unknown"


class FulfillmentStatus(enum.StrEnum):
    UNFULFILLED = "unfulfilled"
    PARTIAL = "partial"
    FULFILLED = "fulfilled"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Order:
    """One order as the platform last reported it."""

    platform: str
    shop_id: str
    platform_id: str
    number: str
    created_at: datetime
    updated_at: datetime
    customer: Customer
    total: Money
    financial_status: FinancialStatus = FinancialStatus.UNKNOWN
    fulfillment_status: FulfillmentStatus = FulfillmentStatus.UNKNOWN
    subtotal: Money | None = None
    lines: tuple[LineItem, ...] = ()
    shipments: tuple[Shipment, ...] = ()
    refunds: tuple[Refund, ...] = ()
    returns: tuple[ReturnRequest, ...] = ()
    shipping_address: Address | None = None
    locale: str = ""
    cancelled_at: datetime | None = None
    tags: tuple[str, ...] = ()
    #: Discount codes the customer used on this order (redemptions of our coupons show here).
    discount_codes: tuple[str, ...] = ()
    test: bool = False
    #: The webhook carried only part of the order (a fulfillment, refund or
    #: return payload): the runtime re-reads it through the adapter before the
    #: hooks see it, so plugins always get a whole order.
    partial: bool = False

    def __post_init__(self) -> None:
        _require_utc("Order.created_at", self.created_at)
        _require_utc("Order.updated_at", self.updated_at)
        _require_utc("Order.cancelled_at", self.cancelled_at)

    @property
    def currency(self) -> str:
        return self.total.currency

    @property
    def is_cancelled(self) -> bool:
        return self.cancelled_at is not None

    @property
    def is_refunded(self) -> bool:
        return self.financial_status in (FinancialStatus.REFUNDED, FinancialStatus.PARTIALLY_REFUNDED) or bool(
            self.refunds
        )

    @property
    def has_return(self) -> bool:
        return bool(self.returns)

    @property
    def first_shipped_at(self) -> datetime | None:
        """When the first parcel left, if any shipment says."""
        times = [s.shipped_at for s in self.shipments if s.shipped_at is not None]
        return min(times) if times else None

    @property
    def delivery_known(self) -> bool:
        """Some parcel is reported delivered (by a date or by its status)."""
        return any(s.delivered_at is not None or s.status is ShipmentStatus.DELIVERED for s in self.shipments)

    def shipment(self, platform_id: str) -> Shipment | None:
        return next((s for s in self.shipments if s.platform_id == platform_id), None)

    def refund(self, platform_id: str) -> Refund | None:
        return next((r for r in self.refunds if r.platform_id == platform_id), None)

    @property
    def refunded_line_ids(self) -> frozenset[str]:
        """The lines some refund of this order names (only those whose lines are known)."""
        return frozenset(line for refund in self.refunds for line in refund.line_item_ids)


class SurveyKind(enum.StrEnum):
    """CSAT: 1-5, satisfied is 4-5. NPS: 0-10, promoters 9-10, detractors 0-6. CES: 1-7 effort, low is good."""

    CSAT = "csat"
    NPS = "nps"
    CES = "ces"

    @property
    def scale(self) -> range:
        return {"csat": range(1, 6), "nps": range(0, 11), "ces": range(1, 8)}[self.value]


class SurveyPurpose(enum.StrEnum):
    """What a survey asks about: one order (a few days after its delivery), or the customer's
    relationship with the shop (asked once a period, apart from any order's)."""

    ORDER = "order"
    RELATIONSHIP = "relationship"


@dataclass(frozen=True, slots=True)
class SurveyAnswer:
    kind: SurveyKind
    score: int
    answered_at: datetime
    comment: str = ""
    purpose: SurveyPurpose = SurveyPurpose.ORDER

    def __post_init__(self) -> None:
        _require_utc("SurveyAnswer.answered_at", self.answered_at)
        if self.score not in self.kind.scale:
            raise ValueError(f"{self.kind.value} score must be in {self.kind.scale.start}..{self.kind.scale.stop - 1}")


class EventKind(enum.StrEnum):
    """The post-sale moments. Each maps to the hook ``on_<value>``.

    The first six and the last come from the platform; the two between from the
    customer, on aftercare's own pages (a confirmed survey answer, a confirmed
    opt-in).
    """

    ORDER_PAID = "order_paid"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    RETURN_REQUESTED = "return_requested"
    ORDER_CANCELLED = "order_cancelled"
    REFUNDED = "refunded"
    SURVEY_ANSWERED = "survey_answered"
    OPTIN_CONFIRMED = "optin_confirmed"
    SHIPMENT_EXCEPTION = "shipment_exception"

    @property
    def hook(self) -> str:
        return f"on_{self.value}"


@dataclass(frozen=True, slots=True)
class Event:
    """Something happened to an order. ``dedupe_key`` is unique per shop.

    Adapters derive it from the order or its part and the transition
    (``order:123:paid``, ``refund:9``), so webhooks and polling that see the
    same change give the same key (Shopify, WooCommerce's state transitions),
    or else from the platform's delivery id.
    """

    kind: EventKind
    shop_id: str
    order: Order
    occurred_at: datetime
    dedupe_key: str
    shipment: Shipment | None = None
    return_request: ReturnRequest | None = None
    refund: Refund | None = None
    answer: SurveyAnswer | None = None
    #: For ``shipment_exception``: what the carrier reported (``shipment`` is the parcel).
    exception: ShipmentException | None = None
    source: str = "webhook"
    topic: str = ""

    def __post_init__(self) -> None:
        _require_utc("Event.occurred_at", self.occurred_at)
        if not self.dedupe_key:
            raise ValueError("Event.dedupe_key must not be empty")
        if self.order.shop_id != self.shop_id:
            raise ValueError(f"Event.shop_id {self.shop_id!r} differs from its order's {self.order.shop_id!r}")

    def with_whole_order(self, order: Order) -> Event:
        """This event about ``order`` re-read whole, in place of the partial one it carried.

        The event's shipment, refund or return is completed from the order's record of
        it: what the event's payload knew wins (the transition it reports), what it
        lacked (a delivery event's carrier and tracking) comes from the order.
        """
        return replace(
            self,
            order=order,
            shipment=_completed(self.shipment, order.shipments),
            refund=_completed(self.refund, order.refunds),
            return_request=_completed(self.return_request, order.returns),
        )

    def to_json(self) -> str:
        return serialize.dumps(self)

    @classmethod
    def from_json(cls, text: str | bytes) -> Event:
        return serialize.loads(cls, text)


def _completed(part, records):  # noqa: ANN001, ANN202 - a Shipment, Refund or ReturnRequest
    """``part`` with its blank fields filled from the record of the same id in ``records``."""
    if part is None:
        return None
    whole = next((record for record in records if record.platform_id == part.platform_id), None)
    if whole is None:
        return part
    blank = ("", None, (), ShipmentStatus.UNKNOWN)
    return replace(
        whole, **{f.name: getattr(part, f.name) for f in fields(part) if getattr(part, f.name) not in blank}
    )
