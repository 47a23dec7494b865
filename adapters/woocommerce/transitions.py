"""From whole-order snapshots to post-sale events.

WooCommerce sends the whole order on every change (and may collapse several
quick changes into one delivery), never "what changed". We remember, per order,
which transitions have already produced an event (a :class:`SeenState` in the
shop state) and emit only the new ones. The memory only grows: a redelivery,
an out-of-order older delivery or a poll of the same change finds nothing new.

Dedupe keys name the transition, not the delivery, so the webhook and the
poller give the same key for the same change:

=====================  ==========================================
paid                   ``order:{order}:paid``
shipped (tracking)     ``tracking:{order}:{tracking_id}:shipped``
shipped (status)       ``order:{order}:shipped`` (also from ``date_completed_gmt``)
delivered (tracking)   ``tracking:{order}:{tracking_id}:delivered``
delivered (status)     ``order:{order}:delivered``
carrier problem        ``tracking:{order}:{tracking_id}:{problem}`` (``...:failure``)
return requested       ``order:{order}:return_requested``
refunded               ``refund:{refund}``
cancelled              ``order:{order}:cancelled``
=====================  ==========================================
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aftercare.models import Event, EventKind, Shipment, ShipmentStatus

from .mapping import OrderFacts, status_shipment_id
from .settings import WooCommerceSettings


def state_key(order_id: str) -> str:
    return f"order:{order_id}"


@dataclass(slots=True)
class SeenState:
    """What has already been reported for one order (JSON-ready via as_json)."""

    paid: bool = False
    shipped: list[str] = field(default_factory=list)
    delivered: list[str] = field(default_factory=list)
    #: ``{tracking_id}:{problem}`` of each carrier problem already reported.
    exceptions: list[str] = field(default_factory=list)
    refunds: list[str] = field(default_factory=list)
    return_requested: bool = False
    cancelled: bool = False
    modified: str = ""

    @classmethod
    def from_json(cls, value: Any) -> SeenState:
        """Read stored state; anything unreadable counts as "nothing seen yet"."""
        if not isinstance(value, dict):
            return cls()

        def names(key: str) -> list[str]:
            items = value.get(key)
            return [str(i) for i in items] if isinstance(items, list) else []

        return cls(
            paid=value.get("paid") is True,
            shipped=names("shipped"),
            delivered=names("delivered"),
            exceptions=names("exceptions"),
            refunds=names("refunds"),
            return_requested=value.get("return_requested") is True,
            cancelled=value.get("cancelled") is True,
            modified=str(value.get("modified") or ""),
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "paid": self.paid,
            "shipped": self.shipped,
            "delivered": self.delivered,
            "exceptions": self.exceptions,
            "refunds": self.refunds,
            "return_requested": self.return_requested,
            "cancelled": self.cancelled,
            "modified": self.modified,
        }


def derive_events(
    facts: OrderFacts,
    seen: SeenState,
    settings: WooCommerceSettings,
    *,
    source: str,
    topic: str,
) -> list[Event]:
    """Events for the transitions in ``facts`` not yet in ``seen``, in lifecycle
    order (paid, shipped, carrier problems, delivered, return, refunded, cancelled). ``seen`` is
    updated in place; the caller stores it."""
    order = facts.order
    oid = order.platform_id
    events: list[Event] = []

    def emit(kind: EventKind, key: str, at: datetime | None, **about: Any) -> None:
        events.append(
            Event(
                kind=kind,
                shop_id=order.shop_id,
                order=order,
                occurred_at=at or order.updated_at,
                dedupe_key=key,
                source=source,
                topic=topic,
                **about,
            )
        )

    if not seen.paid and (facts.paid_at is not None or facts.status in settings.paid_statuses):
        seen.paid = True
        emit(EventKind.ORDER_PAID, f"order:{oid}:paid", facts.paid_at)

    # A parcel first learnt of when the order is already cancelled or refunded in full (the
    # completion was missed, or coalesced with what followed) is remembered but not announced:
    # a tracking notice or a warranty for money already given back is noise.
    moot = facts.status in settings.cancelled_statuses or facts.status == "refunded"
    for shipment in _shipped(facts, seen):
        seen.shipped.append(shipment.platform_id)
        if moot:
            continue
        emit(
            EventKind.SHIPPED,
            _shipment_key(oid, shipment, "shipped"),
            shipment.shipped_at,
            shipment=shipment,
        )

    for shipment, exception in facts.exceptions:
        name = f"{shipment.platform_id}:{exception.problem.value}"
        if name in seen.exceptions:
            continue
        seen.exceptions.append(name)
        if moot:
            continue
        emit(
            EventKind.SHIPMENT_EXCEPTION,
            _shipment_key(oid, shipment, exception.problem.value),
            exception.happened_at,
            shipment=shipment,
            exception=exception,
        )

    for shipment in order.shipments:
        if shipment.status is ShipmentStatus.DELIVERED and shipment.platform_id not in seen.delivered:
            seen.delivered.append(shipment.platform_id)
            emit(
                EventKind.DELIVERED,
                _shipment_key(oid, shipment, "delivered"),
                shipment.delivered_at,
                shipment=shipment,
            )

    if order.returns and not seen.return_requested:
        seen.return_requested = True
        request = order.returns[0]
        emit(
            EventKind.RETURN_REQUESTED,
            f"order:{oid}:return_requested",
            request.requested_at,
            return_request=request,
        )

    for refund in order.refunds:
        if refund.platform_id not in seen.refunds:
            seen.refunds.append(refund.platform_id)
            emit(EventKind.REFUNDED, f"refund:{refund.platform_id}", refund.created_at, refund=refund)

    if order.is_cancelled and not seen.cancelled:
        seen.cancelled = True
        emit(EventKind.ORDER_CANCELLED, f"order:{oid}:cancelled", order.cancelled_at)

    seen.modified = max(seen.modified, order.updated_at.isoformat())
    return events


def _shipped(facts: OrderFacts, seen: SeenState) -> list[Shipment]:
    """Parcels not reported yet. Tracking items each count once; the order status
    stands for a parcel only while no tracking item was ever seen, so a shop that
    adds tracking and then completes the order sends one notice, not two.

    A parcel first seen already delivered gets no "shipped" (a tracking notice
    after delivery is noise), only "delivered"."""
    if facts.tracking:
        return [
            shipment
            for shipment in facts.tracking
            if shipment.platform_id not in seen.shipped and shipment.status is not ShipmentStatus.DELIVERED
        ]
    status_id = status_shipment_id(facts.order.platform_id)
    if seen.shipped:
        return []
    return [
        shipment
        for shipment in facts.order.shipments
        if shipment.platform_id == status_id and shipment.status is not ShipmentStatus.DELIVERED
    ]


def _shipment_key(order_id: str, shipment: Shipment, what: str) -> str:
    if shipment.platform_id == status_shipment_id(order_id):
        return f"order:{order_id}:{what}"
    return f"tracking:{order_id}:{shipment.platform_id}:{what}"
