"""poll() and fetch_order() over GraphQL, mocked with `responses`."""

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import responses

from aftercare.models import EventKind, FinancialStatus, Money, ShipmentStatus

from .shopify_support import GRAPHQL_URL


def money(amount, currency="EUR"):
    return {"shopMoney": {"amount": amount, "currencyCode": currency}}


def order_node(
    number, updated_at, *, status="PAID", fulfillments=(), refunds=(), returns=(), cancelled=None
):
    return {
        "id": f"gid://shopify/Order/{number}",
        "name": f"#{number}",
        "email": "ada@example.com",
        "createdAt": "2025-04-01T10:00:00Z",
        "updatedAt": updated_at,
        "processedAt": "2025-04-01T10:00:00Z",
        "cancelledAt": cancelled,
        "test": False,
        "tags": ["vip"],
        "discountCodes": ["WELCOME-ABCDE"],
        "customerLocale": "de-CH",
        "displayFinancialStatus": status,
        "displayFulfillmentStatus": "FULFILLED" if fulfillments else "UNFULFILLED",
        "totalPriceSet": money("59.90"),
        "subtotalPriceSet": money("49.90"),
        "customer": {
            "id": "gid://shopify/Customer/42",
            "firstName": "Ada",
            "lastName": "Lovelace",
            "locale": "de",
            "defaultEmailAddress": {"emailAddress": "ada@example.com", "marketingState": "SUBSCRIBED"},
        },
        "shippingAddress": None,
        "lineItems": {
            "nodes": [
                {
                    "id": "gid://shopify/LineItem/7",
                    "title": "Mug",
                    "quantity": 2,
                    "sku": "MUG",
                    "originalUnitPriceSet": money("24.95"),
                    "product": {"id": "gid://shopify/Product/70"},
                    "variant": None,
                }
            ]
        },
        "fulfillments": list(fulfillments),
        "refunds": list(refunds),
        "returns": {"nodes": list(returns)},
    }


def fulfillment(fid, *, delivered_at=None, display="IN_TRANSIT"):
    return {
        "id": f"gid://shopify/Fulfillment/{fid}",
        "status": "SUCCESS",
        "displayStatus": "DELIVERED" if delivered_at else display,
        "createdAt": "2025-04-02T08:00:00Z",
        "updatedAt": "2025-04-02T08:00:00Z",
        "deliveredAt": delivered_at,
        "trackingInfo": [
            {"company": "DHL", "number": "JD0001", "url": "https://dhl.example/JD0001"}
        ],
        "fulfillmentLineItems": {"nodes": [{"lineItem": {"id": "gid://shopify/LineItem/7"}}]},
    }


def page(nodes, has_next, cursor=None):
    body = {"orders": {"pageInfo": {"hasNextPage": has_next, "endCursor": cursor}, "nodes": nodes}}
    return {"json": {"data": body}}


@pytest.fixture
def mock():
    with responses.RequestsMock() as rsps:
        yield rsps


def sent(mock, index):
    return json.loads(mock.calls[index].request.body)["variables"]


def test_poll_two_pages_then_the_delivery_watch(adapter, mock):
    first = order_node(1, "2025-04-02T09:00:00Z", fulfillments=[fulfillment(11)])
    second = order_node(
        2,
        "2025-04-03T09:00:00Z",
        status="PARTIALLY_REFUNDED",
        fulfillments=[fulfillment(21, delivered_at="2025-04-03T08:00:00Z")],
        refunds=[
            {
                "id": "gid://shopify/Refund/31",
                "createdAt": "2025-04-03T09:00:00Z",
                "note": "broken",
                "totalRefundedSet": money("10.00"),
            }
        ],
        returns=[
            {
                "id": "gid://shopify/Return/41",
                "name": "#2-R1",
                "status": "REQUESTED",
                "returnLineItems": {
                    "nodes": [
                        {
                            "returnReasonDefinition": {"handle": "defective"},
                            "fulfillmentLineItem": {"lineItem": {"id": "gid://shopify/LineItem/7"}},
                        }
                    ]
                },
            }
        ],
    )
    mock.post(GRAPHQL_URL, **page([first], True, "c1"))
    mock.post(GRAPHQL_URL, **page([second], False))
    # The watch re-reads order 1: its parcel arrived, without a newer updated_at.
    delivered = order_node(
        1,
        "2025-04-02T09:00:00Z",
        fulfillments=[fulfillment(11, delivered_at="2025-04-04T12:00:00Z")],
    )
    mock.post(GRAPHQL_URL, json={"data": {"nodes": [delivered]}})

    batches = list(adapter.poll(None, since=datetime(2025, 4, 1, tzinfo=UTC)))

    assert sent(mock, 0) == {
        "first": 3,
        "after": None,
        "query": "updated_at:>='2025-04-01T00:00:00Z'",
    }
    assert sent(mock, 1)["after"] == "c1"
    assert sent(mock, 2) == {"ids": ["gid://shopify/Order/1"]}
    assert [b.cursor for b in batches] == [
        "2025-04-02T09:00:00Z",
        "2025-04-03T09:00:00Z",
        "2025-04-03T09:00:00Z",
    ]
    assert [[e.dedupe_key for e in b.events] for b in batches] == [
        ["order:1:paid", "fulfillment:11:shipped"],
        [
            "order:2:paid",
            "fulfillment:21:shipped",
            "fulfillment:21:delivered",
            "return:41:requested",
            "refund:31",
        ],
        ["fulfillment:11:delivered"],
    ]
    assert all(e.source == "poll" and e.shop_id == "acme" for b in batches for e in b.events)
    delivered_event = batches[2].events[0]
    assert delivered_event.kind is EventKind.DELIVERED
    assert delivered_event.occurred_at == datetime(2025, 4, 4, 12, tzinfo=UTC)
    refund = batches[1].events[4].refund
    assert refund.amount == Money(Decimal("10.00"), "EUR") and refund.reason == "broken"
    request = batches[1].events[3].return_request
    assert (request.status, request.reason, request.line_item_ids) == (
        "requested",
        "defective",
        ("7",),
    )
    assert adapter.state.get("delivery_watch") == {}  # delivered: no longer watched


def test_cursor_resumes_and_cancellation(adapter, mock):
    cancelled = order_node(
        3, "2025-04-05T09:00:00Z", status="VOIDED", cancelled="2025-04-05T09:00:00Z"
    )
    mock.post(GRAPHQL_URL, **page([cancelled], False))
    (batch,) = adapter.poll("2025-04-04T00:00:00Z")
    assert sent(mock, 0)["query"] == "updated_at:>='2025-04-04T00:00:00Z'"
    assert [(e.kind, e.dedupe_key) for e in batch.events] == [
        (EventKind.ORDER_CANCELLED, "order:3:cancelled")
    ]
    assert batch.cursor == "2025-04-05T09:00:00Z"


def test_first_poll_looks_back_and_unreadable_order_is_skipped(adapter, mock):
    broken = order_node(4, "2025-04-05T09:00:00Z")
    del broken["totalPriceSet"]
    mock.post(GRAPHQL_URL, **page([broken], False))
    (batch,) = adapter.poll(None)
    assert sent(mock, 0)["query"] == "updated_at:>='2025-04-24T12:00:00Z'"  # now - 7 days
    assert batch.events == [] and batch.orders_seen == 0


def test_fetch_order(adapter, mock):
    mock.post(
        GRAPHQL_URL,
        json={
            "data": {"order": order_node(5, "2025-04-02T09:00:00Z", fulfillments=[fulfillment(51)])}
        },
    )
    order = adapter.fetch_order("5")
    assert sent(mock, 0) == {"id": "gid://shopify/Order/5"}
    assert (order.platform_id, order.number, order.locale) == ("5", "#5", "de-CH")
    assert order.financial_status is FinancialStatus.PAID
    assert order.total == Money(Decimal("59.90"), "EUR")
    assert order.customer.platform_id == "42" and order.customer.first_name == "Ada"
    assert order.lines[0].unit_price == Money(Decimal("24.95"), "EUR")
    assert order.lines[0].product_id == "70" and order.lines[0].variant_id == ""
    (shipment,) = order.shipments
    assert (shipment.carrier, shipment.tracking_number, shipment.status) == (
        "DHL",
        "JD0001",
        ShipmentStatus.IN_TRANSIT,
    )
    assert order.tags == ("vip",)
    assert order.discount_codes == ("WELCOME-ABCDE",)


def test_partial_webhooks_are_mapped_without_a_platform_call(make_adapter, mock, load):
    """The receiver's 5 s budget holds no API call: the worker re-reads the order before the hooks."""
    from aftercare.platform import WebhookDelivery

    adapter = make_adapter(refetch_partial_orders=True)  # accepted, no longer does anything
    body = json.dumps(load("rest_fulfillment_with_tracking.json")["fulfillment"]).encode()
    (event,) = adapter.parse_webhook(WebhookDelivery("acme", "fulfillments/create", "d1", body))
    assert event.order.partial and event.order.customer.email == ""
    assert event.shipment.tracking_number == "1Z001985YW99744790"
    assert len(mock.calls) == 0


def test_fulfilled_display_statuses_are_in_transit_and_untracked_parcels_leave_the_watch():
    from dataclasses import replace

    from aftercare.adapters.shopify.gql import awaits_delivery
    from aftercare.adapters.shopify.payload import SHIPMENT_STATUS, lookup
    from aftercare.models import ShipmentStatus
    from aftercare.testing import make_order

    for display in ("FULFILLED", "MARKED_AS_FULFILLED"):
        assert lookup(SHIPMENT_STATUS, display, ShipmentStatus.UNKNOWN) is ShipmentStatus.IN_TRANSIT
    order = make_order()
    tracked = replace(order.shipments[0], status=ShipmentStatus.IN_TRANSIT)
    assert awaits_delivery(replace(order, shipments=(tracked,)))
    by_hand = replace(tracked, carrier="", tracking_number="", tracking_url="")
    assert not awaits_delivery(replace(order, shipments=(by_hand,)))
