"""Verification of Shopify webhook deliveries (HMAC and headers).

Status codes: 401 for a missing or wrong signature (the sender is not who it
claims), 400 for other missing or malformed headers, and 403 for a correctly
signed delivery from another shop: it is authentic, but this endpoint does
not serve that shop (a misrouted subscription that Shopify should drop).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from collections.abc import Mapping
from datetime import datetime

from aftercare.platform import WebhookDelivery, WebhookRejected, plausible_time

log = logging.getLogger(__name__)

_REQUIRED = ("Topic", "Shop-Domain", "API-Version", "Webhook-Id")
#: The longest delivery id and topic the store keeps (rejected_deliveries, events).
MAX_DELIVERY_ID, MAX_TOPIC = 255, 128


def signature(secret: str, body: bytes) -> str:
    """``base64(HMAC-SHA256(secret, raw body))``, as Shopify signs deliveries."""
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


class ShopifyHeaders:
    """Case-insensitive access to ``X-Shopify-<name>`` or its ``shopify-<name>`` (Events) form."""

    def __init__(self, headers: Mapping[str, str]) -> None:
        self._headers = {key.lower(): value for key, value in headers.items()}

    def get(self, name: str) -> str | None:
        for key in (f"x-shopify-{name}".lower(), f"shopify-{name}".lower()):
            value = self._headers.get(key)
            if value is not None and value.strip():
                return value.strip()
        return None


def verify(
    headers: Mapping[str, str],
    body: bytes,
    *,
    secret: str,
    shop_domain: str,
    shop_id: str,
    previous_secret: str = "",
) -> WebhookDelivery:
    """``previous_secret``: the secret before a rotation, accepted while Shopify still signs
    with it (Shopify keeps using the old one for up to an hour)."""
    found = ShopifyHeaders(headers)
    sent_signature = found.get("Hmac-Sha256")
    if sent_signature is None:
        raise WebhookRejected(401, "missing header X-Shopify-Hmac-Sha256")
    if not secret:
        raise WebhookRejected(
            401, "no webhook_secret configured for this shop: cannot check X-Shopify-Hmac-Sha256"
        )
    signed_with_previous = False
    if not hmac.compare_digest(signature(secret, body).encode(), sent_signature.encode()):
        signed_with_previous = bool(previous_secret) and hmac.compare_digest(
            signature(previous_secret, body).encode(), sent_signature.encode()
        )
        if not signed_with_previous:
            raise WebhookRejected(
                401, "X-Shopify-Hmac-Sha256 does not match the body (wrong secret or altered body)"
            )
    values = {}
    for name in _REQUIRED:
        value = found.get(name)
        if value is None:
            raise WebhookRejected(400, f"missing header X-Shopify-{name}")
        values[name] = value
    if len(values["Webhook-Id"]) > MAX_DELIVERY_ID or len(values["Topic"]) > MAX_TOPIC:
        # The store keeps them in columns of that size: longer ones fail every retry on PostgreSQL.
        raise WebhookRejected(400, f"X-Shopify-Webhook-Id or -Topic longer than {MAX_DELIVERY_ID}/{MAX_TOPIC}")
    if values["Shop-Domain"].lower() != shop_domain.lower():
        raise WebhookRejected(
            403,
            f"X-Shopify-Shop-Domain {values['Shop-Domain']!r} is not this shop's {shop_domain!r}",
        )
    if signed_with_previous:
        log.info(
            "shop %s: delivery %s (%s) is signed with previous_webhook_secret; remove that key "
            "once the rotation is over",
            shop_id,
            values["Webhook-Id"],
            values["Topic"],
        )
    triggered_at = _timestamp(found.get("Triggered-At"))
    return WebhookDelivery(
        shop_id=shop_id,
        topic=values["Topic"],
        # Per delivery and stable across its retries; X-Shopify-Event-Id is shared by
        # every delivery of one merchant action, so it cannot name a delivery.
        delivery_id=values["Webhook-Id"],
        body=body,
        triggered_at=triggered_at,
        api_version=values["API-Version"],
    )


def _timestamp(value: str | None) -> datetime | None:
    if value is None:
        return None
    """Triggered-At is advisory (staleness checks): an unreadable one is ignored, not fatal."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        log.warning("ignoring unreadable X-Shopify-Triggered-At %r", value)
        return None
    if parsed.tzinfo is None:
        return None
    moment = plausible_time(parsed)
    if moment is None:
        log.warning("ignoring X-Shopify-Triggered-At %r: outside the years aftercare accepts", value)
    return moment
