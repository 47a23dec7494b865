"""The console's view of one mail action: the message as it was sent, or as it would be.

The store keeps no rendered body (only the action: template, recipient,
context; and in the result the Message-ID, locale and, since issue 20, the
subject). Two sources are exact, so the view uses them in this order:

1. **stored**: with ``[mail] transport = "outbox"`` the message was written
   as an ``.eml`` file, whose path the action's result holds: the bytes that
   were "sent", parsed as they are. The file is read only from inside the
   shop's outbox folder (a result pointing anywhere else is not followed).
2. **re-rendered**: otherwise (SMTP, or an outbox file deleted since, an
   erasure say) it is composed again by :func:`aftercare.mail.channel.compose`,
   the code the channel ran, from the same action: the template, recipient,
   locale and context of its payload, the coupon code as the platform holds
   it, and the order as the event that caused it carried it. It is what was
   sent unless the templates or the shop's settings changed since (the
   ``Date`` is set to the time of sending; the unsubscribe link is sealed
   anew, with a fresh IV, so its characters differ for the same page): the
   page says so. The platform is never asked (a console
   GET calls nobody); an order no longer stored is shown as "cannot be
   re-rendered".

Keeping every rendered body in the store would make the view exact for SMTP
too, at the price of a copy of each customer's mail in the database that
erasure and retention must then find; the outbox file already is that copy
where a merchant wants one.
"""

from __future__ import annotations

from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import TYPE_CHECKING

from aftercare.actions import ActionKind, ActionRecord, ActionState
from aftercare.mail.templates import TemplateError
from aftercare.platform import PlatformError

if TYPE_CHECKING:
    from aftercare.app import App


@dataclass(frozen=True, slots=True)
class ShownMessage:
    source: str  # "stored" | "re-rendered" | "none"
    note: str  # what the merchant must know about it, for people
    headers: list[tuple[str, str]]
    html: str
    text: str

    @property
    def subject(self) -> str:
        return next((v for k, v in self.headers if k == "Subject"), "")


SHOWN_HEADERS = ("Subject", "From", "To", "Reply-To", "Date", "Message-ID", "Content-Language", "List-Unsubscribe")


def subject_of(action: ActionRecord) -> str:
    """The subject the lists show: as sent (the result), else which template it is."""
    subject = action.result.get("subject") if action.result else None
    if isinstance(subject, str) and subject:
        return subject
    return f"({action.payload.get('template', 'mail')}, not sent)" if action.state is not ActionState.DONE else ""


def recipient_of(action: ActionRecord) -> str:
    to = action.payload.get("to", "")
    return to if isinstance(to, str) else ""


def shown_message(app: App, action: ActionRecord) -> ShownMessage:
    """The message of a ``send_email`` action (see the module docstring)."""
    if action.kind is not ActionKind.SEND_EMAIL:
        raise ValueError(f"action {action.id} is a {action.kind.value}, not a mail")
    stored = _outbox_file(app, action)
    if stored is not None:
        message = BytesParser(policy=policy.default).parsebytes(stored.read_bytes())
        assert isinstance(message, EmailMessage)
        return _shown(message, "stored", f"The message as written to the outbox: {stored.name}.")
    sent = action.state is ActionState.DONE
    try:
        message = _compose_again(app, action)
    except (TemplateError, PlatformError, KeyError, LookupError) as exc:
        return ShownMessage("none", f"It cannot be re-rendered: {exc}", [], "", "")
    if message is None:
        return ShownMessage("none", "It cannot be re-rendered: the event it came from is no longer stored.", [], "", "")
    if sent:
        note = ("Re-rendered now from the stored action, by the code that sent it: the same template, recipient, "
                "context and order. It differs from what was sent only if the templates or the shop's settings "
                "changed since (the Date is the time of sending; the unsubscribe link is sealed anew, so its "
                "characters differ while it leads to the same page).")  # fmt: skip
    else:
        note = f"Not sent ({action.state.value}): this is what it would send, rendered now."
    return _shown(message, "re-rendered", note)


def _outbox_file(app: App, action: ActionRecord) -> Path | None:
    path = action.result.get("path") if action.result else None
    if not isinstance(path, str) or not path.endswith(".eml"):
        return None
    folder = app.config.resolve_path(app.mail_settings(action.shop_id).outbox_dir).resolve()
    candidate = Path(path).resolve()
    if not candidate.is_relative_to(folder) or not candidate.is_file():
        return None
    return candidate


def _compose_again(app: App, action: ActionRecord) -> EmailMessage | None:
    from aftercare.mail.channel import compose, coupon_code_as_held

    order = app.store.event_order(action.shop_id, action.event_key) if action.event_key else None
    if order is None or order.platform_id != action.order_id:
        order = app.store.latest_order(action.shop_id, action.order_id)
    if order is None:
        return None
    p = action.payload
    message = compose(
        app,
        shop_id=action.shop_id,
        template=p["template"],
        to=p["to"],
        locale=p.get("locale", ""),
        context=coupon_code_as_held(app, action, p.get("context", {})),
        transactional=bool(p.get("transactional", False)),
        idempotency_key=action.idempotency_key,
        plugin=action.plugin,
        order=order,
    )
    if action.state is ActionState.DONE:  # the time it was sent, not now
        from email.utils import format_datetime

        message.replace_header("Date", format_datetime(action.updated_at))
    return message


def _shown(message: EmailMessage, source: str, note: str) -> ShownMessage:
    headers = [(name, str(message[name])) for name in SHOWN_HEADERS if message[name] is not None]
    parts = {}
    for kind in ("html", "plain"):
        body = message.get_body((kind,))
        parts[kind] = body.get_content() if body is not None else ""
    return ShownMessage(source, note, headers, parts["html"], parts["plain"])
