"""Constants and helpers shared by the Shopify adapter tests."""

from datetime import UTC, datetime

from aftercare.adapters.shopify.webhooks import signature

SHOP_DOMAIN = "acme.myshopify.com"
SECRET = "shh-app-secret"
GRAPHQL_URL = f"https://{SHOP_DOMAIN}/admin/api/2026-10/graphql.json"
NOW = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)


def headers_for(body: bytes, topic: str, **extra: str) -> dict[str, str]:
    headers = {
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": signature(SECRET, body),
        "X-Shopify-Shop-Domain": SHOP_DOMAIN,
        "X-Shopify-API-Version": "2025-10",
        "X-Shopify-Webhook-Id": "wh-1",
        "X-Shopify-Event-Id": "ev-1",
        "X-Shopify-Triggered-At": "2025-04-02T16:40:00.123456789Z",
    }
    headers.update(extra)
    return headers
