"""Webhook verification: the published HMAC vector and every rejection."""

import json
from datetime import UTC, datetime

import pytest
from pydantic import SecretStr

from aftercare.adapters.shopify import ShopifyAdapter, ShopifySettings
from aftercare.clock import ManualClock
from aftercare.platform import MemoryShopState, ShopInfo, WebhookRejected

from .shopify_support import SECRET, SHOP_DOMAIN, headers_for


def test_published_vector_passes(shopify_dir):
    vector = json.loads((shopify_dir / "hmac_vector_shopify_app_js.json").read_text())
    headers = vector["headers_used_in_test"]
    adapter = ShopifyAdapter(
        ShopInfo(id="shop1", webhook_secret=SecretStr(vector["secret"])),
        ShopifySettings(
            shop_domain="shop1.myshopify.com",
            access_token=SecretStr("x"),
            admin_url="http://127.0.0.1:9",
        ),
        MemoryShopState(),
        ManualClock(datetime(2025, 1, 1, tzinfo=UTC)).now,
    )
    # The vector's shop is shop1.myshopify.io (Shopify's test domain); only the domain differs.
    headers = {**headers, "X-Shopify-Shop-Domain": "shop1.myshopify.com"}
    delivery = adapter.verify_webhook(headers, vector["raw_body"].encode())
    assert delivery.topic == "products/create"
    assert delivery.delivery_id == "123456789"  # the Webhook-Id
    assert delivery.api_version == "2023-01"
    assert delivery.shop_id == "shop1"
    assert delivery.triggered_at is None
    assert adapter.parse_webhook(delivery) == []  # a topic aftercare does not use


def test_headers_are_case_insensitive_and_the_webhook_id_names_the_delivery(adapter):
    body = b'{"id": 1}'
    headers = {key.lower(): value for key, value in headers_for(body, "orders/paid").items()}
    delivery = adapter.verify_webhook(headers, body)
    assert delivery.delivery_id == "wh-1"  # not the Event-Id, which one action's topics share
    assert delivery.triggered_at == datetime(2025, 4, 2, 16, 40, 0, 123456, tzinfo=UTC)


def test_unprefixed_events_headers_are_accepted(adapter):
    body = b"{}"
    headers = {
        k.replace("X-Shopify-", "shopify-"): v for k, v in headers_for(body, "orders/paid").items()
    }
    assert adapter.verify_webhook(headers, body).topic == "orders/paid"


@pytest.mark.parametrize(
    ("change", "status", "words"),
    [
        ("tamper", 401, "does not match"),
        ("wrong_secret", 401, "does not match"),
        ("X-Shopify-Hmac-Sha256", 401, "missing header X-Shopify-Hmac-Sha256"),
        ("X-Shopify-Topic", 400, "missing header X-Shopify-Topic"),
        ("X-Shopify-Shop-Domain", 400, "missing header X-Shopify-Shop-Domain"),
        ("X-Shopify-API-Version", 400, "missing header X-Shopify-API-Version"),
        ("X-Shopify-Webhook-Id", 400, "missing header X-Shopify-Webhook-Id"),
        ("other_shop", 403, "X-Shopify-Shop-Domain 'evil.myshopify.com' is not this shop's"),
    ],
)
def test_rejections(adapter, change, status, words):
    body = b'{"id": 450789469}'
    headers = headers_for(body, "orders/paid")
    if change == "tamper":
        body = b'{"id": 450789470}'
    elif change == "wrong_secret":
        from aftercare.adapters.shopify.webhooks import signature

        headers["X-Shopify-Hmac-Sha256"] = signature("not-the-secret", body)
    elif change == "other_shop":
        headers["X-Shopify-Shop-Domain"] = "evil.myshopify.com"
    else:
        del headers[change]
    with pytest.raises(WebhookRejected) as caught:
        adapter.verify_webhook(headers, body)
    assert caught.value.status == status
    assert words in caught.value.reason


def test_domain_compare_ignores_case(adapter):
    body = b"{}"
    headers = headers_for(body, "orders/paid", **{"X-Shopify-Shop-Domain": SHOP_DOMAIN.upper()})
    assert adapter.verify_webhook(headers, body).shop_id == "acme"


def test_during_a_rotation_the_previous_secret_is_accepted_and_logged_without_secrets(
    make_adapter, caplog
):
    import logging

    from aftercare.adapters.shopify.webhooks import signature

    rotating = make_adapter(previous_webhook_secret="the-old-secret")
    body = b'{"id": 450789469}'
    old_signed = {**headers_for(body, "orders/paid"), "X-Shopify-Hmac-Sha256": signature("the-old-secret", body)}
    with caplog.at_level(logging.INFO):
        assert rotating.verify_webhook(old_signed, body).delivery_id == "wh-1"
        assert rotating.verify_webhook(headers_for(body, "orders/paid"), body).delivery_id == "wh-1"
    (line,) = [r.getMessage() for r in caplog.records if "previous_webhook_secret" in r.getMessage()]
    assert "wh-1" in line and "the-old-secret" not in caplog.text and SECRET not in caplog.text
    assert [r.levelno for r in caplog.records if "previous_webhook_secret" in r.getMessage()] == [logging.INFO]

    other = {**old_signed, "X-Shopify-Hmac-Sha256": signature("neither", body)}
    with pytest.raises(WebhookRejected) as caught:
        rotating.verify_webhook(other, body)
    assert caught.value.status == 401
    with pytest.raises(WebhookRejected):  # without the key, the old secret is refused
        make_adapter().verify_webhook(old_signed, body)
