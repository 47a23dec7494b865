"""Signed unsubscribe links.

A token carries the shop id, the address and the reader's locale, signed
with HMAC-SHA256. The key is the shop's ``[mail] secret_key`` when set, else
one derived from the shop's webhook secret; the shop id is inside the signed
text as well, so a link from one shop's mail can never unsubscribe anyone
from another shop. Nothing is stored per link: the signature is the proof.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aftercare.mail.settings import for_shop
from aftercare.mail.suppression import normalise

if TYPE_CHECKING:
    from aftercare.app import App

_PURPOSE = b"aftercare unsubscribe v1"
PATH = "/unsubscribe"


class InvalidToken(Exception):
    """The link was altered, truncated, or signed for a shop that is not configured."""


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    shop_id: str
    email: str
    locale: str


def make_token(app: App, shop_id: str, email: str, locale: str = "") -> str:
    body = "\n".join((shop_id, normalise(email), locale)).encode()
    return f"{_b64(body)}.{_b64(_sign(app, shop_id, body))}"


def read_token(app: App, token: str) -> Unsubscribe:
    try:
        body_part, mac_part = token.split(".")
        body, mac = _unb64(body_part), _unb64(mac_part)
        shop_id, email, locale = body.decode().split("\n")
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidToken("malformed unsubscribe link") from None
    if shop_id not in app.shops:
        raise InvalidToken("the link names no configured shop")
    if not hmac.compare_digest(mac, _sign(app, shop_id, body)):
        raise InvalidToken("the link's signature does not match")
    return Unsubscribe(shop_id, email, locale)


def unsubscribe_url(app: App, shop_id: str, email: str, locale: str = "") -> str:
    """The link for the mail's footer and its ``List-Unsubscribe`` header."""
    return f"{app.config.public_url.rstrip('/')}{PATH}/{make_token(app, shop_id, email, locale)}"


def _sign(app: App, shop_id: str, body: bytes) -> bytes:
    secret = for_shop(app, shop_id).secret_key or app.shop(shop_id).config.webhook_secret
    key = hmac.new(secret.get_secret_value().encode(), _PURPOSE, hashlib.sha256).digest()
    return hmac.new(key, body, hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
