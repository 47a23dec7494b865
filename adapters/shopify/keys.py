"""Dedupe keys of Shopify events: the resource and its transition, shared by webhooks and polling.

A webhook and a poll that see the same change give the same key, so the inbox
(unique on shop and key) stores it once whichever comes first; a webhook retry,
a second subscription to the topic and the second topic announcing the same
transition (``fulfillment_events/create`` and ``fulfillments/update``) add
nothing. Two different changes never share a key, even when one merchant
action produced both (a cancel with a refund shares one ``X-Shopify-Event-Id``).
"""

from __future__ import annotations

from aftercare.models import EventKind


def order_paid(order_id: str) -> str:
    return f"order:{order_id}:paid"


def order_cancelled(order_id: str) -> str:
    return f"order:{order_id}:cancelled"


def shipped(fulfillment_id: str) -> str:
    return f"fulfillment:{fulfillment_id}:shipped"


def delivered(fulfillment_id: str) -> str:
    return f"fulfillment:{fulfillment_id}:delivered"


def shipment_exception(fulfillment_id: str, problem: str) -> str:
    """One per parcel and problem: ``fulfillment:7:failure``, ``fulfillment:7:ready_for_pickup``."""
    return f"fulfillment:{fulfillment_id}:{problem}"


def return_requested(return_id: str) -> str:
    return f"return:{return_id}:requested"


def refunded(refund_id: str) -> str:
    return f"refund:{refund_id}"


def event_key(kind: EventKind, order_id: str, subject_id: str = "", problem: str = "") -> str:
    """The key of ``kind`` for an order, or for its fulfillment, return or refund
    (and, for a shipment exception, the problem)."""
    if kind is EventKind.ORDER_PAID:
        return order_paid(order_id)
    if kind is EventKind.ORDER_CANCELLED:
        return order_cancelled(order_id)
    if kind is EventKind.SHIPPED:
        return shipped(subject_id)
    if kind is EventKind.DELIVERED:
        return delivered(subject_id)
    if kind is EventKind.SHIPMENT_EXCEPTION:
        return shipment_exception(subject_id, problem)
    if kind is EventKind.RETURN_REQUESTED:
        return return_requested(subject_id)
    if kind is EventKind.REFUNDED:
        return refunded(subject_id)
    raise ValueError(f"no Shopify dedupe key for {kind.value}")
