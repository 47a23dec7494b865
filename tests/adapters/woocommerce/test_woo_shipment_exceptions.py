"""A carrier's problem report (shipment_exception) from TrackShip's ``shipment_status`` meta on the
order WooCommerce 11 delivered when tracking was added (recorded), once per parcel and problem."""

from __future__ import annotations

import copy
from datetime import UTC, datetime

import pytest

from aftercare.models import EventKind, ShipmentProblem, ShipmentStatus

RECORDED_TRACKING_ID = "7d5e3f0a9b1c4e2f8a6b0c1d2e3f4a5b"
RECORDED_NUMBER = "1Z999AA10123456784"


@pytest.fixture
def tracked(wc_fixtures):
    """The order as WooCommerce 11 sent it after Shipment Tracking's meta was written (status processing)."""
    (delivery,) = wc_fixtures("wc-11.0.1/webhook_order_updated_tracking.json")
    return delivery["body_json"]


def trackship(order, *states, status_date="2026-12-02 10:15:00"):
    """``order`` with TrackShip's meta: one ``{status, status_date, tracking_number}`` per parcel."""
    changed = copy.deepcopy(order)
    changed["meta_data"] = [m for m in changed["meta_data"] if m["key"] != "shipment_status"]
    value = [{"status": s, "status_date": status_date, "tracking_number": RECORDED_NUMBER} for s in states]
    changed["meta_data"].append({"id": 20001, "key": "shipment_status", "value": value})
    return changed


PROBLEMS = [
    ("exception", ShipmentProblem.EXCEPTION),
    ("failure", ShipmentProblem.FAILURE),
    ("on_hold", ShipmentProblem.ON_HOLD),
    ("return_to_sender", ShipmentProblem.RETURN_TO_SENDER),
    ("available_for_pickup", ShipmentProblem.READY_FOR_PICKUP),
    ("attempt_fail", ShipmentProblem.ATTEMPTED_DELIVERY),
]


@pytest.mark.parametrize(("state", "problem"), PROBLEMS)
def test_trackship_problem_states(deliver, tracked, state, problem):
    deliver(tracked)
    (event,) = deliver(trackship(tracked, state))
    assert event.kind is EventKind.SHIPMENT_EXCEPTION
    assert event.dedupe_key == f"tracking:{tracked['id']}:{RECORDED_TRACKING_ID}:{problem.value}"
    assert event.exception.problem is problem
    assert event.occurred_at == event.exception.happened_at == datetime(2026, 12, 2, 10, 15, tzinfo=UTC)
    assert event.exception.location == "" and event.exception.message == ""  # TrackShip's meta has no place
    assert event.shipment.platform_id == RECORDED_TRACKING_ID
    assert (event.shipment.carrier, event.shipment.tracking_number) == ("ups", RECORDED_NUMBER)


def test_each_problem_once_and_a_new_problem_again(deliver, tracked):
    first = deliver(trackship(tracked, "exception"))
    assert [e.kind for e in first] == [EventKind.ORDER_PAID, EventKind.SHIPPED, EventKind.SHIPMENT_EXCEPTION]
    assert deliver(trackship(tracked, "exception", status_date="2026-12-03 08:00:00")) == []  # reported again
    assert deliver(trackship(tracked, "in_transit")) == []
    (again,) = deliver(trackship(tracked, "return_to_sender"))
    assert again.exception.problem is ShipmentProblem.RETURN_TO_SENDER


def test_a_poll_of_the_same_state_adds_nothing(adapter, deliver, tracked):
    from aftercare.adapters.woocommerce.transitions import SeenState, derive_events, state_key

    (event,) = [e for e in deliver(trackship(tracked, "failure")) if e.kind is EventKind.SHIPMENT_EXCEPTION]
    facts = adapter.mapper.facts(trackship(tracked, "failure"))
    seen = SeenState.from_json(adapter.state.get(state_key(str(tracked["id"]))))
    assert derive_events(facts, seen, adapter.settings, source="poll", topic="poll") == []
    fresh = derive_events(facts, SeenState(), adapter.settings, source="poll", topic="poll")
    assert [e.dedupe_key for e in fresh if e.kind is EventKind.SHIPMENT_EXCEPTION] == [event.dedupe_key]


def test_no_report_for_delivered_cancelled_or_refunded_orders(make_adapter, deliver, tracked):
    delivered = trackship(tracked, "failure") | {"status": "delivered"}
    assert EventKind.SHIPMENT_EXCEPTION not in [e.kind for e in deliver(delivered)]
    for status in ("cancelled", "refunded"):
        other = make_adapter()
        events = deliver(trackship(tracked, "failure") | {"status": status}, target=other)
        assert EventKind.SHIPMENT_EXCEPTION not in [e.kind for e in events]


def test_states_that_are_no_problem(deliver, tracked):
    deliver(tracked)
    for state in ("in_transit", "out_for_delivery", "pre_transit", "unknown", "carrier_unsupported"):
        assert deliver(trackship(tracked, state)) == []
    (delivered,) = deliver(trackship(tracked, "delivered"))
    assert delivered.kind is EventKind.DELIVERED and delivered.shipment.status is ShipmentStatus.DELIVERED


def test_the_hook_is_served_by_order_updated(adapter):
    assert adapter.topics[EventKind.SHIPMENT_EXCEPTION] == ("order.updated",)
