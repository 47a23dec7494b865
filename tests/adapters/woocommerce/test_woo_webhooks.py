"""Webhook verification: WooCommerce's own HMAC test vector, tampering, the
source check, the creation ping and the header rules."""

from __future__ import annotations

import json

import pytest
from pydantic import SecretStr

from aftercare.adapters.woocommerce import WooCommerceAdapter
from aftercare.adapters.woocommerce.webhooks import normalise_site, sign
from aftercare.platform import MemoryShopState, ShopInfo, WebhookRejected


def test_core_hmac_vector(wc_fixtures, make_adapter, signed_headers, clock):
    vector = wc_fixtures("hmac_vector_wc_core_test.json")
    body = vector["raw_body"].encode()
    assert sign(vector["secret"], body) == vector["expected_x_wc_webhook_signature"]

    base = make_adapter()
    adapter = WooCommerceAdapter(
        ShopInfo(id="wc1", webhook_secret=SecretStr(vector["secret"])),
        base.settings,
        MemoryShopState(),
        clock.now,
    )
    headers = signed_headers(body, **{"X-WC-Webhook-Signature": vector["expected_x_wc_webhook_signature"]})
    delivery = adapter.verify_webhook(headers, body)
    assert delivery.topic == "order.updated"
    assert delivery.body == body
    assert delivery.delivery_id == "142:5f2b6c1e0d8a"
    assert not delivery.is_ping


def test_real_order_body_verifies_and_headers_are_case_insensitive(adapter, wc_fixtures, signed_headers):
    body = json.dumps(wc_fixtures("order_update_completed.json")).encode()
    headers = {key.lower(): value for key, value in signed_headers(body).items()}
    delivery = adapter.verify_webhook(headers, body)
    assert (delivery.shop_id, delivery.topic) == ("wc1", "order.updated")


def test_tampered_body_is_refused(adapter, wc_fixtures, signed_headers):
    body = json.dumps(wc_fixtures("order_retrieve.json")).encode()
    headers = signed_headers(body)
    tampered = body.replace(b'"29.35"', b'"0.01"')
    with pytest.raises(WebhookRejected) as caught:
        adapter.verify_webhook(headers, tampered)
    assert caught.value.status == 401
    assert "X-WC-Webhook-Signature" in caught.value.reason


def test_reformatted_json_is_refused(adapter, signed_headers):
    """The signature covers the exact bytes, not the parsed JSON."""
    body = b'{"id": 727}'
    with pytest.raises(WebhookRejected):
        adapter.verify_webhook(signed_headers(body), b'{"id":727}')


def test_missing_signature_is_401_naming_the_header(adapter, signed_headers):
    body = b'{"id": 727}'
    headers = signed_headers(body)
    del headers["X-WC-Webhook-Signature"]
    with pytest.raises(WebhookRejected) as caught:
        adapter.verify_webhook(headers, body)
    assert (caught.value.status, caught.value.reason) == (
        401,
        "missing X-WC-Webhook-Signature header",
    )


def test_wrong_source_is_403(adapter, signed_headers):
    body = b'{"id": 727}'
    headers = signed_headers(body, **{"X-WC-Webhook-Source": "https://staging.shop.example/"})
    with pytest.raises(WebhookRejected) as caught:
        adapter.verify_webhook(headers, body)
    assert caught.value.status == 403
    assert "X-WC-Webhook-Source" in caught.value.reason


@pytest.mark.parametrize(
    "source",
    [
        "https://shop.example/",
        "https://shop.example",
        "http://SHOP.example/",
        "https://shop.example:443/",
    ],
)
def test_source_is_normalised(source):
    assert normalise_site(source) == normalise_site("https://shop.example")


def test_source_in_a_subdirectory_differs():
    assert normalise_site("https://shop.example/de/") != normalise_site("https://shop.example")


@pytest.mark.parametrize("header", ["Topic", "Delivery-ID", "Source"])
def test_missing_header_is_400_naming_it(adapter, signed_headers, header):
    body = b'{"id": 727}'
    headers = signed_headers(body)
    del headers[f"X-WC-Webhook-{header}"]
    with pytest.raises(WebhookRejected) as caught:
        adapter.verify_webhook(headers, body)
    assert caught.value.status == 400
    assert f"X-WC-Webhook-{header}" in caught.value.reason


def test_topic_disagreeing_with_resource_and_event_is_400(adapter, signed_headers):
    body = b'{"id": 727}'
    headers = signed_headers(body, **{"X-WC-Webhook-Event": "deleted"})
    with pytest.raises(WebhookRejected) as caught:
        adapter.verify_webhook(headers, body)
    assert caught.value.status == 400


def test_ping_is_answered_without_parsing(adapter):
    body = b"webhook_id=142"
    headers = {
        "User-Agent": "WooCommerce/9.0 Hookshot (WordPress/6.5)",
        "Content-Type": "application/x-www-form-urlencoded",
    }
    delivery = adapter.verify_webhook(headers, body)
    assert delivery.is_ping
    assert delivery.delivery_id == "ping:142"
    assert adapter.parse_webhook(delivery) == []
    assert adapter.state.get("order:142") is None


def test_ping_shaped_body_with_wc_headers_still_needs_a_signature(adapter):
    with pytest.raises(WebhookRejected) as caught:
        adapter.verify_webhook({"X-WC-Webhook-Topic": "order.updated"}, b"webhook_id=142")
    assert caught.value.status == 401


def test_secret_with_html_entities_matches_wordpress_decoding(make_adapter, clock, signed_headers):
    """WordPress signs with wp_specialchars_decode(secret): "&amp;" in the stored
    secret signs as "&"."""
    body = b'{"id": 727}'
    base = make_adapter()
    adapter = WooCommerceAdapter(
        ShopInfo(id="wc1", webhook_secret=SecretStr("a&amp;b")),
        base.settings,
        MemoryShopState(),
        clock.now,
    )
    headers = signed_headers(body, **{"X-WC-Webhook-Signature": sign("a&b", body)})
    assert adapter.verify_webhook(headers, body).topic == "order.updated"


def test_other_topics_give_no_events(adapter, deliver):
    assert deliver({"id": 727}, topic="order.deleted") == []
    assert deliver({"id": 25, "email": "x@example.com"}, topic="customer.updated") == []
    assert (
        deliver(
            {"action": "woocommerce_order_status_completed", "arg": 727},
            topic="action.woocommerce_order_status_completed",
        )
        == []
    )
