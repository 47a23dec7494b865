"""Signed unsubscribe links.

A token (see :mod:`aftercare.links`) carries the shop id, the address and
the reader's locale; the shop id is signed with them, so a link from one
shop's mail can never unsubscribe anyone from another shop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from aftercare import links
from aftercare.links import InvalidLink as InvalidToken
from aftercare.models import normalise_email

if TYPE_CHECKING:
    from aftercare.app import App

PATH = "/unsubscribe"
PURPOSE = "unsubscribe"


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    shop_id: str
    email: str
    locale: str


def make_token(app: App, shop_id: str, email: str, locale: str = "") -> str:
    return links.make_token(app, PURPOSE, shop_id, normalise_email(email), locale)


def read_token(app: App, token: str) -> Unsubscribe:
    link = links.read_token(app, PURPOSE, token)
    try:
        email, locale = link.fields
    except ValueError:
        raise InvalidToken("malformed unsubscribe link") from None
    return Unsubscribe(link.shop_id, email, locale)


def unsubscribe_url(app: App, shop_id: str, email: str, locale: str = "") -> str:
    """The link for the mail's footer and its ``List-Unsubscribe`` header."""
    return links.url(app, PATH, make_token(app, shop_id, email, locale))
