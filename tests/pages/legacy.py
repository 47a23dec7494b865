"""Links as aftercare made them before opaque links: readable base64 fields, HMAC-signed per shop.

The old code path, kept here so tests can make the links that are already in
customers' mailboxes and check the upgrade still reads them.
"""

import base64
import hashlib
import hmac


def legacy_token(app, purpose, shop_id, *fields):
    """``make_token`` of the old :mod:`aftercare.links`, line for line."""
    body = "\n".join((purpose, shop_id, *fields)).encode()
    secret = app.mail_settings(shop_id).secret_key or app.shop(shop_id).config.webhook_secret
    key = hmac.new(secret.get_secret_value().encode(), f"aftercare {purpose} v1".encode(), hashlib.sha256).digest()
    mac = hmac.new(key, body, hashlib.sha256).digest()
    return f"{b64(body)}.{b64(mac)}"


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
