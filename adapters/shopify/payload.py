"""Safe reading of Shopify JSON (webhook bodies and GraphQL responses).

Every mapping reads through :class:`Reader`, so a missing or mistyped field
becomes a :class:`~aftercare.platform.PayloadError` naming the topic and the
field path (``line_items[0].price``) instead of a ``KeyError`` or
``TypeError`` deep inside the adapter.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from aftercare.models import (
    ConsentState,
    FinancialStatus,
    FulfillmentStatus,
    Money,
    ShipmentProblem,
    ShipmentStatus,
)
from aftercare.platform import (
    PayloadError,
    payload_amount,
    payload_id,
    payload_quantity,
    payload_text,
    payload_time,
    tracking_link,
)

_GID = re.compile(r"^gid://shopify/([A-Za-z]+)/(\d+)(?:\?.*)?$")
_NUMERIC = re.compile(r"^\d+$")

#: Used for the order total when a payload (a fulfillment, a return) does not carry
#: its order's amounts: ISO 4217 "no currency", so it cannot be mistaken for a price.
NO_CURRENCY = "XXX"


def gid(kind: str, platform_id: str) -> str:
    """The GraphQL global id of a numeric id (``gid://shopify/Order/1``); gids pass through."""
    return (
        platform_id if platform_id.startswith("gid://") else f"gid://shopify/{kind}/{platform_id}"
    )


def numeric_id(value: str) -> str | None:
    """The numeric tail of a gid, or the value itself if it is already numeric."""
    match = _GID.match(value)
    if match:
        return match.group(2)
    return value if _NUMERIC.match(value) else None


class Reader:
    """A view of one JSON object that knows its topic and path, for error messages."""

    def __init__(self, topic: str, data: Any, path: str = "") -> None:
        if not isinstance(data, Mapping):
            raise PayloadError(topic, path or "<body>", "is not an object")
        self.topic = topic
        self.data = data
        self.path = path

    def _where(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def fail(self, key: str, problem: str) -> PayloadError:
        return PayloadError(self.topic, self._where(key), problem)

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def raw(self, key: str) -> Any:
        return self.data.get(key)

    # -- nested structures ---------------------------------------------
    def obj(self, key: str) -> Reader:
        if self.data.get(key) is None:
            raise self.fail(key, "is missing")
        return Reader(self.topic, self.data[key], self._where(key))

    def opt_obj(self, key: str) -> Reader | None:
        return None if self.data.get(key) is None else self.obj(key)

    def items(self, key: str) -> Iterator[Reader]:
        """The objects of a list field; an absent or null list is empty."""
        value = self.data.get(key)
        if value is None:
            return
        if not isinstance(value, list):
            raise self.fail(key, "is not a list")
        for index, item in enumerate(value):
            yield Reader(self.topic, item, f"{self._where(key)}[{index}]")

    def nodes(self, key: str) -> Iterator[Reader]:
        """The nodes of a GraphQL connection (``{nodes: [...]}``) or a plain list."""
        value = self.data.get(key)
        if isinstance(value, Mapping):
            yield from self.obj(key).items("nodes")
        else:
            yield from self.items(key)

    # -- scalars -------------------------------------------------------
    def text(self, key: str) -> str:
        value = self.data.get(key)
        if value is None:
            raise self.fail(key, "is missing")
        if not isinstance(value, str):
            raise self.fail(key, "is not text")
        return payload_text(self.topic, self._where(key), value)

    def opt_text(self, key: str) -> str:
        """Text or ``""``: Shopify sends null for empty names, notes and carriers."""
        value = self.data.get(key)
        if value is None:
            return ""
        if not isinstance(value, str | int) or isinstance(value, bool):
            raise self.fail(key, "is not text")
        return payload_text(self.topic, self._where(key), str(value))

    def opt_link(self, key: str) -> str:
        """An http(s) link or ``""``: anything else (``javascript:``, relative) is dropped, never mailed."""
        return tracking_link(self.opt_text(key))

    def integer(self, key: str, default: int | None = None) -> int:
        value = self.data.get(key)
        if value is None and default is not None:
            return default
        if not isinstance(value, int) or isinstance(value, bool):
            raise self.fail(key, "is missing" if value is None else "is not an integer")
        return value

    def quantity(self, key: str) -> int:
        return payload_quantity(self.topic, self._where(key), self.integer(key))

    def flag(self, key: str) -> bool:
        value = self.data.get(key, False)
        if value is None:
            return False
        if not isinstance(value, bool):
            raise self.fail(key, "is not true/false")
        return value

    def id(self, key: str = "id", gid_key: str | None = None) -> str:
        """An id as a string of digits, never via float.

        The ``admin_graphql_api_id`` (a string) wins over the numeric ``id``:
        payloads that passed through JavaScript carry rounded numbers but the
        gid string survives intact.
        """
        if gid_key and isinstance(self.data.get(gid_key), str):
            tail = numeric_id(self.data[gid_key])
            if tail:
                return payload_id(self.topic, self._where(gid_key), tail)
        value = self.data.get(key)
        if value is None:
            raise self.fail(key, "is missing")
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise self.fail(key, "is not an id")
        text = numeric_id(str(value))
        if text is None:
            raise self.fail(key, f"is not a Shopify id: {value!r}")
        return payload_id(self.topic, self._where(key), text)

    def opt_id(self, key: str, gid_key: str | None = None) -> str:
        if self.data.get(key) is None and (gid_key is None or self.data.get(gid_key) is None):
            return ""
        return self.id(key, gid_key)

    def time(self, key: str) -> datetime:
        value = self.opt_time(key)
        if value is None:
            raise self.fail(key, "is missing")
        return value

    def opt_time(self, key: str) -> datetime | None:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.fail(key, "is not a timestamp")
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise self.fail(key, f"is not an ISO 8601 timestamp: {value!r}") from None
        if parsed.tzinfo is None:
            raise self.fail(key, f"has no time zone: {value!r}")
        return payload_time(self.topic, self._where(key), parsed)

    def money(self, key: str, currency: str) -> Money:
        value = self.data.get(key)
        if value is None:
            raise self.fail(key, "is missing")
        return self.amount_of(key, value, currency)

    def amount_of(self, key: str, value: Any, currency: str) -> Money:
        # JSON numbers arrive as int or float; go through their text, never float math.
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self.fail(key, "is not an amount")
        try:
            amount = Decimal(str(value).strip())
        except InvalidOperation:
            raise self.fail(key, f"is not an amount: {value!r}") from None
        amount = payload_amount(self.topic, self._where(key), amount)
        try:
            return Money(amount, currency)
        except (TypeError, ValueError) as exc:
            raise self.fail(key, str(exc)) from None

    def currency(self, key: str) -> str:
        value = self.text(key).upper()
        if not re.fullmatch(r"[A-Z]{3}", value):
            raise self.fail(key, f"is not an ISO 4217 currency: {value!r}")
        return value

    def money_v2(self, key: str) -> Money:
        """A GraphQL ``MoneyBag``'s shop money (``{shopMoney {amount currencyCode}}``)."""
        shop_money = self.obj(key).obj("shopMoney")
        return shop_money.money("amount", shop_money.currency("currencyCode"))


# -- status vocabularies ----------------------------------------------------
# REST sends lower case, GraphQL upper case; both are looked up lower-cased.

FINANCIAL_STATUS = {
    "pending": FinancialStatus.PENDING,
    "authorized": FinancialStatus.AUTHORIZED,
    "partially_paid": FinancialStatus.PARTIALLY_PAID,
    "paid": FinancialStatus.PAID,
    "partially_refunded": FinancialStatus.PARTIALLY_REFUNDED,
    "refunded": FinancialStatus.REFUNDED,
    "voided": FinancialStatus.VOIDED,
    # The authorisation lapsed: no money was taken, as with a void.
    "expired": FinancialStatus.VOIDED,
}

#: REST ``fulfillment_status`` (null = nothing shipped) and GraphQL ``displayFulfillmentStatus``.
FULFILLMENT_STATUS = {
    "fulfilled": FulfillmentStatus.FULFILLED,
    "partial": FulfillmentStatus.PARTIAL,
    "partially_fulfilled": FulfillmentStatus.PARTIAL,
    "unfulfilled": FulfillmentStatus.UNFULFILLED,
    "pending": FulfillmentStatus.UNFULFILLED,
    "pending_fulfillment": FulfillmentStatus.UNFULFILLED,
    "open": FulfillmentStatus.UNFULFILLED,
    "in_progress": FulfillmentStatus.UNFULFILLED,
    "on_hold": FulfillmentStatus.UNFULFILLED,
    "scheduled": FulfillmentStatus.UNFULFILLED,
    "request_declined": FulfillmentStatus.UNFULFILLED,
    # Items went back to stock: nothing is on its way to the customer.
    "restocked": FulfillmentStatus.UNFULFILLED,
}

#: REST ``shipment_status`` / ``fulfillment_event.status`` and GraphQL ``displayStatus``
#: (every ``FulfillmentDisplayStatus`` of 2026-01 is here; a test checks it).
SHIPMENT_STATUS = {
    # The parcel was handed over and no carrier event has arrived since (with tracking, the
    # carrier's events move it on; "marked as fulfilled" by hand usually has none).
    "fulfilled": ShipmentStatus.IN_TRANSIT,
    "marked_as_fulfilled": ShipmentStatus.IN_TRANSIT,
    "label_purchased": ShipmentStatus.PENDING,
    "label_printed": ShipmentStatus.PENDING,
    "confirmed": ShipmentStatus.PENDING,
    "submitted": ShipmentStatus.PENDING,
    "carrier_picked_up": ShipmentStatus.IN_TRANSIT,
    "in_transit": ShipmentStatus.IN_TRANSIT,
    "delayed": ShipmentStatus.IN_TRANSIT,
    "out_for_delivery": ShipmentStatus.OUT_FOR_DELIVERY,
    "attempted_delivery": ShipmentStatus.ATTEMPTED_DELIVERY,
    "ready_for_pickup": ShipmentStatus.READY_FOR_PICKUP,
    "delivered": ShipmentStatus.DELIVERED,
    # Local pickup: the customer has the parcel.
    "picked_up": ShipmentStatus.DELIVERED,
    "failure": ShipmentStatus.FAILURE,
    "not_delivered": ShipmentStatus.FAILURE,
    "canceled": ShipmentStatus.FAILURE,
    "label_voided": ShipmentStatus.FAILURE,
}

#: Fulfillment event statuses (REST lower case, GraphQL upper) that are a problem report,
#: or a parcel waiting to be collected: ``shipment_exception``.
SHIPMENT_PROBLEM = {
    "attempted_delivery": ShipmentProblem.ATTEMPTED_DELIVERY,
    "delayed": ShipmentProblem.DELAYED,
    "failure": ShipmentProblem.FAILURE,
    "ready_for_pickup": ShipmentProblem.READY_FOR_PICKUP,
}

#: Fulfillment ``status`` values (REST and GraphQL) meaning nothing left the warehouse.
FAILED_FULFILLMENT = {"cancelled", "error", "failure"}

CONSENT_STATE = {
    "subscribed": ConsentState.SUBSCRIBED,
    "not_subscribed": ConsentState.NOT_SUBSCRIBED,
    "unsubscribed": ConsentState.UNSUBSCRIBED,
    "pending": ConsentState.PENDING,
}


def lookup(table: Mapping[str, Any], value: str, default: Any) -> Any:
    return table.get(value.lower(), default) if value else default
