"""One rendered mail as a MIME message, with the headers that make it trustworthy.

multipart/alternative (plain text first, HTML second, so a client shows the
richest part it can), UTF-8 everywhere (headers RFC 2047-encoded by the
``SMTP`` policy, bodies quoted-printable so any relay carries them), and:

- ``Message-ID`` derived from the action's idempotency key, and
  ``X-Aftercare-Key`` carrying the key itself: a resend of the same action is
  recognisable as the same message, by a mail client and by us;
- ``X-Aftercare-Transactional: yes`` on transactional mail, which has no
  unsubscribe link; every other mail has ``List-Unsubscribe`` with the
  one-click ``List-Unsubscribe-Post`` of RFC 8058;
- ``Auto-Submitted: auto-generated`` (RFC 3834), so autoresponders stay quiet.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import EmailPolicy
from email.utils import format_datetime, parseaddr
from zoneinfo import ZoneInfo

from aftercare.mail.templates import RenderedEmail
from aftercare.platform import PlatformError

KEY_HEADER = "X-Aftercare-Key"
TRANSACTIONAL_HEADER = "X-Aftercare-Transactional"
_UNFOLDED = {"list-unsubscribe", KEY_HEADER.lower()}
_MAX_LINE = 998  # RFC 5322 2.1.1


class _MailPolicy(EmailPolicy):
    """The ``SMTP`` policy, except that a link or a key too long for one 78-column line is
    written whole instead of as RFC 2047 encoded words, which no mail client reads as a URL."""

    def fold(self, name: str, value: str) -> str:
        return self._whole(name, value) or super().fold(name, value)

    def fold_binary(self, name: str, value: str) -> bytes:
        whole = self._whole(name, value)
        return whole.encode("ascii") if whole else super().fold_binary(name, value)

    def _whole(self, name: str, value: str) -> str:
        text = str(value)
        line = f"{name}: {text}"
        if name.lower() in _UNFOLDED and text.isascii() and len(line) <= _MAX_LINE:
            return line + self.linesep
        return ""


MAIL_POLICY = _MailPolicy(linesep="\r\n")


def build_message(
    rendered: RenderedEmail,
    *,
    sender: str,
    to: str,
    to_name: str = "",
    reply_to: str = "",
    now: datetime,
    timezone: str,
    idempotency_key: str,
    transactional: bool,
    unsubscribe_url: str | None,
) -> EmailMessage:
    """Headers and both parts; raises a permanent :class:`PlatformError` for an unusable address."""
    message = EmailMessage(policy=MAIL_POLICY)
    try:
        message["From"] = sender
        message["To"] = Address(display_name=to_name, addr_spec=to) if to_name else to
        if reply_to:
            message["Reply-To"] = reply_to
    except (ValueError, IndexError, TypeError) as exc:
        problem = f"unusable address in From/To/Reply-To ({sender!r}, {to!r}): {exc}"
        raise PlatformError(problem, transient=False) from None
    if not message["To"].addresses or not message["To"].addresses[0].domain:
        raise PlatformError(f"not an email address: {to!r}", transient=False)
    message["Subject"] = rendered.subject
    message["Date"] = format_datetime(now.astimezone(ZoneInfo(timezone)))
    message["Message-ID"] = message_id(idempotency_key, sender)
    message["Auto-Submitted"] = "auto-generated"
    message[KEY_HEADER] = idempotency_key
    if transactional:
        message[TRANSACTIONAL_HEADER] = "yes"
    else:
        if not unsubscribe_url:
            raise ValueError("a non-transactional mail needs its unsubscribe link")
        message["List-Unsubscribe"] = f"<{unsubscribe_url}>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message.set_content(rendered.text, subtype="plain", charset="utf-8", cte="quoted-printable")
    message.add_alternative(rendered.html, subtype="html", charset="utf-8", cte="quoted-printable")
    message["Content-Language"] = rendered.locale.replace("_", "-")  # after the parts: set_content drops Content-*
    return message


def message_id(idempotency_key: str, sender: str) -> str:
    """The same action always gets the same Message-ID, at the sender's domain."""
    domain = parseaddr(sender)[1].rpartition("@")[2] or "aftercare.invalid"
    digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]
    return f"<aftercare.{digest}@{domain}>"


def envelope_sender(message: EmailMessage) -> str:
    return message["From"].addresses[0].addr_spec


def envelope_recipient(message: EmailMessage) -> str:
    return message["To"].addresses[0].addr_spec
