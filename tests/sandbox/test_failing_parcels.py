"""The sandbox shops fail a parcel (and hold one for pickup) as their platforms record it, and the real
adapters read the report from the webhooks and from polling with one key."""

from __future__ import annotations

import json

import pytest

from aftercare.models import EventKind, ShipmentProblem
from aftercare.sandbox import ShopifySandbox
from aftercare.sandbox.state import MoveError

from .test_shopify_sandbox import ALL_KINDS as SHOPIFY_KINDS
from .test_shopify_sandbox import _receive_all
from .test_shopify_sandbox import adapter_for as shopify_adapter
from .test_woocommerce_sandbox import ALL_KINDS as WOO_KINDS
from .test_woocommerce_sandbox import adapter_for as woo_adapter


def exceptions(events):
    return [e for e in events if e.kind is EventKind.SHIPMENT_EXCEPTION]


def test_shopify_fails_a_parcel_with_a_fulfillment_event_and_its_webhooks(sandbox_shopify, webhook_receiver):
    shop = sandbox_shopify
    adapter = shopify_adapter(shop)
    adapter.register_webhooks(webhook_receiver.url, SHOPIFY_KINDS)
    order = shop.create_order(locale="es")
    parcel = shop.ship(order.id)
    shop.fail_delivery(order.id, message="Dirección incompleta")

    events = _receive_all(shop, webhook_receiver, adapter)

    (report,) = exceptions(events)  # fulfillment_events/create; fulfillments/update says nothing more
    assert report.dedupe_key == f"fulfillment:{parcel.id}:failure"
    assert report.exception.problem is ShipmentProblem.FAILURE
    assert report.exception.message == "Dirección incompleta"
    bodies = {r.headers["x-shopify-topic"]: json.loads(r.body) for r in webhook_receiver.received}
    assert bodies["fulfillment_events/create"]["status"] == "failure"
    assert bodies["fulfillments/update"]["shipment_status"] == "failure"

    whole = adapter.fetch_order(str(order.id))  # as the worker re-reads the partial order
    assert whole.shipment(str(parcel.id)).tracking_number == parcel.tracking_number
    polled = [e for batch in adapter.poll(None) for e in batch.events]
    assert [e.dedupe_key for e in exceptions(polled)] == [report.dedupe_key]


def test_shopify_ready_for_pickup_carries_the_pickup_point(sandbox_shopify, webhook_receiver):
    shop = sandbox_shopify
    adapter = shopify_adapter(shop)
    adapter.register_webhooks(webhook_receiver.url, [EventKind.SHIPMENT_EXCEPTION])
    order = shop.create_order()
    parcel = shop.ship(order.id)
    shop.ready_for_pickup(
        order.id, address1="Oficina Correos, Calle Mayor 12", zip="28013", city="Madrid", country="ES"
    )
    (report,) = exceptions(_receive_all(shop, webhook_receiver, adapter))
    assert report.dedupe_key == f"fulfillment:{parcel.id}:ready_for_pickup"
    assert report.exception.location == "Oficina Correos, Calle Mayor 12, 28013, Madrid, ES"


def test_shopify_delayed_then_delivered(sandbox_shopify):
    shop = sandbox_shopify
    order = shop.create_order()
    shop.ship(order.id)
    shop.fail_delivery(order.id, status="delayed")
    adapter = shopify_adapter(shop)
    first = [e for batch in adapter.poll(None) for e in batch.events]
    assert [e.exception.problem for e in exceptions(first)] == [ShipmentProblem.DELAYED]
    shop.deliver(order.id)
    again = [e for batch in adapter.poll(None) for e in batch.events]
    assert exceptions(again) == []  # delivered since: history
    assert EventKind.DELIVERED in [e.kind for e in again]


def test_woocommerce_fails_a_parcel_in_trackships_meta(sandbox_woocommerce, webhook_receiver):
    shop = sandbox_woocommerce
    adapter = woo_adapter(shop)
    adapter.register_webhooks(webhook_receiver.url, WOO_KINDS)
    webhook_receiver.wait_for(len({t for kind in WOO_KINDS for t in adapter.topics[kind]}))  # the pings
    order = shop.create_order()
    parcel = shop.ship(order.id)
    shop.flush()
    shop.fail_delivery(order.id, status="return_to_sender")
    shop.flush()

    deliveries = [
        adapter.verify_webhook(r.headers, r.body) for r in webhook_receiver.received if b"webhook_id=" not in r.body
    ]
    events = [e for d in deliveries for e in adapter.parse_webhook(d)]
    (report,) = exceptions(events)
    assert report.dedupe_key == f"tracking:{order.id}:{parcel.tracking_id}:return_to_sender"
    assert report.exception.problem is ShipmentProblem.RETURN_TO_SENDER and report.exception.location == ""
    meta = {m["key"]: m["value"] for m in shop.order_json(shop.state.order(order.id))["meta_data"]}
    assert meta["shipment_status"][0]["status"] == "return_to_sender"
    assert meta["shipment_status"][0]["tracking_number"] == parcel.tracking_number

    shop.ready_for_pickup(order.id)
    polled = [e for batch in woo_adapter(shop).poll(None) for e in batch.events]
    assert [e.exception.problem for e in exceptions(polled)] == [ShipmentProblem.READY_FOR_PICKUP]


def test_a_problem_the_platform_does_not_have_is_refused():
    with ShopifySandbox() as shop:
        order = shop.create_order()
        with pytest.raises(MoveError, match="no shipment"):
            shop.fail_delivery(order.id)
        shop.ship(order.id)
        with pytest.raises(MoveError, match="unknown carrier problem 'on_hold'"):
            shop.fail_delivery(order.id, status="on_hold")  # TrackShip's, not Shopify's
        shop.deliver(order.id)
        with pytest.raises(MoveError, match="delivered already"):
            shop.fail_delivery(order.id)
