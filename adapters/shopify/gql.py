"""GraphQL ``OrderFields`` nodes to core Orders, and events derived from order state.

Polling and the delivery watch see states, not transitions, so their events
carry keys built from the resource and the transition (``fulfillment:7:shipped``,
:mod:`.keys`): the same state seen twice gives the same key and the inbox drops
the repeat. Webhook events carry the same keys, so polling never doubles them.
"""

from __future__ import annotations

from datetime import date

from aftercare.models import (
    Address,
    ConsentState,
    Customer,
    Event,
    EventKind,
    FinancialStatus,
    FulfillmentStatus,
    LineItem,
    Order,
    Refund,
    ReturnRequest,
    Shipment,
    ShipmentException,
    ShipmentProblem,
    ShipmentStatus,
)
from aftercare.platform import birthday_date, locale_tag

from . import keys
from .payload import (
    CONSENT_STATE,
    FAILED_FULFILLMENT,
    FINANCIAL_STATUS,
    FULFILLMENT_STATUS,
    SHIPMENT_PROBLEM,
    SHIPMENT_STATUS,
    Reader,
    lookup,
)
from .webhook_payload import PLATFORM, has_tracking

#: Financial states an order only reaches after being paid.
_WAS_PAID = {FinancialStatus.PAID, FinancialStatus.PARTIALLY_REFUNDED, FinancialStatus.REFUNDED}
#: ``FulfillmentDisplayStatus`` values that are a carrier's problem report (polling).
POLLED_PROBLEM = {**SHIPMENT_PROBLEM, "not_delivered": ShipmentProblem.FAILURE}
#: Return states that mean a return exists (declined/cancelled ones never mattered).
_LIVE_RETURN = {"requested", "open", "closed"}


def order_from_graphql(node: Reader, shop_id: str) -> Order:
    total = node.money_v2("totalPriceSet")
    created_at = node.time("createdAt")
    updated_at = node.opt_time("updatedAt") or created_at
    locale = locale_tag(node.opt_text("customerLocale"))
    return Order(
        platform=PLATFORM,
        shop_id=shop_id,
        platform_id=node.id("id"),
        number=node.opt_text("name"),
        created_at=created_at,
        updated_at=updated_at,
        customer=_customer(node, locale),
        total=total,
        subtotal=node.money_v2("subtotalPriceSet") if node.has("subtotalPriceSet") else None,
        financial_status=lookup(
            FINANCIAL_STATUS, node.opt_text("displayFinancialStatus"), FinancialStatus.UNKNOWN
        ),
        fulfillment_status=lookup(
            FULFILLMENT_STATUS, node.opt_text("displayFulfillmentStatus"), FulfillmentStatus.UNKNOWN
        ),
        lines=tuple(_line(line) for line in node.nodes("lineItems")),
        shipments=tuple(_shipment(f) for f in node.items("fulfillments")),
        refunds=tuple(_refund(r) for r in node.items("refunds")),
        returns=tuple(_return(r, updated_at) for r in node.nodes("returns")),
        shipping_address=_address(node.opt_obj("shippingAddress")),
        locale=locale,
        cancelled_at=node.opt_time("cancelledAt"),
        tags=tuple(_text_list(node, "tags")),
        discount_codes=tuple(_text_list(node, "discountCodes")),
        test=node.flag("test"),
    )


def _customer(node: Reader, locale: str) -> Customer:
    customer = node.opt_obj("customer")
    email = node.opt_text("email")
    if customer is None:
        return Customer(email=email, locale=locale)
    # Customer.email and .emailMarketingConsent are deprecated since 2026-01.
    address = customer.opt_obj("defaultEmailAddress")
    return Customer(
        email=email or (address.opt_text("emailAddress") if address else ""),
        first_name=customer.opt_text("firstName"),
        last_name=customer.opt_text("lastName"),
        locale=locale or locale_tag(customer.opt_text("locale")),
        marketing_consent=lookup(
            CONSENT_STATE,
            address.opt_text("marketingState") if address else "",
            ConsentState.UNKNOWN,
        ),
        platform_id=customer.opt_id("id"),
        birthday=_birthday(customer),
    )


def _birthday(customer: Reader) -> date | None:
    """The ``birthday`` metafield the query asked for (``birthday_metafield``), as a date;
    None when not asked, not set, or not a ``YYYY-MM-DD`` date."""
    metafield = customer.opt_obj("birthday")
    return birthday_date(metafield.raw("value")) if metafield is not None else None


def _line(line: Reader) -> LineItem:
    product = line.opt_obj("product")
    variant = line.opt_obj("variant")
    return LineItem(
        platform_id=line.id("id"),
        title=line.opt_text("title"),
        quantity=line.quantity("quantity"),
        unit_price=line.money_v2("originalUnitPriceSet"),
        product_id=product.id("id") if product else "",
        variant_id=variant.id("id") if variant else "",
        sku=line.opt_text("sku"),
    )


def _shipment(fulfillment: Reader) -> Shipment:
    if fulfillment.opt_text("status").lower() in FAILED_FULFILLMENT:
        status = ShipmentStatus.FAILURE
    else:
        status = lookup(
            SHIPMENT_STATUS, fulfillment.opt_text("displayStatus"), ShipmentStatus.UNKNOWN
        )
    delivered_at = fulfillment.opt_time("deliveredAt")
    if delivered_at is not None and status is not ShipmentStatus.FAILURE:
        status = ShipmentStatus.DELIVERED
    tracking = next(fulfillment.items("trackingInfo"), None)
    return Shipment(
        platform_id=fulfillment.id("id"),
        carrier=tracking.opt_text("company") if tracking else "",
        tracking_number=tracking.opt_text("number") if tracking else "",
        tracking_url=tracking.opt_link("url") if tracking else "",
        status=status,
        shipped_at=fulfillment.opt_time("createdAt"),
        delivered_at=delivered_at
        or (fulfillment.opt_time("updatedAt") if status is ShipmentStatus.DELIVERED else None),
        line_item_ids=tuple(
            item.obj("lineItem").id("id") for item in fulfillment.nodes("fulfillmentLineItems")
        ),
    )


def _refund(refund: Reader) -> Refund:
    return Refund(
        platform_id=refund.id("id"),
        created_at=refund.time("createdAt"),
        amount=refund.money_v2("totalRefundedSet") if refund.has("totalRefundedSet") else None,
        reason=refund.opt_text("note"),
    )


def _return(node: Reader, seen_at) -> ReturnRequest:
    """A return. GraphQL gives it no timestamp: the order's updated_at stands in."""
    reasons: list[str] = []
    line_ids: list[str] = []
    for item in node.nodes("returnLineItems"):
        # returnReason is deprecated since 2026-01; the definition's handle is its
        # successor ("size-too-small"), spelled as the webhook's return_reason.
        definition = item.opt_obj("returnReasonDefinition")
        reason = definition.opt_text("handle").lower().replace("-", "_") if definition else ""
        if reason and reason not in reasons:
            reasons.append(reason)
        fulfillment_line = item.opt_obj("fulfillmentLineItem")
        line = fulfillment_line.opt_obj("lineItem") if fulfillment_line else None
        if line is not None:
            line_ids.append(line.id("id"))
    return ReturnRequest(
        platform_id=node.id("id"),
        requested_at=seen_at,
        status=node.opt_text("status").lower() or "requested",
        reason=", ".join(reasons),
        line_item_ids=tuple(line_ids),
    )


def _address(address: Reader | None) -> Address | None:
    if address is None:
        return None
    return Address(
        first_name=address.opt_text("firstName"),
        last_name=address.opt_text("lastName"),
        company=address.opt_text("company"),
        address1=address.opt_text("address1"),
        address2=address.opt_text("address2"),
        city=address.opt_text("city"),
        province=address.opt_text("province"),
        zip=address.opt_text("zip"),
        country_code=address.opt_text("countryCodeV2"),
        phone=address.opt_text("phone"),
    )


def _text_list(node: Reader, key: str) -> list[str]:
    values = node.raw(key) or []
    if not isinstance(values, list) or not all(isinstance(value, str) for value in values):
        raise node.fail(key, "is not a list of text")
    return values


# -- events from state ---------------------------------------------------------


def state_events(
    order: Order, *, ship_without_tracking: bool = False, topic: str = "poll"
) -> list[Event]:
    """Every post-sale event the order's current state implies, with state-based keys."""
    events: list[Event] = []

    def add(kind: EventKind, key: str, when, **extra) -> None:
        events.append(
            Event(
                kind=kind,
                shop_id=order.shop_id,
                order=order,
                occurred_at=when,
                dedupe_key=key,
                source="poll",
                topic=topic,
                **extra,
            )
        )

    oid = order.platform_id
    if order.financial_status in _WAS_PAID:
        add(EventKind.ORDER_PAID, keys.order_paid(oid), order.created_at)
    for shipment in order.shipments:
        if shipment.status is ShipmentStatus.FAILURE:
            continue
        if has_tracking(shipment) or ship_without_tracking:
            add(
                EventKind.SHIPPED,
                keys.shipped(shipment.platform_id),
                shipment.shipped_at or order.updated_at,
                shipment=shipment,
            )
        if shipment.status is ShipmentStatus.DELIVERED:
            add(
                EventKind.DELIVERED,
                keys.delivered(shipment.platform_id),
                shipment.delivered_at or order.updated_at,
                shipment=shipment,
            )
    for request in order.returns:
        if request.status in _LIVE_RETURN:
            add(
                EventKind.RETURN_REQUESTED,
                keys.return_requested(request.platform_id),
                request.requested_at,
                return_request=request,
            )
    for refund in order.refunds:
        add(EventKind.REFUNDED, keys.refunded(refund.platform_id), refund.created_at, refund=refund)
    if order.cancelled_at is not None:
        add(EventKind.ORDER_CANCELLED, keys.order_cancelled(oid), order.cancelled_at)
    return events


def exception_events(node: Reader, order: Order, *, topic: str = "poll") -> list[Event]:
    """The problem each fulfillment's ``displayStatus`` reports now (attempted delivery,
    delayed, failure or not delivered, ready for pickup), with the webhook's keys.

    Polling reads no fulfillment events (each would cost the poll page points it does
    not have), so these carry neither the carrier's message nor where the parcel is:
    the webhook's event, when it came first, has them. A fulfillment that failed before
    leaving (``status`` error, failure, cancelled) is not a carrier's report.
    """
    if order.cancelled_at is not None:
        return []
    events: list[Event] = []
    for fulfillment in node.items("fulfillments"):
        if fulfillment.opt_text("status").lower() in FAILED_FULFILLMENT:
            continue
        problem = lookup(POLLED_PROBLEM, fulfillment.opt_text("displayStatus"), None)
        shipment = order.shipment(fulfillment.id("id"))
        if problem is None or shipment is None:
            continue
        when = fulfillment.opt_time("updatedAt") or order.updated_at
        events.append(
            Event(
                kind=EventKind.SHIPMENT_EXCEPTION,
                shop_id=order.shop_id,
                order=order,
                occurred_at=when,
                dedupe_key=keys.shipment_exception(shipment.platform_id, problem.value),
                shipment=shipment,
                exception=ShipmentException(problem=problem, happened_at=when),
                source="poll",
                topic=topic,
            )
        )
    return events


def awaits_delivery(order: Order) -> bool:
    """A live order with a tracked parcel on its way: the delivery watch keeps re-reading it.

    A parcel without tracking number or URL (marked as fulfilled by hand) has no
    carrier to report its delivery, so watching it would only cost calls."""
    return order.cancelled_at is None and any(
        shipment.status not in (ShipmentStatus.DELIVERED, ShipmentStatus.FAILURE)
        and has_tracking(shipment)
        for shipment in order.shipments
    )
