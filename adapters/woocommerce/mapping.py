"""WooCommerce REST v3 order payloads (= order.* webhook bodies) to core models.

Every read goes through :class:`Fields`, which raises
:class:`~aftercare.platform.PayloadError` naming the topic and the field path
when a value is missing or of the wrong kind, so a malformed payload never
surfaces as a KeyError or TypeError deep inside a hook.

WooCommerce gives ``date_*_gmt`` fields without an offset: they are UTC.
Money fields are strings ("29.35"), read as Decimal in the order currency.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from aftercare.models import (
    Address,
    ConsentState,
    Customer,
    FinancialStatus,
    FulfillmentStatus,
    LineItem,
    Money,
    Order,
    Refund,
    ReturnRequest,
    Shipment,
    ShipmentException,
    ShipmentProblem,
    ShipmentStatus,
)
from aftercare.platform import (
    ID_LENGTH,
    PayloadError,
    locale_tag,
    payload_amount,
    payload_id,
    payload_quantity,
    payload_text,
    payload_time,
    plausible_time,
    storable_text,
    tracking_link,
)

from .settings import LEGACY_META_KEYS, WooCommerceSettings, normalise_status

PLATFORM = "woocommerce"
_MISSING = object()
_WHOLE_NUMBER = re.compile(r"^-?[0-9]{1,18}$")


class Fields:
    """Typed reads from a decoded JSON payload; errors name ``topic`` and the path."""

    def __init__(self, topic: str) -> None:
        self.topic = topic

    def error(self, path: str, problem: str) -> PayloadError:
        return PayloadError(self.topic, path, problem)

    def raw(self, obj: Any, key: str, path: str, default: Any = _MISSING) -> Any:
        if not isinstance(obj, Mapping):
            raise self.error(path.rpartition(".")[0] or path, "is not an object")
        value = obj.get(key, _MISSING)
        if value is _MISSING or value is None:
            if default is _MISSING:
                raise self.error(path, "is missing")
            return default
        return value

    def mapping(self, obj: Any, key: str, path: str, default: Any = _MISSING) -> Mapping:
        value = self.raw(obj, key, path, default)
        if not isinstance(value, Mapping):
            raise self.error(path, "is not an object")
        return value

    def items(self, obj: Any, key: str, path: str) -> list[Mapping]:
        """A list of objects; absent means empty (WooCommerce omits empty lists rarely)."""
        value = self.raw(obj, key, path, [])
        if not isinstance(value, list):
            raise self.error(path, "is not a list")
        for index, item in enumerate(value):
            if not isinstance(item, Mapping):
                raise self.error(f"{path}[{index}]", "is not an object")
        return value

    def text(self, obj: Any, key: str, path: str, default: Any = _MISSING) -> str:
        value = self.raw(obj, key, path, default)
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise self.error(path, "is not text")
        return payload_text(self.topic, path, str(value))

    def ident(self, obj: Any, key: str, path: str, default: Any = _MISSING) -> str:
        """A platform id as text: ids stay strings in the core models."""
        value = self.raw(obj, key, path, default)
        if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).strip():
            raise self.error(path, "is not an id")
        return payload_id(self.topic, path, str(value))

    def integer(self, obj: Any, key: str, path: str, default: Any = _MISSING) -> int:
        value = self.raw(obj, key, path, default)
        if isinstance(value, bool):
            raise self.error(path, "is not a whole number")
        if isinstance(value, int):
            return value
        if isinstance(value, str) and _WHOLE_NUMBER.match(value.strip()):
            return int(value.strip())
        raise self.error(path, "is not a whole number")

    def decimal(self, obj: Any, key: str, path: str, default: Any = _MISSING) -> Decimal:
        value = self.raw(obj, key, path, default)
        if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
            raise self.error(path, "is not an amount")
        try:
            # str() of a float gives its shortest round-trip text ("12.99"), never binary noise.
            amount = Decimal(str(value).strip())
        except InvalidOperation:
            raise self.error(path, "is not an amount") from None
        amount = payload_amount(self.topic, path, amount)  # NaN, sNaN, 1e999999999: refused here
        return amount if amount != 0 else Decimal(0)

    def money(self, obj: Any, key: str, path: str, currency: str) -> Money:
        return Money(self.decimal(obj, key, path), currency)

    def timestamp(self, obj: Any, key: str, path: str, default: Any = _MISSING) -> datetime | None:
        value = self.raw(obj, key, path, default)
        if value is None:
            return None
        parsed = _gmt(value)
        if parsed is None:
            raise self.error(path, "is not an ISO 8601 date")
        return payload_time(self.topic, path, parsed)


def parse_gmt(value: Any) -> datetime | None:
    """Read a WooCommerce ``*_gmt`` date (no offset means UTC) in UTC; None if unreadable or
    outside the years a payload may carry (:data:`aftercare.platform.EARLIEST_TIME`...)."""
    parsed = _gmt(value)
    return plausible_time(parsed) if parsed is not None else None


def _gmt(value: Any) -> datetime | None:
    """An aware datetime, not yet converted (a year-9999 date with an offset has no UTC)."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


def meta_value(payload: Mapping, key: str) -> Any:
    """The value of an order/customer ``meta_data`` entry; the last entry wins, like
    ``get_meta($key, true)``. None when absent or when meta_data is malformed
    (meta belongs to plugins: a broken entry must not make the order unreadable)."""
    if not key:
        return None
    entries = payload.get("meta_data")
    if not isinstance(entries, list):
        return None
    found = None
    for entry in entries:
        if isinstance(entry, Mapping) and entry.get("key") == key:
            found = entry.get("value")
    return found


def order_meta_value(payload: Mapping, key: str) -> Any:
    """Order meta under ``key``, else under the key aftercare used for it before 0.2
    (``_aftercare_*``: orders keep such keys, so guests' old values still count)."""
    value = meta_value(payload, key)
    legacy = LEGACY_META_KEYS.get(key)
    return meta_value(payload, legacy) if value is None and legacy else value


def status_of(payload: Mapping, fields: Fields) -> str:
    return normalise_status(fields.text(payload, "status", "status"))


def currency_of(payload: Mapping, fields: Fields) -> str:
    currency = fields.text(payload, "currency", "currency").upper()
    if len(currency) != 3 or not currency.isascii() or not currency.isalpha():
        raise fields.error("currency", "is not an ISO 4217 code")
    return currency


@dataclass(frozen=True, slots=True)
class OrderFacts:
    """The order model plus the raw signals the transition rules look at."""

    order: Order
    status: str
    paid_at: datetime | None
    completed_at: datetime | None
    tracking: tuple[Shipment, ...]
    #: The carrier's problem report per tracking item not delivered (TrackShip meta).
    exceptions: tuple[tuple[Shipment, ShipmentException], ...] = ()


class OrderMapper:
    """Maps one shop's order payloads; the settings say where plugins keep their data."""

    def __init__(self, shop_id: str, settings: WooCommerceSettings) -> None:
        self.shop_id = shop_id
        self.settings = settings

    def order(self, payload: Any, topic: str = "order") -> Order:
        return self.facts(payload, topic).order

    def facts(self, payload: Any, topic: str = "order") -> OrderFacts:
        fields = Fields(topic)
        if not isinstance(payload, Mapping):
            raise fields.error("<body>", "is not an object")
        order_id = fields.ident(payload, "id", "id")
        status = status_of(payload, fields)
        currency = currency_of(payload, fields)
        created_at = fields.timestamp(payload, "date_created_gmt", "date_created_gmt")
        updated_at = fields.timestamp(payload, "date_modified_gmt", "date_modified_gmt", None) or created_at
        paid_at = fields.timestamp(payload, "date_paid_gmt", "date_paid_gmt", None)
        completed_at = fields.timestamp(payload, "date_completed_gmt", "date_completed_gmt", None)
        line_items = fields.items(payload, "line_items", "line_items")
        lines = tuple(self._line(item, index, currency, fields) for index, item in enumerate(line_items))
        subtotal = sum(
            (
                fields.decimal(item, "subtotal", f"line_items[{index}].subtotal")
                for index, item in enumerate(line_items)
            ),
            Decimal(0),
        )
        refunds = self._refunds(payload, currency, updated_at, fields)
        tracking, exceptions = self._tracking(payload, status, updated_at)
        shipments = tracking or self._status_shipments(order_id, status, completed_at, updated_at)
        customer = self._customer(payload, fields)
        order = Order(
            platform=PLATFORM,
            shop_id=self.shop_id,
            platform_id=order_id,
            number=fields.text(payload, "number", "number", order_id) or order_id,
            created_at=created_at,
            updated_at=updated_at,
            customer=customer,
            total=fields.money(payload, "total", "total", currency),
            financial_status=self._financial_status(status, paid_at, refunds),
            fulfillment_status=self._fulfillment_status(status, shipments),
            subtotal=Money(subtotal, currency) if lines else None,
            lines=lines,
            shipments=shipments,
            refunds=refunds,
            returns=self._returns(payload, order_id, status, updated_at),
            shipping_address=self._address(payload, fields),
            locale=self._locale(payload),
            cancelled_at=updated_at if status in self.settings.cancelled_statuses else None,
            tags=tags_from_meta(order_meta_value(payload, self.settings.tags_meta_key)),
            discount_codes=tuple(
                fields.text(line, "code", f"coupon_lines[{index}].code")
                for index, line in enumerate(fields.items(payload, "coupon_lines", "coupon_lines"))
            ),
            # The payload lacks what lives elsewhere: a registered customer's consent (on the
            # customer record) and which lines a refund covered (GET .../refunds); the worker
            # re-reads such an order through the adapter before the hooks see it.
            partial=bool(customer.platform_id) or any(not refund.lines_known for refund in refunds),
        )
        return OrderFacts(order, status, paid_at, completed_at, tracking, exceptions)

    # -- parts ------------------------------------------------------------
    def _customer(self, payload: Mapping, fields: Fields) -> Customer:
        billing = fields.mapping(payload, "billing", "billing", {})
        customer_id = fields.integer(payload, "customer_id", "customer_id", 0)
        return Customer(
            email=fields.text(billing, "email", "billing.email", "").strip(),
            first_name=fields.text(billing, "first_name", "billing.first_name", ""),
            last_name=fields.text(billing, "last_name", "billing.last_name", ""),
            locale=self._locale(payload),
            marketing_consent=consent_from_meta(order_meta_value(payload, self.settings.consent_meta_key)),
            platform_id=str(customer_id) if customer_id > 0 else "",  # 0 means a guest
        )

    def _locale(self, payload: Mapping) -> str:
        value = meta_value(payload, self.settings.locale_meta_key)
        return locale_tag(value) if isinstance(value, str) else ""

    def _line(self, item: Mapping, index: int, currency: str, fields: Fields) -> LineItem:
        path = f"line_items[{index}]"
        quantity = payload_quantity(
            fields.topic, f"{path}.quantity", fields.integer(item, "quantity", f"{path}.quantity")
        )
        subtotal = fields.decimal(item, "subtotal", f"{path}.subtotal")
        # ``price`` is a JSON number (a float); the subtotal string is exact.
        unit = subtotal / quantity if quantity > 0 else subtotal
        if isinstance(subtotal.as_tuple().exponent, int) and subtotal.as_tuple().exponent < 0:
            unit = unit.quantize(subtotal)  # same number of decimals as the shop uses
        variation = fields.integer(item, "variation_id", f"{path}.variation_id", 0)
        product = fields.integer(item, "product_id", f"{path}.product_id", 0)
        return LineItem(
            platform_id=fields.ident(item, "id", f"{path}.id"),
            title=html.unescape(fields.text(item, "name", f"{path}.name", "")),
            quantity=quantity,
            unit_price=Money(unit, currency),
            product_id=str(product) if product else "",
            variant_id=str(variation) if variation else "",
            sku=fields.text(item, "sku", f"{path}.sku", ""),
        )

    def _refunds(self, payload: Mapping, currency: str, updated_at: datetime, fields: Fields) -> tuple[Refund, ...]:
        """The order's refund summaries (``{id, reason, total: "-10.00"}``).

        They carry no date and no lines (WooCommerce 11): the order's modification
        time is when we learnt of them, and the lines are unknown until
        :meth:`refunds` reads ``GET orders/{id}/refunds``. Sorted oldest first
        (WooCommerce lists the newest first)."""
        refunds = []
        for index, item in enumerate(fields.items(payload, "refunds", "refunds")):
            path = f"refunds[{index}]"
            refund_id = fields.ident(item, "id", f"{path}.id")
            amount = fields.decimal(item, "total", f"{path}.total", None)
            refunds.append(
                Refund(
                    platform_id=refund_id,
                    created_at=updated_at,
                    amount=Money(abs(amount), currency) if amount is not None else None,
                    reason=fields.text(item, "reason", f"{path}.reason", ""),
                    lines_known=False,
                )
            )
        return tuple(sorted(refunds, key=lambda refund: _id_sort_key(refund.platform_id)))

    def refunds(self, listing: Any, currency: str, topic: str = "refunds") -> tuple[Refund, ...]:
        """``GET orders/{id}/refunds``: each refund with its date and the order lines it
        covered (a refund line names its order line in ``_refunded_item_id`` meta); a
        refund of an amount only has no lines. Sorted oldest first."""
        fields = Fields(topic)
        if not isinstance(listing, list):
            raise fields.error("<body>", "is not a list")
        refunds = []
        for index, item in enumerate(listing):
            path = f"[{index}]"
            lines, known = [], True
            for line in fields.items(item, "line_items", f"{path}.line_items"):
                refunded = meta_value(line, "_refunded_item_id")
                if isinstance(refunded, str | int) and not isinstance(refunded, bool) and str(refunded).strip():
                    lines.append(str(refunded).strip())
                else:
                    known = False  # a refund line we cannot tie to an order line: say "unknown", not "none"
            created = fields.timestamp(item, "date_created_gmt", f"{path}.date_created_gmt")
            amount = fields.decimal(item, "amount", f"{path}.amount", None)
            refunds.append(
                Refund(
                    platform_id=fields.ident(item, "id", f"{path}.id"),
                    created_at=created,
                    amount=Money(abs(amount), currency) if amount is not None else None,
                    reason=fields.text(item, "reason", f"{path}.reason", ""),
                    line_item_ids=tuple(dict.fromkeys(lines)),
                    lines_known=known,
                )
            )
        return tuple(sorted(refunds, key=lambda refund: _id_sort_key(refund.platform_id)))

    def _tracking(
        self, payload: Mapping, status: str, updated_at: datetime
    ) -> tuple[tuple[Shipment, ...], tuple[tuple[Shipment, ShipmentException], ...]]:
        """Shipment tracking items from order meta (Shipment Tracking / AST storage), and the
        carrier's problem reports about those not delivered (TrackShip's states)."""
        items = meta_value(payload, self.settings.tracking_meta_key)
        if isinstance(items, Mapping):  # a PHP array with gaps arrives as a JSON object
            items = list(items.values())
        if not isinstance(items, list):
            return (), ()
        carrier_states = meta_value(payload, self.settings.tracking_status_meta_key)
        order_delivered = status in self.settings.delivered_statuses
        shipments = []
        exceptions = []
        for index, item in enumerate(items):
            if not isinstance(item, Mapping):
                continue  # plugin data we cannot read is not a parcel
            shipment = tracking_shipment(item, index)
            if shipment is None:
                continue
            raw, state_at = _carrier_entry(carrier_states, index, shipment.tracking_number)
            state = _CARRIER_STATES.get(raw, ShipmentStatus.UNKNOWN)
            if order_delivered and state is not ShipmentStatus.DELIVERED:
                state, state_at = ShipmentStatus.DELIVERED, None
            shipment = _with_status(shipment, state, state_at)
            shipments.append(shipment)
            problem = _CARRIER_PROBLEMS.get(raw)
            if problem is not None and state is not ShipmentStatus.DELIVERED:
                # TrackShip's meta has no place of its own: nothing is said about where.
                exceptions.append((shipment, ShipmentException(problem, state_at or updated_at)))
        return tuple(shipments), tuple(exceptions)

    def _status_shipments(
        self, order_id: str, status: str, completed_at: datetime | None, updated_at: datetime
    ) -> tuple[Shipment, ...]:
        """Without tracking items, a shipped or delivered status stands for one parcel,
        and so does ``date_completed_gmt`` when "completed" means shipped: WooCommerce
        keeps it when the status moves on (return-requested, refunded), so a
        completion aftercare never saw still counts."""
        if status in self.settings.delivered_statuses:
            return (
                Shipment(
                    platform_id=status_shipment_id(order_id),
                    status=ShipmentStatus.DELIVERED,
                    shipped_at=completed_at,
                    delivered_at=updated_at,
                ),
            )
        if status in self.settings.shipped_statuses:
            return (Shipment(platform_id=status_shipment_id(order_id), shipped_at=completed_at or updated_at),)
        if completed_at is not None and "completed" in self.settings.shipped_statuses:
            return (Shipment(platform_id=status_shipment_id(order_id), shipped_at=completed_at),)
        return ()

    def _returns(self, payload: Mapping, order_id: str, status: str, updated_at: datetime) -> tuple[ReturnRequest, ...]:
        """WooCommerce core has no returns: a status or a meta entry stands for one request."""
        marker = meta_value(payload, self.settings.return_meta_key)
        if status not in self.settings.return_statuses and not marker:
            return ()
        reason = marker.strip() if isinstance(marker, str) and marker.strip() != "1" else ""
        if isinstance(marker, Mapping) and isinstance(marker.get("reason"), str):
            reason = marker["reason"]
        return (ReturnRequest(platform_id=f"order-{order_id}-return", requested_at=updated_at, reason=reason),)

    def _address(self, payload: Mapping, fields: Fields) -> Address | None:
        shipping = fields.mapping(payload, "shipping", "shipping", {})
        if not shipping:
            return None
        billing = fields.mapping(payload, "billing", "billing", {})

        def part(key: str, source: Mapping = shipping, name: str = "shipping") -> str:
            return fields.text(source, key, f"{name}.{key}", "")

        return Address(
            first_name=part("first_name"),
            last_name=part("last_name"),
            company=part("company"),
            address1=part("address_1"),
            address2=part("address_2"),
            city=part("city"),
            province=part("state"),
            zip=part("postcode"),
            country_code=part("country"),
            # shipping.phone exists since WooCommerce 5.6; older orders only have billing's.
            phone=part("phone") or part("phone", billing, "billing"),
        )

    @staticmethod
    def _financial_status(status: str, paid_at: datetime | None, refunds: Sequence[Refund]) -> FinancialStatus:
        if status == "refunded":
            return FinancialStatus.REFUNDED
        if refunds:
            return FinancialStatus.PARTIALLY_REFUNDED
        if status in ("pending", "on-hold", "failed", "checkout-draft"):
            return FinancialStatus.PENDING
        if status == "cancelled":
            return FinancialStatus.VOIDED if paid_at is None else FinancialStatus.PAID
        if paid_at is not None or status in ("processing", "completed"):
            return FinancialStatus.PAID
        return FinancialStatus.UNKNOWN

    @staticmethod
    def _fulfillment_status(status: str, shipments: Sequence[Shipment]) -> FulfillmentStatus:
        if status == "completed" or shipments:
            return FulfillmentStatus.FULFILLED
        if status in ("pending", "processing", "on-hold"):
            return FulfillmentStatus.UNFULFILLED
        return FulfillmentStatus.UNKNOWN


def status_shipment_id(order_id: str) -> str:
    """Shipment id for a parcel known only from the order status."""
    return f"order-{order_id}"


def tracking_shipment(item: Mapping, index: int) -> Shipment | None:
    """One tracking item, in the meta shape (``date_shipped`` a unix time,
    ``custom_tracking_*``) or the REST shape (``tracking_link``, ``YYYY-MM-DD``)."""

    def text(key: str) -> str:
        value = item.get(key)
        if isinstance(value, bool) or not isinstance(value, str | int):
            return ""
        value = str(value).strip()
        return value if storable_text(value) else ""

    number = text("tracking_number")
    tracking_id = text("tracking_id") or number
    if not tracking_id or len(tracking_id) > ID_LENGTH or not tracking_id.isprintable():
        return None  # it names the parcel in keys and mail headers: plugin data we cannot use
    return Shipment(
        platform_id=tracking_id,
        carrier=text("custom_tracking_provider") or text("tracking_provider"),
        tracking_number=number,
        tracking_url=tracking_link(text("tracking_link") or text("custom_tracking_link")),
        shipped_at=_shipped_date(item.get("date_shipped")),
    )


def _shipped_date(value: Any) -> datetime | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and _WHOLE_NUMBER.match(value.strip()):
        value = int(value.strip())
    if isinstance(value, int):
        try:
            return plausible_time(datetime.fromtimestamp(value, UTC))
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str):
        try:
            day = date.fromisoformat(value.strip()[:10])
        except ValueError:
            return None
        return plausible_time(datetime(day.year, day.month, day.day, tzinfo=UTC))
    return None


#: TrackShip's shipment states to the core's.
_CARRIER_STATES = {
    "delivered": ShipmentStatus.DELIVERED,
    "in_transit": ShipmentStatus.IN_TRANSIT,
    "out_for_delivery": ShipmentStatus.OUT_FOR_DELIVERY,
    "available_for_pickup": ShipmentStatus.READY_FOR_PICKUP,
    "ready_for_pickup": ShipmentStatus.READY_FOR_PICKUP,
    "attempt_fail": ShipmentStatus.ATTEMPTED_DELIVERY,
    "attempted_delivery": ShipmentStatus.ATTEMPTED_DELIVERY,
    "pre_transit": ShipmentStatus.PENDING,
    "pending": ShipmentStatus.PENDING,
    "failure": ShipmentStatus.FAILURE,
    "exception": ShipmentStatus.FAILURE,
    "return_to_sender": ShipmentStatus.FAILURE,
}


#: TrackShip's states that report a problem, or a parcel waiting to be collected.
_CARRIER_PROBLEMS = {
    "exception": ShipmentProblem.EXCEPTION,
    "failure": ShipmentProblem.FAILURE,
    "on_hold": ShipmentProblem.ON_HOLD,
    "return_to_sender": ShipmentProblem.RETURN_TO_SENDER,
    "available_for_pickup": ShipmentProblem.READY_FOR_PICKUP,
    "ready_for_pickup": ShipmentProblem.READY_FOR_PICKUP,
    "attempt_fail": ShipmentProblem.ATTEMPTED_DELIVERY,
    "attempted_delivery": ShipmentProblem.ATTEMPTED_DELIVERY,
}


def _carrier_entry(states: Any, index: int, tracking_number: str) -> tuple[str, datetime | None]:
    """A tracking item's carrier state from TrackShip-style meta, as written (lower case),
    and when it was set; ``""`` when the meta does not say. The meta is a list (or an
    object keyed by position) of ``{status, status_date}``, matched by tracking number
    when the entry has one, else by position."""
    if isinstance(states, Mapping):
        states = [states.get(str(index))] if str(index) in states else list(states.values())
    if not isinstance(states, list):
        return "", None
    entries = [entry for entry in states if isinstance(entry, Mapping)]
    match = next(
        (e for e in entries if tracking_number and e.get("tracking_number") == tracking_number),
        None,
    )
    if match is None and index < len(states) and isinstance(states[index], Mapping):
        match = states[index]
    if match is None:
        return "", None
    raw = match.get("status")
    return (raw.lower() if isinstance(raw, str) else ""), parse_gmt(match.get("status_date"))


def _with_status(shipment: Shipment, status: ShipmentStatus, at: datetime | None) -> Shipment:
    if status is ShipmentStatus.UNKNOWN:
        return shipment
    delivered_at = at if status is ShipmentStatus.DELIVERED else None
    return Shipment(
        platform_id=shipment.platform_id,
        carrier=shipment.carrier,
        tracking_number=shipment.tracking_number,
        tracking_url=shipment.tracking_url,
        status=status,
        shipped_at=shipment.shipped_at,
        delivered_at=delivered_at,
    )


def tags_from_meta(value: Any) -> tuple[str, ...]:
    """Tags kept as a comma-separated string (readable in wp-admin) or a list."""
    if isinstance(value, str):
        parts = value.split(",")
    elif isinstance(value, list):
        parts = [part for part in value if isinstance(part, str)]
    else:
        return ()
    return tuple(dict.fromkeys(part.strip() for part in parts if part.strip()))


def customer_consent(record: Any, key: str) -> ConsentState:
    """Consent from a ``GET customers/{id}`` answer (UNKNOWN if aftercare never wrote it)."""
    return consent_from_meta(meta_value(record, key)) if isinstance(record, Mapping) else ConsentState.UNKNOWN


def consent_from_meta(value: Any) -> ConsentState:
    """Consent as aftercare wrote it: ``{"state": ..., "at": ..., "source": ...}``."""
    state = value.get("state") if isinstance(value, Mapping) else value
    try:
        return ConsentState(state) if isinstance(state, str) else ConsentState.UNKNOWN
    except ValueError:
        return ConsentState.UNKNOWN


def _id_sort_key(platform_id: str) -> tuple[int, int | str]:
    return (0, int(platform_id)) if platform_id.isdigit() else (1, platform_id)
