"""Whole-order deliveries to post-sale events: each transition exactly once, in
lifecycle order, whether the steps arrive one by one, collapsed or twice."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from aftercare.models import EventKind, Money, ShipmentStatus
from aftercare.platform import MemoryShopState

TRACKING_ID = "7f4978c390ee633c6294ae0f258656f9"


def kinds(events):
    return [event.kind for event in events]


def test_step_by_step_gives_paid_shipped_refunded_once_each(deliver, lifecycle):
    paid = deliver(lifecycle["processing"], topic="order.created")
    shipped = deliver(lifecycle["tracked"])
    completed = deliver(lifecycle["completed"])
    refunded = deliver(lifecycle["refunded"])

    assert kinds(paid) == [EventKind.ORDER_PAID]
    assert kinds(shipped) == [EventKind.SHIPPED]
    assert completed == []  # the tracking item already said "shipped"
    assert kinds(refunded) == [EventKind.REFUNDED]

    (paid_event,) = paid
    assert paid_event.dedupe_key == "order:727:paid"
    assert paid_event.occurred_at == datetime(2017, 3, 22, 19, 28, 8, tzinfo=UTC)
    assert (paid_event.topic, paid_event.source, paid_event.shop_id) == (
        "order.created",
        "webhook",
        "wc1",
    )
    assert paid_event.order.platform_id == "727"

    (shipped_event,) = shipped
    assert shipped_event.dedupe_key == f"tracking:727:{TRACKING_ID}:shipped"
    assert shipped_event.shipment.tracking_number == "9400111899560000000000"
    assert shipped_event.topic == "order.updated"

    (refund_event,) = refunded
    assert refund_event.dedupe_key == "refund:726"
    assert refund_event.refund.amount == Money(Decimal("10.00"), "USD")


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        (["tracked"], [EventKind.ORDER_PAID, EventKind.SHIPPED]),
        (["processing", "completed"], [EventKind.ORDER_PAID, EventKind.SHIPPED]),
        (["processing", "refunded"], [EventKind.ORDER_PAID, EventKind.SHIPPED, EventKind.REFUNDED]),
        (["refunded"], [EventKind.ORDER_PAID, EventKind.SHIPPED, EventKind.REFUNDED]),
    ],
)
def test_collapsed_steps_give_each_transition_once_in_lifecycle_order(deliver, lifecycle, steps, expected):
    events = [event for step in steps for event in deliver(lifecycle[step])]
    assert kinds(events) == expected
    assert len({event.dedupe_key for event in events}) == len(events)
    assert deliver(lifecycle[steps[-1]]) == []  # redelivered


def test_collapsed_delivery_lists_events_in_lifecycle_order(deliver, lifecycle):
    assert kinds(deliver(lifecycle["refunded"])) == [
        EventKind.ORDER_PAID,
        EventKind.SHIPPED,
        EventKind.REFUNDED,
    ]


def test_redelivery_yields_nothing_new(deliver, lifecycle):
    for step in ("processing", "tracked", "completed", "refunded"):
        deliver(lifecycle[step])
    for step in ("processing", "tracked", "completed", "refunded"):
        assert deliver(lifecycle[step]) == []


def test_late_older_delivery_yields_nothing(deliver, lifecycle):
    deliver(lifecycle["refunded"])
    assert deliver(lifecycle["processing"]) == []


def test_webhook_and_poll_of_the_same_change_share_keys(make_adapter, lifecycle):
    state = MemoryShopState()
    webhook_side = make_adapter(state)
    fresh_side = make_adapter()  # a shop that only polls
    webhook_events = webhook_side._events_for(lifecycle["refunded"], source="webhook", topic="x")
    poll_events = fresh_side._events_for(lifecycle["refunded"], source="poll", topic="")
    assert [e.dedupe_key for e in webhook_events] == [e.dedupe_key for e in poll_events]
    # ...and once one has seen it, the other finds nothing to add.
    assert make_adapter(state)._events_for(lifecycle["refunded"], source="poll", topic="") == []


def test_completed_without_tracking_means_shipped(deliver, lifecycle):
    deliver(lifecycle["processing"])
    (event,) = deliver(copy.deepcopy(lifecycle["completed"]) | {"meta_data": []})
    assert event.kind is EventKind.SHIPPED
    assert event.dedupe_key == "order:727:shipped"
    assert event.shipment.platform_id == "order-727"


@pytest.mark.parametrize("later", ["return-requested", "delivered-late", "on-hold"])
def test_a_completion_seen_only_after_the_status_moved_on_still_ships_once(deliver, lifecycle, later):
    """WooCommerce keeps date_completed_gmt: completed then moved on (coalesced, or missed)."""
    deliver(lifecycle["processing"])
    moved_on = copy.deepcopy(lifecycle["completed"]) | {"meta_data": [], "status": later}
    shipped = [e for e in deliver(moved_on) if e.kind is EventKind.SHIPPED]
    assert [(e.dedupe_key, e.occurred_at) for e in shipped] == [
        ("order:727:shipped", datetime(2017, 3, 22, 19, 30, 35, tzinfo=UTC))  # date_completed_gmt
    ]
    assert deliver(moved_on) == [] and deliver(copy.deepcopy(lifecycle["completed"]) | {"meta_data": []}) == []


@pytest.mark.parametrize("status", ["cancelled", "refunded"])
def test_a_completion_learnt_of_only_once_cancelled_or_refunded_is_not_announced(deliver, lifecycle, status):
    deliver(lifecycle["processing"])
    gone = copy.deepcopy(lifecycle["completed"]) | {"meta_data": [], "status": status}
    assert EventKind.SHIPPED not in kinds(deliver(gone))
    assert [e for e in deliver(copy.deepcopy(lifecycle["completed"]) | {"meta_data": []})] == []  # remembered


def test_without_completed_among_shipped_statuses_the_completion_date_ships_nothing(make_adapter, deliver, lifecycle):
    adapter = make_adapter(shipped_statuses=())
    moved_on = copy.deepcopy(lifecycle["completed"]) | {"meta_data": [], "status": "return-requested"}
    assert EventKind.SHIPPED not in kinds(deliver(moved_on, target=adapter))


def test_two_tracking_items_ship_twice(deliver, lifecycle, with_meta):
    order = lifecycle["tracked"]
    (item,) = next(m["value"] for m in order["meta_data"] if m["key"] == "_wc_shipment_tracking_items")
    second = item | {"tracking_id": "second", "tracking_number": "1Z999"}
    deliver(order)
    events = deliver(with_meta(order, "_wc_shipment_tracking_items", [item, second]))
    assert [(e.kind, e.dedupe_key) for e in events] == [(EventKind.SHIPPED, "tracking:727:second:shipped")]


def test_delivered_status_delivers_each_tracked_parcel(deliver, lifecycle):
    deliver(lifecycle["tracked"])
    delivered = copy.deepcopy(lifecycle["tracked"]) | {"status": "delivered"}
    (event,) = deliver(delivered)
    assert event.kind is EventKind.DELIVERED
    assert event.dedupe_key == f"tracking:727:{TRACKING_ID}:delivered"
    assert event.shipment.status is ShipmentStatus.DELIVERED
    assert deliver(delivered) == []


def test_trackship_delivered_status(deliver, lifecycle, with_meta):
    deliver(lifecycle["tracked"])
    order = with_meta(lifecycle["tracked"], "shipment_status", [{"status": "delivered"}], 30000)
    assert kinds(deliver(order)) == [EventKind.DELIVERED]


def test_delivered_status_without_tracking(deliver, lifecycle):
    deliver(lifecycle["processing"])
    (event,) = deliver(copy.deepcopy(lifecycle["processing"]) | {"status": "wc-delivered"})
    assert (event.kind, event.dedupe_key) == (EventKind.DELIVERED, "order:727:delivered")


def test_return_requested_by_status_and_by_meta(make_adapter, deliver, lifecycle, with_meta):
    deliver(lifecycle["processing"])
    events = deliver(copy.deepcopy(lifecycle["completed"]) | {"status": "return-requested"})
    assert kinds(events) == [EventKind.SHIPPED, EventKind.RETURN_REQUESTED]

    other = make_adapter()
    from_meta = with_meta(lifecycle["completed"], "_aftercare_return_request", "too small")
    events = deliver(from_meta, target=other)
    (request,) = [e for e in events if e.kind is EventKind.RETURN_REQUESTED]
    assert request.return_request.reason == "too small"
    assert request.dedupe_key == "order:727:return_requested"


def test_cancelled_once(deliver, lifecycle):
    cancelled = copy.deepcopy(lifecycle["processing"]) | {"status": "cancelled"}
    deliver(lifecycle["processing"])
    (event,) = deliver(cancelled)
    assert (event.kind, event.dedupe_key) == (EventKind.ORDER_CANCELLED, "order:727:cancelled")
    assert deliver(cancelled) == []


def test_pending_order_is_not_paid(deliver, lifecycle):
    pending = copy.deepcopy(lifecycle["processing"]) | {
        "status": "pending",
        "date_paid": None,
        "date_paid_gmt": None,
    }
    assert deliver(pending, topic="order.created") == []
    assert kinds(deliver(lifecycle["processing"])) == [EventKind.ORDER_PAID]


def test_each_new_refund_once(deliver, lifecycle):
    deliver(lifecycle["refunded"])
    second = copy.deepcopy(lifecycle["refunded"])
    second["refunds"].insert(0, {"id": 730, "reason": "damaged", "total": "-5.00"})
    (event,) = deliver(second)
    assert (event.dedupe_key, event.refund.reason) == ("refund:730", "damaged")
