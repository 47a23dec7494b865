"""Signed links in customer mail: unsubscribe, survey answers, newsletter opt-in.

A token carries its purpose, the shop id and a few fields (an address, an
order, a score), signed with HMAC-SHA256. The key is derived per purpose from
the shop's ``[mail] secret_key`` when set, else from its webhook secret. The
shop id is inside the signed text, so a link from one shop's mail can never
act on another shop, and a survey link cannot be replayed as an unsubscribe.
Nothing is stored per link: the signature is the proof.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aftercare.mail.settings import for_shop
from aftercare.models import SurveyKind

if TYPE_CHECKING:
    from aftercare.app import App

SURVEY_PATH = "/survey"
OPTIN_PATH = "/optin"


class InvalidLink(Exception):
    """The link was altered, truncated, made for another purpose, or names no configured shop."""


@dataclass(frozen=True, slots=True)
class Link:
    purpose: str
    shop_id: str
    fields: tuple[str, ...]


def make_token(app: App, purpose: str, shop_id: str, *fields: str) -> str:
    if any("\n" in f for f in (shop_id, *fields)):
        raise ValueError("link fields cannot contain a newline")
    body = "\n".join((purpose, shop_id, *fields)).encode()
    return f"{_b64(body)}.{_b64(_sign(app, purpose, shop_id, body))}"


def read_token(app: App, purpose: str, token: str) -> Link:
    try:
        body_part, mac_part = token.split(".")
        body, mac = _unb64(body_part), _unb64(mac_part)
        found, shop_id, *fields = body.decode().split("\n")
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidLink("malformed link") from None
    if found != purpose:
        raise InvalidLink(f"a {found} link, not a {purpose} link")
    if shop_id not in app.shops:
        raise InvalidLink("the link names no configured shop")
    if not hmac.compare_digest(mac, _sign(app, purpose, shop_id, body)):
        raise InvalidLink("the link's signature does not match")
    return Link(purpose, shop_id, tuple(fields))


def url(app: App, path: str, token: str) -> str:
    return f"{app.config.public_url.rstrip('/')}{path}/{token}"


class Links:
    """The link maker a hook's ``ctx`` uses (``ctx.survey_link``, ``ctx.optin_link``)."""

    def __init__(self, app: App) -> None:
        self.app = app

    def survey(self, *, shop_id: str, order_id: str, email: str, locale: str, kind: SurveyKind, score: int) -> str:
        if score not in kind.scale:
            raise ValueError(f"{kind.value} score must be in {kind.scale.start}..{kind.scale.stop - 1}, got {score}")
        token = make_token(self.app, "survey", shop_id, order_id, email.strip().lower(), locale, kind.value, str(score))
        return url(self.app, SURVEY_PATH, token)

    def optin(self, *, shop_id: str, order_id: str, email: str, locale: str) -> str:
        token = make_token(self.app, "optin", shop_id, order_id, email.strip().lower(), locale)
        return url(self.app, OPTIN_PATH, token)


def _sign(app: App, purpose: str, shop_id: str, body: bytes) -> bytes:
    secret = for_shop(app, shop_id).secret_key or app.shop(shop_id).config.webhook_secret
    key = hmac.new(secret.get_secret_value().encode(), f"aftercare {purpose} v1".encode(), hashlib.sha256).digest()
    return hmac.new(key, body, hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
