"""Verifying WooCommerce webhook deliveries.

WooCommerce signs ``base64(HMAC-SHA256(secret, body))`` over the exact body it
sends and names itself in ``X-WC-Webhook-Source`` (``home_url('/')``). On
creation it sends a ping, ``webhook_id=<N>`` form-encoded, with no X-WC header
and no signature, that must be answered with exactly 200.

Rejections, in the order they are checked:

* 401: ``X-WC-Webhook-Signature`` missing or not matching the body;
* 400: ``X-WC-Webhook-Topic``/``-Resource``/``-Event``/``-Delivery-ID``/``-Source``
  missing or inconsistent;
* 403: a correctly signed delivery whose ``X-WC-Webhook-Source`` is another
  site: the secret is right but the shop is not (a secret shared between
  shops, or a staging clone still delivering to production's endpoint).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping
from urllib.parse import urlsplit

from aftercare.platform import WebhookDelivery, WebhookRejected

PING_BODY = re.compile(rb"^\s*webhook_id=(\d{1,20})\s*$")
#: The longest delivery id and topic the store keeps (rejected_deliveries, events).
MAX_DELIVERY_ID, MAX_TOPIC = 255, 128
HEADER_PREFIX = "x-wc-webhook-"

#: What WordPress's wp_specialchars_decode(..., ENT_QUOTES) undoes before signing.
_WP_ENTITIES = {
    "&lt;": "<",
    "&gt;": ">",
    "&quot;": '"',
    "&#039;": "'",
    "&#x27;": "'",
    "&amp;": "&",
}


def sign(secret: str, body: bytes) -> str:
    """The X-WC-Webhook-Signature WooCommerce computes for ``body``."""
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def wp_specialchars_decode(text: str) -> str:
    for entity, char in _WP_ENTITIES.items():
        text = text.replace(entity, char)
    return text


def normalise_site(url: str) -> str:
    """``https://Shop.example/`` and ``http://shop.example`` name the same site: the
    scheme is ignored (TLS often ends at a proxy that makes WordPress think it
    is on http), as are default ports and a trailing slash."""
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower()
    port = parts.port if parts.port not in (None, 80, 443) else None
    netloc = f"{host}:{port}" if port else host
    return f"{netloc}{parts.path.rstrip('/')}"


def verify(headers: Mapping[str, str], body: bytes, *, secret: str, shop_url: str, shop_id: str) -> WebhookDelivery:
    """Check a delivery and return it, or raise :class:`WebhookRejected`."""
    wc = {key.lower(): value for key, value in headers.items()}
    signature = wc.get(f"{HEADER_PREFIX}signature", "").strip()
    has_wc_headers = any(key.startswith(HEADER_PREFIX) for key in wc)

    ping = PING_BODY.match(body)
    if ping and not has_wc_headers:
        return WebhookDelivery(
            shop_id=shop_id,
            topic="ping",
            delivery_id=f"ping:{ping.group(1).decode()}",
            body=body,
            is_ping=True,
        )

    if not signature:
        raise WebhookRejected(401, "missing X-WC-Webhook-Signature header")
    # Try the secret as configured and as WordPress decodes it before signing,
    # so a secret containing & or quotes works however it was copied.
    candidates = {secret, wp_specialchars_decode(secret)}
    if not any(hmac.compare_digest(sign(key, body), signature) for key in candidates):
        raise WebhookRejected(401, "X-WC-Webhook-Signature does not match the body")

    topic = _required(wc, "topic")
    resource, event = wc.get(f"{HEADER_PREFIX}resource"), wc.get(f"{HEADER_PREFIX}event")
    expected = f"{(resource or '').strip()}.{(event or '').strip()}"
    if resource is not None and event is not None and topic != expected:
        raise WebhookRejected(400, f"X-WC-Webhook-Topic {topic!r} disagrees with X-WC-Webhook-Resource/-Event")
    delivery_id = _required(wc, "delivery-id")
    source = _required(wc, "source")
    if normalise_site(source) != normalise_site(shop_url):
        raise WebhookRejected(403, f"X-WC-Webhook-Source {source!r} is not this shop's url {shop_url!r}")
    webhook_id = wc.get(f"{HEADER_PREFIX}id", "").strip()
    # The delivery id is a hash of (webhook id, time): unique per delivery.
    delivery_id = f"{webhook_id}:{delivery_id}" if webhook_id else delivery_id
    if len(delivery_id) > MAX_DELIVERY_ID or len(topic) > MAX_TOPIC:
        # The store keeps them in columns of that size: longer ones fail every retry on PostgreSQL.
        raise WebhookRejected(400, f"X-WC-Webhook-Delivery-ID or -Topic longer than {MAX_DELIVERY_ID}/{MAX_TOPIC}")
    return WebhookDelivery(shop_id=shop_id, topic=topic, delivery_id=delivery_id, body=body)


def _required(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(f"{HEADER_PREFIX}{name}", "").strip()
    if not value:
        title = "-".join(part.upper() if part == "id" else part.title() for part in name.split("-"))
        raise WebhookRejected(400, f"missing X-WC-Webhook-{title} header")
    return value
