"""A carrier's problem report (shipment_exception) from Shopify: the webhook on the recorded
fulfillment event, and polling and the delivery watch from displayStatus, with one key scheme."""

from datetime import UTC, datetime

import pytest
import responses

from aftercare.models import EventKind, Shipment, ShipmentProblem

from .shopify_support import GRAPHQL_URL
from .test_mapping import deliver
from .test_polling import fulfillment, order_node, page

PROBLEMS = {
    "attempted_delivery": ShipmentProblem.ATTEMPTED_DELIVERY,
    "delayed": ShipmentProblem.DELAYED,
    "failure": ShipmentProblem.FAILURE,
    "ready_for_pickup": ShipmentProblem.READY_FOR_PICKUP,
}


@pytest.fixture
def mock():
    with responses.RequestsMock() as rsps:
        yield rsps


@pytest.mark.parametrize("status", sorted(PROBLEMS))
def test_a_fulfillment_event_reporting_a_problem(adapter, load, status):
    payload = load("rest_fulfillment_event.json")["fulfillment_event"]
    payload["status"] = status  # the recorded event is in_transit; its statuses are the schema's
    (event,) = deliver(adapter, "fulfillment_events/create", payload)
    assert event.kind is EventKind.SHIPMENT_EXCEPTION
    assert event.dedupe_key == f"fulfillment:255858046:{status}"
    assert event.exception.problem is PROBLEMS[status]
    assert event.occurred_at == event.exception.happened_at == datetime(2025, 4, 2, 16, 39, 28, tzinfo=UTC)
    assert (event.exception.message, event.exception.location) == ("", "")  # null in the recording
    assert event.shipment == Shipment(platform_id="255858046")  # the re-read order completes it
    assert event.order.platform_id == "450789469" and event.order.partial


def test_a_pickup_event_keeps_where_the_parcel_waits(adapter, load):
    payload = load("rest_fulfillment_event.json")["fulfillment_event"]
    payload.update(
        status="ready_for_pickup", message="Held at the post office", address1="Calle Mayor 12",
        zip="28013", city="Madrid", province=None, country="ES",
    )  # fmt: skip
    (event,) = deliver(adapter, "fulfillment_events/create", payload)
    assert event.exception.location == "Calle Mayor 12, 28013, Madrid, ES"
    assert event.exception.message == "Held at the post office"


def test_other_fulfillment_events_report_no_problem(adapter, load):
    payload = load("rest_fulfillment_event.json")["fulfillment_event"]
    assert deliver(adapter, "fulfillment_events/create", payload) == []  # in_transit, as recorded
    for status in ("out_for_delivery", "confirmed", "label_printed", "carrier_picked_up"):
        payload["status"] = status
        assert deliver(adapter, "fulfillment_events/create", payload) == []
    payload["status"] = "delivered"
    assert [e.kind for e in deliver(adapter, "fulfillment_events/create", payload)] == [EventKind.DELIVERED]


def test_the_webhook_topic_is_subscribed_for_the_hook(adapter):
    assert adapter.topics[EventKind.SHIPMENT_EXCEPTION] == ("fulfillment_events/create",)


def test_polling_and_the_watch_report_problems_with_the_webhooks_keys(adapter, mock):
    delayed = order_node(1, "2025-04-02T09:00:00Z", fulfillments=[fulfillment(11, display="DELAYED")])
    failed_before_leaving = {**fulfillment(12, display="FAILURE"), "status": "FAILURE"}
    other = order_node(2, "2025-04-03T09:00:00Z", fulfillments=[failed_before_leaving])
    mock.post(GRAPHQL_URL, **page([delayed, other], False))
    # The watch re-reads order 1: the carrier now has it at a pickup point.
    pickup = order_node(1, "2025-04-02T09:00:00Z", fulfillments=[fulfillment(11, display="READY_FOR_PICKUP")])
    mock.post(GRAPHQL_URL, json={"data": {"nodes": [pickup]}})

    batches = list(adapter.poll(None, since=datetime(2025, 4, 1, tzinfo=UTC)))

    keys = [[(e.kind, e.dedupe_key) for e in b.events] for b in batches]
    assert keys == [
        [
            (EventKind.ORDER_PAID, "order:1:paid"),
            (EventKind.SHIPPED, "fulfillment:11:shipped"),
            (EventKind.SHIPMENT_EXCEPTION, "fulfillment:11:delayed"),
            (EventKind.ORDER_PAID, "order:2:paid"),  # a fulfillment that never left: no report
        ],
        [(EventKind.SHIPMENT_EXCEPTION, "fulfillment:11:ready_for_pickup")],
    ]
    report = batches[1].events[0]
    assert report.exception.problem is ShipmentProblem.READY_FOR_PICKUP
    assert report.exception.location == "" and report.exception.message == ""  # polling has neither
    assert report.shipment.tracking_number == "JD0001" and report.source == "poll"
    assert adapter.state.get("delivery_watch") == {"1": "2025-05-01T12:00:00+00:00"}  # still under way


def test_a_delivered_or_cancelled_order_reports_nothing_when_polled(adapter, mock):
    parcel = fulfillment(11, delivered_at="2025-04-02T08:00:00Z")
    delivered = order_node(1, "2025-04-02T09:00:00Z", fulfillments=[parcel])
    cancelled = order_node(
        2, "2025-04-03T09:00:00Z", status="VOIDED", cancelled="2025-04-03T09:00:00Z",
        fulfillments=[fulfillment(21, display="FAILURE")],
    )  # fmt: skip
    mock.post(GRAPHQL_URL, **page([delivered, cancelled], False))
    events = [e for b in adapter.poll(None, since=datetime(2025, 4, 1, tzinfo=UTC)) for e in b.events]
    assert not [e for e in events if e.kind is EventKind.SHIPMENT_EXCEPTION]
