"""Links in customer mail that reveal nothing: unsubscribe, survey answers, newsletter opt-in.

A token is the link's fields (the shop id, an order, an address, a locale, a
score, a relationship survey's purpose) encrypted and authenticated with Fernet (AES-128-CBC plus HMAC-SHA256),
so whoever holds the link, or a mail log, reads nothing from it; nothing is
stored per link, which keeps links working in every process of a deployment
without a table. The key is derived with HKDF (:func:`aftercare.vault.derive_key`)
per purpose, so a survey link cannot be replayed as an unsubscribe, from:

- the deployment's ``secret_key`` when set (then ``previous_secret_keys`` are
  still accepted, so the key can be rotated without breaking links already sent);
- else the shop's ``[mail] secret_key``, else its webhook secret. A link read
  with a shop's key must name that shop, so one shop's key never acts on another.

Fernet's envelope keeps when the link was made, which is how links expire:
survey links after ``[links] survey_days``, opt-in links after
``[links] optin_days``, counted from when the link was made (when the plugin
scheduled the mail). Unsubscribe links never expire: the law wants them to
work for as long as the mail exists.

Links of the format before this one (the fields in readable base64, signed
with HMAC-SHA256) are still read: unsubscribe links always, survey and opt-in
links until ``[links] legacy_until``. See docs/privacy.md.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING

from cryptography.fernet import Fernet, InvalidToken
from pydantic import SecretStr

from aftercare.models import SurveyKind, SurveyPurpose, normalise_email
from aftercare.vault import derive_key

if TYPE_CHECKING:
    from aftercare.app import App

SURVEY_PATH = "/survey"
OPTIN_PATH = "/optin"
#: Every Fernet token starts with these characters (version byte 0x80 and the top of a
#: 64-bit timestamp, zero until 2106); links leave them out to be shorter.
_FERNET_HEAD = "gAAAAA"
_TOKEN = re.compile(r"[A-Za-z0-9_-]{40,1000}")


class InvalidLink(Exception):
    """The link was altered, truncated, made for another purpose, or names no configured shop."""


class ExpiredLink(InvalidLink):
    """A genuine link past its expiry; ``link`` says whose it was, for a page in their language."""

    def __init__(self, link: Link) -> None:
        super().__init__(f"the {link.purpose} link has expired")
        self.link = link


@dataclass(frozen=True, slots=True)
class Link:
    purpose: str
    shop_id: str
    fields: tuple[str, ...]
    #: When the link was made; None for a link of the legacy format, which does not say.
    made_at: datetime | None = None


def make_token(app: App, purpose: str, shop_id: str, *fields: str) -> str:
    if any("\n" in f for f in (shop_id, *fields)):
        raise ValueError("link fields cannot contain a newline")
    secret = app.config.secret_key or _shop_secret(app, shop_id)
    body = "\n".join((shop_id, *fields)).encode()
    sealed = _fernet(secret, purpose).encrypt_at_time(body, int(app.now().timestamp())).decode("ascii")
    return sealed.removeprefix(_FERNET_HEAD).rstrip("=")


def read_token(app: App, purpose: str, token: str) -> Link:
    """The link's fields if the token is genuine, for ``purpose``, and not expired.

    Raises :class:`ExpiredLink` for a genuine link past its expiry, :class:`InvalidLink` otherwise.
    """
    link = _read_legacy(app, purpose, token) if "." in token else _read_sealed(app, purpose, token)
    if link.shop_id not in app.shops:
        raise InvalidLink("the link names no configured shop")
    if _expired(app, link):
        raise ExpiredLink(link)
    return link


def max_age(app: App, purpose: str) -> timedelta | None:
    """How long a link of ``purpose`` works after it was made; None for ever."""
    settings = app.config.links
    days = {"survey": settings.survey_days, "optin": settings.optin_days}.get(purpose)
    return timedelta(days=days) if days else None


def url(app: App, path: str, token: str) -> str:
    return f"{app.config.public_url.rstrip('/')}{path}/{token}"


class Links:
    """The link maker a hook's ``ctx`` uses (``ctx.survey_link``, ``ctx.optin_link``)."""

    def __init__(self, app: App) -> None:
        self.app = app

    def survey(
        self,
        *,
        shop_id: str,
        order_id: str,
        email: str,
        locale: str,
        kind: SurveyKind,
        score: int,
        purpose: SurveyPurpose = SurveyPurpose.ORDER,
    ) -> str:
        if score not in kind.scale:
            raise ValueError(f"{kind.value} score must be in {kind.scale.start}..{kind.scale.stop - 1}, got {score}")
        fields = (normalise_email(email), locale, kind.value, str(score))
        if SurveyPurpose(purpose) is not SurveyPurpose.ORDER:
            # A sixth field only when it is not an order's: an order survey's link stays as short as it
            # was, and links made before purposes existed read as what they were, "order".
            fields += (SurveyPurpose(purpose).value,)
        token = make_token(self.app, "survey", shop_id, order_id, *fields)
        return url(self.app, SURVEY_PATH, token)

    def optin(self, *, shop_id: str, order_id: str, email: str, locale: str) -> str:
        token = make_token(self.app, "optin", shop_id, order_id, normalise_email(email), locale)
        return url(self.app, OPTIN_PATH, token)


# -- reading -------------------------------------------------------------------


def _read_sealed(app: App, purpose: str, token: str) -> Link:
    if not _TOKEN.fullmatch(token):  # base64 decoding would skip a stray character, not refuse it
        raise InvalidLink("malformed link")
    full = _FERNET_HEAD + token
    sealed = (full + "=" * (-len(full) % 4)).encode("ascii", "replace")
    for shop_bound, secret in _reading_keys(app):
        fernet = _fernet(secret, purpose)
        try:
            body = fernet.decrypt(sealed)
            made = fernet.extract_timestamp(sealed)
            shop_id, *fields = body.decode("utf-8").split("\n")
        except (InvalidToken, UnicodeDecodeError, ValueError):
            continue
        if shop_bound is not None and shop_id != shop_bound:
            continue  # a shop's key only vouches for its own links (two shops may share a secret)
        return Link(purpose, shop_id, tuple(fields), datetime.fromtimestamp(made, UTC))
    raise InvalidLink(f"not a valid {purpose} link of this deployment")


def _reading_keys(app: App) -> Iterator[tuple[str | None, SecretStr]]:
    """The deployment's keys (current first, then previous), then each shop's own (links made without one)."""
    config = app.config
    if config.secret_key is not None:
        yield None, config.secret_key
        for previous in config.previous_secret_keys:
            yield None, previous
    for shop_id in app.shops:
        yield shop_id, _shop_secret(app, shop_id)


def _expired(app: App, link: Link) -> bool:
    age = max_age(app, link.purpose)
    if age is None:
        return False
    if link.made_at is None:  # legacy: no date inside, accepted until the configured day
        cutoff = datetime.combine(app.config.links.legacy_until, time(0), UTC)
        return app.now() >= cutoff
    return app.now() >= link.made_at + age


@lru_cache(maxsize=512)
def _fernet(secret: SecretStr, purpose: str) -> Fernet:
    return Fernet(base64.urlsafe_b64encode(derive_key(secret, f"links {purpose}")))


def _shop_secret(app: App, shop_id: str) -> SecretStr:
    return app.mail_settings(shop_id).secret_key or app.shop(shop_id).config.webhook_secret


# -- the legacy format (links mailed before the upgrade) ---------------------------


def _read_legacy(app: App, purpose: str, token: str) -> Link:
    """``base64(purpose\\nshop\\nfields...).base64(hmac)``, keyed per shop; see the module docstring."""
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
    if not hmac.compare_digest(mac, _legacy_mac(app, purpose, shop_id, body)):
        raise InvalidLink("the link's signature does not match")
    return Link(purpose, shop_id, tuple(fields))


def _legacy_mac(app: App, purpose: str, shop_id: str, body: bytes) -> bytes:
    secret = _shop_secret(app, shop_id)
    key = hmac.new(secret.get_secret_value().encode(), f"aftercare {purpose} v1".encode(), hashlib.sha256).digest()
    return hmac.new(key, body, hashlib.sha256).digest()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
