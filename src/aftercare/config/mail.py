"""The ``[mail]`` table of the config, and a shop's ``[shops.mail]`` overrides.

Here, beside the config that validates it, rather than in :mod:`aftercare.mail`: the app and
the links read these settings too, and they sit below the mail channel.

A shop's ``[shops.mail]`` is the same model: only the keys the shop sets
replace the deployment's (:func:`merge_shop_settings`), so an agency can give
one client its own SMTP relay, quiet hours or frequency cap and leave the rest
alone. ``templates_dir`` is the exception: both folders stay in the search
path, the shop's first (see docs/mail.md).
"""

from __future__ import annotations

import ipaddress
import re
from datetime import time
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator

from aftercare.config.errors import ConfigError, describe_errors
from aftercare.config.sms import SmsSettings

_LOOPBACK_NAMES = {"localhost", "localhost.localdomain"}
_DEFAULT_PORTS = {"starttls": 587, "tls": 465, "none": 25}


def is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class SmtpSettings(BaseModel):
    """``[mail.smtp]``: the relay that sends for us."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    #: Default: 587 for ``starttls``, 465 for ``tls``, 25 for ``none``.
    port: int | None = Field(default=None, ge=1, le=65535)
    #: ``starttls`` (submission, port 587), ``tls`` (implicit TLS, port 465) or
    #: ``none``, which is only allowed to a relay on this machine.
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str = ""
    password: SecretStr | None = None
    #: A CA bundle for a relay with a private certificate; the system's otherwise.
    ca_file: str = ""
    #: Seconds for connecting and for each SMTP command.
    timeout: float = Field(default=30.0, gt=0, le=600)
    #: A connection idle longer than this is closed and opened again, not reused.
    keepalive: float = Field(default=30.0, ge=0, le=3600)
    #: Messages sent over one connection before it is renewed.
    max_messages_per_connection: int = Field(default=100, ge=1)

    @model_validator(mode="after")
    def _safe(self) -> SmtpSettings:
        if self.security == "none" and not is_loopback(self.host):
            raise ValueError(
                f"security = 'none' sends in clear text; it is allowed only to a relay on this machine "
                f"(127.0.0.1), not {self.host!r}: use 'starttls' or 'tls'"
            )
        if self.username and self.password is None:
            raise ValueError("username is set but password is not")
        return self

    @property
    def effective_port(self) -> int:
        return self.port or _DEFAULT_PORTS[self.security]


_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
_EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")


def _url(value: str, *, https_only: bool) -> str:
    value = value.strip()
    if not value:
        return value
    parts = urlsplit(value)
    schemes = ("https",) if https_only else ("https", "http")
    if parts.scheme not in schemes or not parts.netloc:
        wanted = "an https:// URL" if https_only else "an http(s):// URL"
        raise ValueError(f"expected {wanted}")
    return value


class BrandSettings(BaseModel):
    """``[mail.brand]``: how the shop looks and who it is, in the header and footer of every mail.

    Merged per shop like the rest of ``[shops.mail]``, key by key; a bundle may set it too.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: The logo in the header (an https:// image, about 2:1; shown 160 px wide at most).
    logo_url: str = ""
    #: Width in px the logo is shown at (height follows).
    logo_width: int = Field(default=160, ge=16, le=560)
    #: The accent colour (#rrggbb): the bar above the header and the buttons.
    accent_color: str = "#111827"
    #: The shop's home page: the logo links to it, the coupon mail's button goes there.
    shop_url: str = ""
    #: The sender's postal address, in the footer of every mail (one line or several,
    #: separated by newlines). Marketing mail needs it (EU e-commerce rules, CAN-SPAM):
    #: ``aftercare check`` fails a production shop that sends marketing mail without it.
    postal_address: str = ""
    #: Where customers get help: an email address and/or a page, both shown in the footer.
    support_email: str = ""
    support_url: str = ""
    #: A CSS file (relative to the config file) inlined into every HTML mail after the
    #: layout's own rules, so it wins: the merchant's fonts, colours, spacing.
    css: str = ""

    @field_validator("logo_url")
    @classmethod
    def _https_logo(cls, value: str) -> str:
        return _url(value, https_only=True)

    @field_validator("shop_url", "support_url")
    @classmethod
    def _web_url(cls, value: str) -> str:
        return _url(value, https_only=False)

    @field_validator("accent_color")
    @classmethod
    def _colour(cls, value: str) -> str:
        if not _COLOUR.match(value.strip()):
            raise ValueError("expected a colour as #rrggbb, e.g. #1d4ed8")
        return value.strip().lower()

    @field_validator("support_email")
    @classmethod
    def _email(cls, value: str) -> str:
        value = value.strip()
        if value and not _EMAIL.match(value):
            raise ValueError("expected an email address")
        return value


class MailSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: ``outbox`` writes each message as an .eml file into ``outbox_dir``; ``smtp`` sends it.
    transport: Literal["outbox", "smtp"] = "outbox"
    #: Relative to the config file's folder.
    outbox_dir: str = "outbox"
    smtp: SmtpSettings = Field(default_factory=SmtpSettings)
    #: Signs unsubscribe links. Unset: derived from the shop's webhook secret
    #: (then rotating that secret invalidates links already sent).
    secret_key: SecretStr | None = None
    #: A folder of template overrides (``<locale>/<template>.html`` ...), relative to the config file.
    templates_dir: str = ""
    #: ``From`` when the shop has no ``sender`` of its own.
    sender: str = ""
    #: ``Reply-To``; empty for none (replies go to ``From``).
    reply_to: str = ""
    #: Marketing mail due between these local times (shop's time zone) waits
    #: until ``quiet_hours_end``. Equal times turn quiet hours off.
    quiet_hours_start: time = time(21, 0)
    quiet_hours_end: time = time(8, 0)
    #: At most ``frequency_cap`` marketing messages (mails and texts) per customer in
    #: ``frequency_days``; 0 for no cap.
    frequency_cap: int = Field(default=3, ge=0)
    frequency_days: int = Field(default=7, ge=1)
    #: At least this many hours between two marketing mails to one customer; a mail due
    #: sooner waits until the gap is over (deferred, not dropped). 0 for no gap.
    min_gap_hours: float = Field(default=4.0, ge=0, le=168)
    brand: BrandSettings = Field(default_factory=BrandSettings)
    #: ``[mail.sms]``: text messages, under the same quiet hours and cap.
    sms: SmsSettings = Field(default_factory=SmsSettings)


def merge_shop_settings(deployment: MailSettings, shop: MailSettings) -> MailSettings:
    """The deployment's settings with the keys the shop set on top (nested tables key by key).

    Raises pydantic's ``ValidationError`` when the combination is invalid
    (a shop's ``security = 'none'`` with the deployment's remote host, say).
    """
    merged = _deep_merge(deployment.model_dump(exclude_unset=True), shop.model_dump(exclude_unset=True))
    return MailSettings.model_validate(merged)


def _deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    result = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = _deep_merge(result[key], value)
        else:
            result[key] = value
    return result


def shop_mail_settings(config: Any, shop: Any) -> MailSettings:
    """The mail settings ``shop`` (its ShopConfig, bundle applied) runs with: ``[mail]`` under its
    ``[shops.mail]``. An invalid combination is a config error naming the shop's table.
    :meth:`aftercare.app.App.mail_settings` merges them once per shop."""
    try:
        return merge_shop_settings(config.mail, shop.mail)
    except ValidationError as exc:
        prefix = f"shops[{config.shop_index(shop.id)}].mail (merged with [mail])"
        raise ConfigError(describe_errors(exc, prefix=prefix)) from None
