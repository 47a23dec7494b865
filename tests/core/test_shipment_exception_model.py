"""The shipment_exception event kind: its hook, its report's rules, and its round trip through the store's JSON."""

from datetime import datetime, timedelta, timezone

import pytest

from aftercare.models import Event, EventKind, ShipmentException, ShipmentProblem
from aftercare.plugin_manager import POST_SALE_HOOKS
from aftercare.testing import START, make_order


def test_the_kind_has_its_hook():
    assert EventKind.SHIPMENT_EXCEPTION.hook == "on_shipment_exception"
    assert "on_shipment_exception" in POST_SALE_HOOKS
    from aftercare import hookspecs

    assert "ATTEMPTED_DELIVERY" in hookspecs.on_shipment_exception.__doc__.upper()


def test_a_report_round_trips_with_its_event():
    order = make_order()
    report = ShipmentException(ShipmentProblem.READY_FOR_PICKUP, START, "Held", "Calle Mayor 12, 28013, Madrid, ES")
    event = Event(
        kind=EventKind.SHIPMENT_EXCEPTION, shop_id=order.shop_id, order=order, occurred_at=START,
        dedupe_key="fulfillment:1:ready_for_pickup", shipment=order.shipments[0], exception=report,
    )  # fmt: skip
    again = Event.from_json(event.to_json())
    assert again == event and again.exception.problem is ShipmentProblem.READY_FOR_PICKUP
    assert again.with_whole_order(order).exception == report


def test_a_report_time_is_utc():
    with pytest.raises(ValueError, match="ShipmentException.happened_at must be a timezone-aware UTC datetime"):
        ShipmentException(ShipmentProblem.FAILURE, datetime(2026, 3, 2, 9, tzinfo=timezone(timedelta(hours=1))))
