"""Shopify webhook bodies (REST-shaped resources) to core models and events.

No REST API is called here: webhook bodies are REST resources, so this maps that shape.

Webhook bodies are "the full REST resource payload for the topic": a whole
order for ``orders/*``, but only a fulfillment, a fulfillment event, a refund
or a return for the other topics. For those the Event's Order is a *partial
order* built from what the payload carries (see :func:`partial_order`); the
adapter can re-read it with ``fetch_order`` (setting ``refetch_partial_orders``).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from aftercare.models import (
    Address,
    ConsentState,
    Customer,
    Event,
    EventKind,
    FinancialStatus,
    FulfillmentStatus,
    LineItem,
    Money,
    Order,
    Refund,
    ReturnRequest,
    Shipment,
    ShipmentException,
    ShipmentStatus,
)
from aftercare.platform import locale_tag

from . import keys
from .payload import (
    CONSENT_STATE,
    FAILED_FULFILLMENT,
    FINANCIAL_STATUS,
    FULFILLMENT_STATUS,
    NO_CURRENCY,
    SHIPMENT_PROBLEM,
    SHIPMENT_STATUS,
    Reader,
    lookup,
)

PLATFORM = "shopify"

# -- orders -----------------------------------------------------------------


def order_from_rest(order: Reader, shop_id: str) -> Order:
    """A whole REST order (``orders/paid`` body, ``data["order"]`` of a REST response)."""
    currency = order.currency("currency")
    created_at = order.time("created_at")
    locale = locale_tag(order.opt_text("customer_locale"))
    return Order(
        platform=PLATFORM,
        shop_id=shop_id,
        platform_id=order.id("id", "admin_graphql_api_id"),
        number=order.opt_text("name") or order.opt_text("order_number"),
        created_at=created_at,
        updated_at=order.opt_time("updated_at") or created_at,
        customer=customer_from_rest(order, locale),
        total=order.money("total_price", currency),
        subtotal=order.money("subtotal_price", currency) if order.has("subtotal_price") else None,
        financial_status=lookup(
            FINANCIAL_STATUS, order.opt_text("financial_status"), FinancialStatus.UNKNOWN
        ),
        # Shopify sends null while nothing is fulfilled.
        fulfillment_status=lookup(
            FULFILLMENT_STATUS,
            order.opt_text("fulfillment_status") or "unfulfilled",
            FulfillmentStatus.UNKNOWN,
        ),
        lines=tuple(line_from_rest(line, currency) for line in order.items("line_items")),
        shipments=tuple(shipment_from_rest(f) for f in order.items("fulfillments")),
        refunds=tuple(refund_from_rest(r, currency) for r in order.items("refunds")),
        shipping_address=address_from_rest(order.opt_obj("shipping_address")),
        locale=locale,
        cancelled_at=order.opt_time("cancelled_at"),
        tags=split_tags(order.opt_text("tags")),
        discount_codes=tuple(code.text("code") for code in order.items("discount_codes")),
        test=order.flag("test"),
    )


def customer_from_rest(order: Reader, locale: str) -> Customer:
    """The buyer: the order's email wins (guest checkouts have no customer object)."""
    customer = order.opt_obj("customer")
    email = order.opt_text("email") or order.opt_text("contact_email")
    if customer is None:
        return Customer(email=email, locale=locale)
    consent = customer.opt_obj("email_marketing_consent")
    state = consent.opt_text("state") if consent else ""
    # Apart from email's. (2026-01's GraphQL has it only in deprecated fields, which we never
    # select: an order re-read there has unknown SMS consent, and no marketing text goes out.)
    sms = customer.opt_obj("sms_marketing_consent")
    return Customer(
        email=email or customer.opt_text("email"),
        first_name=customer.opt_text("first_name"),
        last_name=customer.opt_text("last_name"),
        locale=locale,
        marketing_consent=lookup(CONSENT_STATE, state, ConsentState.UNKNOWN),
        platform_id=customer.opt_id("id", "admin_graphql_api_id"),
        sms_consent=lookup(CONSENT_STATE, sms.opt_text("state") if sms else "", ConsentState.UNKNOWN),
    )


def line_from_rest(line: Reader, currency: str) -> LineItem:
    return LineItem(
        platform_id=line.id("id", "admin_graphql_api_id"),
        title=line.opt_text("title") or line.opt_text("name"),
        quantity=line.quantity("quantity"),
        unit_price=line.money("price", currency),
        product_id=line.opt_id("product_id"),
        variant_id=line.opt_id("variant_id"),
        sku=line.opt_text("sku"),
    )


def address_from_rest(address: Reader | None) -> Address | None:
    if address is None:
        return None
    return Address(
        first_name=address.opt_text("first_name"),
        last_name=address.opt_text("last_name"),
        company=address.opt_text("company"),
        address1=address.opt_text("address1"),
        address2=address.opt_text("address2"),
        city=address.opt_text("city"),
        province=address.opt_text("province"),
        zip=address.opt_text("zip"),
        country_code=address.opt_text("country_code"),
        phone=address.opt_text("phone"),
    )


def split_tags(tags: str) -> tuple[str, ...]:
    return tuple(tag.strip() for tag in tags.split(",") if tag.strip())


# -- fulfillments, refunds, returns -----------------------------------------


def shipment_from_rest(fulfillment: Reader) -> Shipment:
    """A fulfillment as a Shipment.

    REST has no delivered timestamp: a fulfillment whose ``shipment_status`` is
    ``delivered`` takes its ``updated_at`` (when that status was set).
    """
    if fulfillment.opt_text("status").lower() in FAILED_FULFILLMENT:
        status = ShipmentStatus.FAILURE
    else:
        status = lookup(
            SHIPMENT_STATUS, fulfillment.opt_text("shipment_status"), ShipmentStatus.UNKNOWN
        )
    return Shipment(
        platform_id=fulfillment.id("id", "admin_graphql_api_id"),
        carrier=fulfillment.opt_text("tracking_company"),
        tracking_number=fulfillment.opt_text("tracking_number"),
        tracking_url=fulfillment.opt_link("tracking_url"),
        status=status,
        shipped_at=fulfillment.opt_time("created_at"),
        delivered_at=fulfillment.opt_time("updated_at")
        if status is ShipmentStatus.DELIVERED
        else None,
        line_item_ids=tuple(
            line.id("id", "admin_graphql_api_id") for line in fulfillment.items("line_items")
        ),
    )


def exception_from_event(event: Reader, happened_at: datetime) -> ShipmentException | None:
    """A fulfillment event (REST or GraphQL: the address fields share their names) as a
    problem report, or None when its status is not a problem (in transit, delivered...)."""
    problem = lookup(SHIPMENT_PROBLEM, event.opt_text("status"), None)
    if problem is None:
        return None
    parts = [event.opt_text(key).strip() for key in ("address1", "zip", "city", "province", "country")]
    return ShipmentException(
        problem=problem,
        happened_at=happened_at,
        message=event.opt_text("message").strip(),
        location=", ".join(part for part in parts if part),
    )


def has_tracking(shipment: Shipment) -> bool:
    return bool(shipment.tracking_number or shipment.tracking_url)


def refund_from_rest(refund: Reader, currency: str) -> Refund:
    """A refund; its amount is the sum of its successful refund transactions."""
    amount: Money | None = None
    total = Decimal(0)
    seen = False
    for transaction in refund.items("transactions"):
        if transaction.opt_text("kind") not in ("refund", "") or transaction.opt_text(
            "status"
        ) not in (
            "success",
            "",
        ):
            continue
        tx_currency = transaction.currency("currency") if transaction.has("currency") else currency
        money = transaction.money("amount", tx_currency)
        if seen and amount is not None and money.currency != amount.currency:
            raise transaction.fail("currency", "differs between the refund's transactions")
        total += money.amount
        amount = Money(total, money.currency)
        seen = True
    return Refund(
        platform_id=refund.id("id", "admin_graphql_api_id"),
        created_at=refund.opt_time("processed_at") or refund.time("created_at"),
        amount=amount,
        reason=refund.opt_text("note"),
        line_item_ids=tuple(
            item.opt_id("line_item_id") or item.obj("line_item").id("id", "admin_graphql_api_id")
            for item in refund.items("refund_line_items")
        ),
    )


def return_from_rest(body: Reader, requested_at: datetime) -> ReturnRequest:
    """A ``returns/request`` body. It has no timestamp: the caller passes the delivery's."""
    reasons: list[str] = []
    line_ids: list[str] = []
    for item in body.items("return_line_items"):
        reason = item.opt_text("return_reason")
        if reason and reason not in reasons:
            reasons.append(reason)
        fulfillment_line = item.opt_obj("fulfillment_line_item")
        line = fulfillment_line.opt_obj("line_item") if fulfillment_line else None
        if line is not None:
            line_ids.append(line.id("id", "admin_graphql_api_id"))
    return ReturnRequest(
        platform_id=body.id("id", "admin_graphql_api_id"),
        requested_at=requested_at,
        status=body.opt_text("status").lower() or "requested",
        reason=", ".join(reasons),
        line_item_ids=tuple(line_ids),
    )


def partial_order(
    shop_id: str,
    order_id: str,
    when: datetime,
    *,
    number: str = "",
    currency: str = NO_CURRENCY,
    customer: Customer | None = None,
    shipments: tuple[Shipment, ...] = (),
    refunds: tuple[Refund, ...] = (),
    returns: tuple[ReturnRequest, ...] = (),
) -> Order:
    """The order behind a fulfillment/refund/return payload, as far as it tells.

    Unknown parts stay visibly unknown: statuses UNKNOWN, total 0 in the
    payload's currency (``XXX`` when it has none), customer email ``""``, no
    lines. ``created_at``/``updated_at`` are the payload's own time.
    """
    return Order(
        platform=PLATFORM,
        shop_id=shop_id,
        platform_id=order_id,
        number=number,
        created_at=when,
        updated_at=when,
        customer=customer or Customer(email=""),
        total=Money(Decimal(0), currency),
        shipments=shipments,
        refunds=refunds,
        returns=returns,
        partial=True,
    )


def is_partial(order: Order) -> bool:
    """True for an order built by :func:`partial_order`."""
    return order.partial


def line_currency(payload: Reader) -> str:
    """The shop currency as the first line item's ``price_set`` states it, else ``XXX``."""
    for line in payload.items("line_items"):
        price_set = line.opt_obj("price_set")
        shop_money = price_set.opt_obj("shop_money") if price_set else None
        if shop_money is not None and shop_money.has("currency_code"):
            return shop_money.currency("currency_code")
    return NO_CURRENCY


# -- webhook topics to events -------------------------------------------------


class WebhookMapper:
    """Turns one verified delivery's JSON body into core events."""

    def __init__(self, shop_id: str, topic: str, fallback_time: datetime) -> None:
        self.shop_id = shop_id
        self.topic = topic
        #: Triggered-At of the delivery, else the receiving time: for payloads without a timestamp.
        self.fallback_time = fallback_time

    def events(self, body: object) -> list[Event]:
        handler = {
            "orders/paid": self._order_paid,
            "orders/cancelled": self._order_cancelled,
            "fulfillments/create": self._fulfillment_created,
            "fulfillments/update": self._fulfillment_updated,
            "fulfillment_events/create": self._fulfillment_event,
            "returns/request": self._return_requested,
            "refunds/create": self._refund_created,
        }.get(self.topic)
        if handler is None:
            return []
        # Keyed by resource and transition (:mod:`.keys`), not by the delivery's headers:
        # retries and polling then give the same key, and one merchant action's
        # several topics (sharing an X-Shopify-Event-Id) stay several events.
        return [
            Event(
                kind=kind,
                shop_id=self.shop_id,
                order=order,
                occurred_at=occurred_at,
                dedupe_key=keys.event_key(
                    kind, order.platform_id, _subject_id(extra), _problem(extra)
                ),
                source="webhook",
                topic=self.topic,
                **extra,
            )
            for kind, order, occurred_at, extra in handler(Reader(self.topic, body))
        ]

    # Each handler returns (kind, order, occurred_at, extra Event fields) drafts.

    def _order_paid(self, body: Reader) -> list[tuple]:
        order = order_from_rest(body, self.shop_id)
        return [
            (EventKind.ORDER_PAID, order, body.opt_time("processed_at") or order.updated_at, {})
        ]

    def _order_cancelled(self, body: Reader) -> list[tuple]:
        order = order_from_rest(body, self.shop_id)
        return [(EventKind.ORDER_CANCELLED, order, order.cancelled_at or order.updated_at, {})]

    def _fulfillment_order(self, body: Reader, shipment: Shipment) -> Order:
        name = body.opt_text("name")  # "#1001.1": the order's name plus a sequence
        return partial_order(
            self.shop_id,
            body.id("order_id"),
            body.opt_time("updated_at") or body.time("created_at"),
            number=name.rsplit(".", 1)[0] if "." in name else "",
            currency=line_currency(body),
            shipments=(shipment,),
        )

    def _fulfillment_created(self, body: Reader) -> list[tuple]:
        shipment = shipment_from_rest(body)
        if not has_tracking(shipment) or shipment.status is ShipmentStatus.FAILURE:
            return []
        order = self._fulfillment_order(body, shipment)
        return [
            (
                EventKind.SHIPPED,
                order,
                shipment.shipped_at or order.updated_at,
                {"shipment": shipment},
            )
        ]

    def _fulfillment_updated(self, body: Reader) -> list[tuple]:
        shipment = shipment_from_rest(body)
        if shipment.status is not ShipmentStatus.DELIVERED:
            return []
        order = self._fulfillment_order(body, shipment)
        return [
            (
                EventKind.DELIVERED,
                order,
                shipment.delivered_at or order.updated_at,
                {"shipment": shipment},
            )
        ]

    def _fulfillment_event(self, body: Reader) -> list[tuple]:
        happened_at = (
            body.opt_time("happened_at") or body.opt_time("created_at") or self.fallback_time
        )
        exception = exception_from_event(body, happened_at)
        if exception is not None:
            # The event names its fulfillment; tracking and status come with the re-read order.
            shipment = Shipment(platform_id=body.id("fulfillment_id"))
            order = partial_order(
                self.shop_id, body.id("order_id"), happened_at, shipments=(shipment,)
            )
            extra = {"shipment": shipment, "exception": exception}
            return [(EventKind.SHIPMENT_EXCEPTION, order, happened_at, extra)]
        if lookup(SHIPMENT_STATUS, body.opt_text("status"), None) is not ShipmentStatus.DELIVERED:
            return []
        delivered_at = happened_at
        # The event names its fulfillment but carries no tracking details.
        shipment = Shipment(
            platform_id=body.id("fulfillment_id"),
            status=ShipmentStatus.DELIVERED,
            delivered_at=delivered_at,
        )
        order = partial_order(
            self.shop_id, body.id("order_id"), delivered_at, shipments=(shipment,)
        )
        return [(EventKind.DELIVERED, order, delivered_at, {"shipment": shipment})]

    def _return_requested(self, body: Reader) -> list[tuple]:
        request = return_from_rest(body, self.fallback_time)
        customer_data = body.opt_obj("customer")
        customer = None
        if customer_data is not None:
            consent = customer_data.opt_obj("email_marketing_consent")
            customer = Customer(
                email=customer_data.opt_text("email"),
                first_name=customer_data.opt_text("first_name"),
                last_name=customer_data.opt_text("last_name"),
                marketing_consent=lookup(
                    CONSENT_STATE,
                    consent.opt_text("state") if consent else "",
                    ConsentState.UNKNOWN,
                ),
                platform_id=customer_data.opt_id("id", "admin_graphql_api_id"),
            )
        name = body.opt_text("name")  # "#1106-R2": the order's name plus a return sequence
        order = partial_order(
            self.shop_id,
            body.obj("order").id("id", "admin_graphql_api_id"),
            self.fallback_time,
            number=name.rsplit("-R", 1)[0] if "-R" in name else "",
            customer=customer,
            returns=(request,),
        )
        return [
            (EventKind.RETURN_REQUESTED, order, request.requested_at, {"return_request": request})
        ]

    def _refund_created(self, body: Reader) -> list[tuple]:
        currency = _refund_currency(body)
        refund = refund_from_rest(body, currency)
        order = partial_order(
            self.shop_id,
            body.id("order_id"),
            refund.created_at,
            currency=refund.amount.currency if refund.amount else currency,
            refunds=(refund,),
        )
        return [(EventKind.REFUNDED, order, refund.created_at, {"refund": refund})]


def _subject_id(extra: dict) -> str:
    """The platform id of the fulfillment, return or refund an event is about."""
    for field in ("shipment", "return_request", "refund"):
        if field in extra:
            return extra[field].platform_id
    return ""


def _problem(extra: dict) -> str:
    exception = extra.get("exception")
    return exception.problem.value if exception is not None else ""


def _refund_currency(refund: Reader) -> str:
    """A refund body has no ``currency`` of its own: take it from a transaction or line."""
    for transaction in refund.items("transactions"):
        if transaction.has("currency"):
            return transaction.currency("currency")
    for item in refund.items("refund_line_items"):
        subtotal_set = item.opt_obj("subtotal_set")
        shop_money = subtotal_set.opt_obj("shop_money") if subtotal_set else None
        if shop_money is not None and shop_money.has("currency_code"):
            return shop_money.currency("currency_code")
    return NO_CURRENCY
