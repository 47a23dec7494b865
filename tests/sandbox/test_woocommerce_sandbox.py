"""The real WooCommerce adapter against the sandbox WooCommerce shop, over 127.0.0.1."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import requests
from pydantic import SecretStr

from aftercare.adapters.woocommerce import WooCommerceAdapter, WooCommerceSettings
from aftercare.clock import SystemClock
from aftercare.models import ConsentState, Customer, EventKind
from aftercare.platform import CouponSpec, MemoryShopState, PlatformError, ShopInfo
from aftercare.sandbox import Item, WooCommerceSandbox

SECRET = "whsec-sandbox-&-test"
ALL_KINDS = list(WooCommerceAdapter.topics)


def adapter_for(shop: WooCommerceSandbox, **settings) -> WooCommerceAdapter:
    return WooCommerceAdapter(
        ShopInfo(id="woo", webhook_secret=SecretStr(SECRET)),
        WooCommerceSettings(**{**shop.adapter_settings(), "max_retries": 0, **settings}),
        MemoryShopState(),
        SystemClock().now,
        sleep=lambda seconds: None,
    )


def test_poll_finds_orders_and_derives_every_event(sandbox_woocommerce):
    shop = sandbox_woocommerce
    paid = shop.create_order(locale="en")
    shipped = shop.create_order(locale="es")
    shop.ship(shipped.id)
    delivered = shop.create_order(locale="bg")
    shop.ship(delivered.id)
    shop.deliver(delivered.id)
    returned = shop.create_order()
    shop.ship(returned.id)
    shop.request_return(returned.id)
    refunded = shop.create_order()
    shop.refund(refunded.id)
    cancelled = shop.create_order(paid=False)
    shop.cancel(cancelled.id)

    adapter = adapter_for(shop)
    events = {(e.order.platform_id, e.kind) for batch in adapter.poll(None) for e in batch.events}

    assert (str(paid.id), EventKind.ORDER_PAID) in events
    assert (str(shipped.id), EventKind.SHIPPED) in events
    assert (str(delivered.id), EventKind.DELIVERED) in events
    assert (str(returned.id), EventKind.RETURN_REQUESTED) in events
    assert (str(refunded.id), EventKind.REFUNDED) in events
    assert (str(cancelled.id), EventKind.ORDER_CANCELLED) in events
    assert (str(cancelled.id), EventKind.ORDER_PAID) not in events


def test_poll_pages_through_many_orders(sandbox_woocommerce):
    for _ in range(130):
        sandbox_woocommerce.create_order()
    batches = list(adapter_for(sandbox_woocommerce).poll(None))
    paid = {e.order.platform_id for b in batches for e in b.events if e.kind is EventKind.ORDER_PAID}
    assert len(paid) == 130
    assert batches[0].orders_total == 130


def test_fetch_order_maps_the_whole_order(sandbox_woocommerce):
    order = sandbox_woocommerce.create_order(email="ivan@example.com", locale="bg", discount_codes=["10off"])
    sandbox_woocommerce.ship(order.id, carrier="Speedy", tracking_number="6200", tracking_url="https://t/6200")

    fetched = adapter_for(sandbox_woocommerce).fetch_order(str(order.id))

    assert (fetched.customer.email, fetched.locale, fetched.currency) == ("ivan@example.com", "bg", "BGN")
    assert fetched.total.amount == order.total and fetched.discount_codes == ("10off",)
    shipment = fetched.shipments[0]
    assert (shipment.carrier, shipment.tracking_number, shipment.tracking_url) == ("Speedy", "6200", "https://t/6200")


def test_create_coupon_twice_creates_one_and_duplicates_are_refused(sandbox_woocommerce):
    adapter = adapter_for(sandbox_woocommerce)
    spec = CouponSpec("THANKS-10", "percent", Decimal(10), "EUR", customer_email="a@example.com")

    first, second = adapter.create_coupon(spec), adapter.create_coupon(spec)

    assert first.created and not second.created and first.platform_id == second.platform_id
    assert len(sandbox_woocommerce.state.coupons) == 1
    # The shop holds the code lower-cased, and that is the code aftercare mails.
    assert first.code == second.code == "thanks-10"
    with pytest.raises(PlatformError, match="woocommerce 400 woocommerce_rest_coupon_code_already_exists"):
        adapter.client.post("coupons", {"code": "thanks-10"})


def test_coupon_expiry_is_on_the_shop_and_confirmed(sandbox_woocommerce):
    expires = datetime(2027, 1, 31, 1, 54, 17, 250000, tzinfo=UTC)
    spec = CouponSpec("THANKS-EXP", "percent", Decimal(10), "EUR", customer_email="a@example.com", expires_at=expires)

    result = adapter_for(sandbox_woocommerce).create_coupon(spec)

    coupon = sandbox_woocommerce.state.coupons[int(result.platform_id)]
    assert coupon.ends_at == expires.replace(microsecond=0)
    assert (coupon.code, result.code) == ("thanks-exp", "thanks-exp")


def test_sandbox_ignores_date_expires_gmt_on_create_like_woocommerce_11(sandbox_woocommerce):
    client = adapter_for(sandbox_woocommerce).client
    ignored = client.post("coupons", {"code": "probe-gmt", "amount": "10", "date_expires_gmt": "2027-01-31T01:54:17"})
    kept = client.post("coupons", {"code": "PROBE-Offset", "amount": "10", "date_expires": "2027-01-31T01:54:17Z"})
    assert (ignored["date_expires"], ignored["date_expires_gmt"]) == (None, None)
    assert (kept["code"], kept["date_expires_gmt"]) == ("probe-offset", "2027-01-31T01:54:17")


def test_hand_made_coupon_with_the_pending_code_is_refused(sandbox_woocommerce):
    adapter = adapter_for(sandbox_woocommerce)
    adapter.client.post("coupons", {"code": "thanks-hand", "discount_type": "percent", "amount": "50"})
    spec = CouponSpec("THANKS-HAND", "percent", Decimal(10), "EUR", customer_email="a@example.com")
    with pytest.raises(PlatformError, match="amount is '50.00', expected '10'; not adopted") as caught:
        adapter.create_coupon(spec)
    assert not caught.value.transient and len(sandbox_woocommerce.state.coupons) == 1


def test_oauth_in_the_header_and_in_the_query_both_pass(sandbox_woocommerce):
    header = adapter_for(sandbox_woocommerce)
    query = adapter_for(sandbox_woocommerce, query_string_auth=True)
    assert header.check_live() == [] and query.check_live() == []
    sent = header.client.session.get(f"{header.client.base_url}orders", timeout=5)
    assert sent.request.headers["Authorization"].startswith("OAuth ") and "oauth_" not in sent.request.url
    sent = query.client.session.get(f"{query.client.base_url}orders", params={"per_page": 2}, timeout=5)
    assert sent.status_code == 200 and "oauth_signature=" in sent.request.url
    assert "Authorization" not in sent.request.headers


def test_plain_http_takes_only_oauth_like_woocommerce(sandbox_woocommerce):
    """Over plain HTTP WooCommerce never looks at Basic auth or consumer_key/secret
    query parameters (is_ssl() is false): the request is anonymous."""
    settings = sandbox_woocommerce.adapter_settings()
    url = f"{settings['url']}/wp-json/wc/v3/coupons"
    basic = requests.post(url, json={"code": "x"}, auth=(settings["consumer_key"], settings["consumer_secret"]),
                          timeout=5)  # fmt: skip
    keys = requests.get(url, params={"consumer_key": settings["consumer_key"],
                                     "consumer_secret": settings["consumer_secret"]}, timeout=5)  # fmt: skip
    assert (basic.status_code, basic.json()["code"]) == (401, "woocommerce_rest_cannot_create")
    assert (keys.status_code, keys.json()["code"]) == (401, "woocommerce_rest_cannot_view")


def test_a_bad_signature_and_a_replayed_nonce_are_refused(sandbox_woocommerce):
    adapter = adapter_for(sandbox_woocommerce, query_string_auth=True)
    signed = adapter.client.session.get(f"{adapter.client.base_url}orders", timeout=5).request.url
    replayed = requests.get(signed, timeout=5)
    tampered = requests.get(signed.replace("orders?", "orders?per_page=3&"), timeout=5)
    assert replayed.json()["message"] == "Invalid nonce - nonce has already been used."
    assert tampered.json()["message"] == "Invalid signature - provided signature does not match."


def test_a_read_key_cannot_write(sandbox_woocommerce):
    """The recorded answer of WooCommerce 11 to a write with a Read key."""
    sandbox_woocommerce.key_permissions = "read"
    adapter = adapter_for(sandbox_woocommerce)
    (problem,) = adapter.check_live()  # the live check's write probe finds it before any action does
    assert problem.startswith("the API key cannot write (woocommerce 401 woocommerce_rest_authentication_error")
    with pytest.raises(PlatformError) as caught:
        adapter.create_coupon(CouponSpec("THANKS-R", "percent", Decimal(10), "EUR"))
    assert caught.value.message == (
        "woocommerce 401 woocommerce_rest_authentication_error: The API key provided does not have write permissions."
    )


def test_notes_tags_and_consent(sandbox_woocommerce):
    shop = sandbox_woocommerce
    member = shop.create_order()
    guest = shop.create_order(guest=True)
    adapter = adapter_for(shop)

    adapter.add_order_note(str(member.id), "review request sent")
    adapter.tag_order(str(member.id), ["aftercare", "reviewed"])
    adapter.tag_order(str(member.id), ["reviewed"])
    adapter.set_marketing_consent(Customer(email=member.email), ConsentState.SUBSCRIBED, "form")
    adapter.set_marketing_consent(Customer(email=guest.email), ConsentState.UNSUBSCRIBED, "link")

    assert [note.text for note in member.notes] == ["review request sent"]
    assert member.notes[0].customer_note is False
    assert adapter.fetch_order(str(member.id)).tags == ("aftercare", "reviewed")
    consent = {m["key"]: m["value"] for m in shop.state.customers[member.customer_id].meta}
    assert consent["aftercare_marketing_consent"]["state"] == "subscribed"
    assert adapter.fetch_order(str(guest.id)).customer.marketing_consent is ConsentState.UNSUBSCRIBED
    # The member's next order reads the consent from the customer record (the order has none).
    again = shop.create_order(email=member.email)
    assert again.customer_id == member.customer_id
    assert adapter.fetch_order(str(again.id)).customer.marketing_consent is ConsentState.SUBSCRIBED
    assert adapter.fetch_order(str(guest.id)).customer.platform_id == ""


def test_protected_customer_meta_is_dropped_on_write_and_read_with_200(sandbox_woocommerce):
    """rest_customer_put_protected_meta_dropped.json: the real shop keeps the plain key only."""
    shop = sandbox_woocommerce
    member = shop.create_order()
    shop.state.customers[member.customer_id].meta.append({"id": 1, "key": "_set_by_php", "value": "x"})
    client = adapter_for(shop).client  # signs as WooCommerce wants over plain http (OAuth 1.0a)
    record = f"customers/{member.customer_id}"
    body = {"meta_data": [{"key": "_aftercare_tags", "value": "probe-underscore"},
                          {"key": "aftercare_tags", "value": "probe-plain"}]}  # fmt: skip
    answer = client.put(record, body)  # raises on anything but 2xx
    keys = [entry["key"] for entry in answer["meta_data"]]
    assert keys == ["aftercare_tags"]  # neither the dropped write nor the protected meta already there
    assert [entry["key"] for entry in client.get(record)["meta_data"]] == keys


def test_the_order_summary_lacks_refund_lines_the_refunds_endpoint_has(sandbox_woocommerce):
    shop = sandbox_woocommerce
    order = shop.create_order(items=[Item("Burr grinder", 1, Decimal("89.00"), "GRIND-1"),
                                     Item("Espresso cups", 1, Decimal("12.50"), "CUP-2")])  # fmt: skip
    shop.ship(order.id)
    grinder = order.lines[0]
    refund = shop.refund(order.id, lines=[grinder.id], reason="defective")
    summary = shop.order_json(order)["refunds"]
    assert summary == [{"id": refund.id, "reason": "defective", "total": "-89.00", "total_tax": "0.00"}]
    (listed,) = adapter_for(shop).client.get(f"orders/{order.id}/refunds")
    assert (listed["amount"], listed["line_items"][0]["quantity"]) == ("89.00", -1)
    assert listed["line_items"][0]["meta_data"][0]["value"] == str(grinder.id)

    adapter = adapter_for(shop)
    whole = adapter.fetch_order(str(order.id))
    assert [(r.platform_id, r.line_item_ids, r.lines_known) for r in whole.refunds] == [
        (str(refund.id), (str(grinder.id),), True)
    ]
    assert not whole.partial


def test_a_new_order_sends_created_and_updated_and_gives_its_events_once(sandbox_woocommerce, webhook_receiver):
    shop = sandbox_woocommerce
    adapter = adapter_for(shop)
    adapter.register_webhooks(webhook_receiver.url, ALL_KINDS)
    webhook_receiver.wait_for(2)  # the pings
    shop.create_order()
    shop.flush()
    deliveries = [
        adapter.verify_webhook(r.headers, r.body) for r in webhook_receiver.received if b"webhook_id=" not in r.body
    ]
    assert sorted(d.topic for d in deliveries) == ["order.created", "order.updated"]
    assert [e.kind for d in deliveries for e in adapter.parse_webhook(d)] == [EventKind.ORDER_PAID]


def test_completed_then_return_requested_keeps_date_completed_and_ships_once(sandbox_woocommerce):
    shop = sandbox_woocommerce
    order = shop.create_order()
    shop.complete(order.id)
    completed_at = order.completed_at
    shop.request_return(order.id)
    payload = shop.order_json(order)
    assert (payload["status"], payload["date_completed_gmt"]) == ("return-requested", completed_at.replace(
        tzinfo=None).isoformat())  # fmt: skip
    adapter = adapter_for(shop)
    (batch,) = adapter.poll(None, since=order.created_at)
    assert [e.kind for e in batch.events] == [EventKind.ORDER_PAID, EventKind.SHIPPED, EventKind.RETURN_REQUESTED]
    assert batch.events[1].shipment.shipped_at == completed_at.replace(microsecond=0)
    assert batch.events[1].dedupe_key == f"order:{order.id}:shipped"


def test_webhooks_register_list_remove_with_a_ping(sandbox_woocommerce, webhook_receiver):
    adapter = adapter_for(sandbox_woocommerce)

    created = adapter.register_webhooks(webhook_receiver.url, ALL_KINDS)

    assert sorted(s.topic for s in adapter.list_webhooks()) == ["order.created", "order.updated"]
    pings = webhook_receiver.wait_for(2)
    assert sorted(p.body for p in pings) == sorted(f"webhook_id={s.platform_id}".encode() for s in created)
    assert all(not any(k.startswith("x-wc-webhook") for k in p.headers) for p in pings)
    assert adapter.verify_webhook(pings[0].headers, pings[0].body).is_ping
    assert adapter.remove_webhooks(webhook_receiver.url) == 2
    assert adapter.list_webhooks() == []


def test_check_live_passes_and_reports_a_bad_key(sandbox_woocommerce):
    assert adapter_for(sandbox_woocommerce).check_live() == []
    (problem,) = adapter_for(sandbox_woocommerce, consumer_secret="cs_wrong").check_live()
    assert "401 woocommerce_rest_authentication_error" in problem and "consumer_key/consumer_secret" in problem
    answer = requests.get(f"{sandbox_woocommerce.url}/wp-json/wc/v3/orders", timeout=5)
    assert (answer.status_code, answer.json()["code"]) == (401, "woocommerce_rest_cannot_view")


def test_webhooks_verify_and_parse_into_events(sandbox_woocommerce, webhook_receiver):
    shop = sandbox_woocommerce
    adapter = adapter_for(shop)
    adapter.register_webhooks(webhook_receiver.url, ALL_KINDS)
    order = shop.create_order(locale="es")
    shop.flush()
    shop.ship(order.id)
    shop.flush()
    shop.deliver(order.id)
    shop.flush()
    shop.refund(order.id, amount=Decimal("3.00"), reason="late")
    shop.flush()

    deliveries = [
        adapter.verify_webhook(r.headers, r.body) for r in webhook_receiver.received if b"webhook_id=" not in r.body
    ]
    events = [e for d in deliveries for e in adapter.parse_webhook(d)]

    assert [e.kind for e in events] == [
        EventKind.ORDER_PAID,
        EventKind.SHIPPED,
        EventKind.DELIVERED,
        EventKind.REFUNDED,
    ]
    assert events[-1].refund.amount.amount == Decimal("3.00")
    headers = webhook_receiver.received[-1].headers
    assert headers["x-wc-webhook-topic"] == "order.updated" and headers["x-wc-webhook-resource"] == "order"


def test_a_failed_delivery_is_not_retried_and_failures_disable_the_webhook(sandbox_woocommerce, webhook_receiver):
    shop = sandbox_woocommerce
    adapter = adapter_for(shop)
    adapter.register_webhooks(webhook_receiver.url, [EventKind.SHIPPED])  # order.updated only
    webhook_receiver.wait_for(1)  # the ping
    order = shop.create_order()
    shop.flush()  # its order.updated is answered before the failures begin
    webhook_receiver.answer(*[500] * 7)

    for attempt in range(7):
        adapter.tag_order(str(order.id), [f"tag-{attempt}"])  # each PUT fires order.updated
        shop.flush()

    failures = [r for r in webhook_receiver.received if r.status == 500]
    assert len(failures) == 7  # one attempt each: no retry
    (hook,) = shop.webhooks.values()
    assert hook["status"] == "disabled"
    (fresh,) = adapter.register_webhooks(webhook_receiver.url, [EventKind.SHIPPED])  # aftercare replaces it
    (replacement,) = shop.webhooks.values()
    assert (replacement["id"], replacement["status"], replacement["failure_count"]) == (
        int(fresh.platform_id), "active", 0
    )
    assert replacement["id"] != hook["id"]


def test_order_payload_has_the_fixture_fields(sandbox_woocommerce, shared_fixtures):
    real = json.loads((shared_fixtures / "woocommerce/order_retrieve.json").read_text())
    order = sandbox_woocommerce.create_order()
    ours = sandbox_woocommerce.order_json(order)
    assert set(real) <= set(ours)
    assert set(real["line_items"][0]) <= set(ours["line_items"][0])
    assert set(real["billing"]) <= set(ours["billing"])


def test_a_reregistered_webhook_survives_the_next_failed_delivery(sandbox_woocommerce, webhook_receiver):
    """WooCommerce disables a webhook at its 7th failure in a row and keeps the count
    when it is re-activated, so one more failure disables it again; `register`
    replaces it with a new webhook, whose count starts at zero."""
    shop = sandbox_woocommerce
    adapter = adapter_for(shop)
    order = shop.create_order()
    shop.flush()

    def failed_deliveries(count: int) -> None:
        for index in range(count):
            webhook_receiver.answer(500)
            adapter.client.put(f"orders/{order.id}", {"meta_data": [{"key": "probe", "value": str(index)}]})
            assert shop.flush()

    (hook,) = adapter.register_webhooks(webhook_receiver.url, [EventKind.SHIPPED])
    failed_deliveries(7)
    (listed,) = adapter.list_webhooks()
    assert listed.status == "disabled"

    adapter.client.put(f"webhooks/{hook.platform_id}", {"status": "active"})  # what register used to do
    failed_deliveries(1)
    assert adapter.list_webhooks()[0].status == "disabled"

    (fresh,) = adapter.register_webhooks(webhook_receiver.url, [EventKind.SHIPPED])
    failed_deliveries(1)
    (listed,) = adapter.list_webhooks()
    assert fresh.platform_id != hook.platform_id
    assert (listed.platform_id, listed.status) == (fresh.platform_id, "active")


def test_one_connection_is_kept_alive_for_the_shop(sandbox_woocommerce, caplog):
    caplog.set_level(logging.DEBUG, logger="urllib3.connectionpool")
    adapter = adapter_for(sandbox_woocommerce)
    for _ in range(3):
        adapter.check_live()
    adapter.list_webhooks()
    opened = [r for r in caplog.records if r.getMessage().startswith("Starting new HTTP connection")]
    assert len(opened) == 1
