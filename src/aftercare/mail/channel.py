"""The ``send_email`` channel: from a stored action to a sent (or filed) message.

Registered through ``register_channels`` like any channel, so a plugin can
replace it. For each due mail it checks suppression, consent, the frequency
cap and quiet hours (:mod:`aftercare.mail.policy`), renders the template in
the reader's language (:mod:`aftercare.mail.templates`), builds the MIME
message (:mod:`aftercare.mail.message`) and hands it to the shop's transport.

The order is not part of the action's payload. Templates get it from the
event the action came from, as stored in the inbox (no platform call, and the
names and lines the customer saw); only when that event is gone is the order
fetched from the platform. :func:`compose` is what ``aftercare preview`` runs
too, so a preview is exactly what would be sent.
"""

from __future__ import annotations

import dataclasses
import re
import threading
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any

from aftercare import hookimpl, metrics
from aftercare.actions import ActionDropped, ActionJob, ActionKind, ActionRecord
from aftercare.config.mail import MailSettings, SmtpSettings
from aftercare.mail import policy
from aftercare.mail.brand import BrandError, brand_context, brand_css, inline_css
from aftercare.mail.message import build_message
from aftercare.mail.products import with_complementary_products
from aftercare.mail.templates import default_context, mail_context, render_email
from aftercare.mail.transports import OutboxTransport, RecipientRefused, SmtpTransport
from aftercare.mail.unsubscribe import unsubscribe_url
from aftercare.models import Order, normalise_email
from aftercare.platform import PlatformError
from aftercare.store import SuppressionReason

if TYPE_CHECKING:
    from aftercare.app import App


@hookimpl
def register_channels(register):
    channel = MailChannel()
    register(ActionKind.SEND_EMAIL.value, channel, refuses=channel.refuses)


class MailChannel:
    """The executor. One instance per plugin manager (so per app); it keeps the open
    SMTP connections, one per relay, for as long as the app runs."""

    def __init__(self) -> None:
        self._relays: dict[str, SmtpTransport] = {}
        self._lock = threading.Lock()

    def __call__(self, job: ActionJob) -> dict[str, Any]:
        action, app, settings = job.action, job.app, job.mail_settings
        policy.check_send(app, action, settings)
        p = action.payload
        context = with_complementary_products(app, action, job.order, p.get("context", {}))
        message = compose(
            app,
            shop_id=action.shop_id,
            template=p["template"],
            to=p["to"],
            locale=p.get("locale", ""),
            context=coupon_code_as_held(app, action, context),
            transactional=bool(p.get("transactional", False)),
            idempotency_key=action.idempotency_key,
            plugin=action.plugin,
            order=job.order,
            settings=settings,
        )
        # The subject as sent: the console lists it (the body is re-rendered or read from the outbox file).
        result = {"message_id": message["Message-ID"], "locale": message["Content-Language"],
                  "subject": str(message["Subject"])}  # fmt: skip
        if settings.transport == "outbox":
            folder = app.config.resolve_path(settings.outbox_dir)
            return {**result, **OutboxTransport(folder).send(message, outbox_name(app, action))}
        try:
            relayed = self.relay(settings.smtp).send(message)
        except RecipientRefused as exc:
            metrics.smtp_result(action.shop_id, "refused")
            app.store.suppress(action.shop_id, exc.address, SuppressionReason.BOUNCED, exc.message)
            raise
        except PlatformError as exc:
            metrics.smtp_result(action.shop_id, "deferred" if exc.transient else "rejected")
            raise
        metrics.smtp_result(action.shop_id, "sent" if relayed.get("confirmed", True) else "unconfirmed")
        return {**result, **relayed}

    def refuses(self, job: ActionJob) -> ActionDropped | None:
        """Whether the mail would be refused for good if it went now: suppression, consent, frequency cap."""
        return policy.refused_for_good(lambda: policy.check_send(job.app, job.action, job.mail_settings))

    def relay(self, settings: SmtpSettings) -> SmtpTransport:
        key = settings.model_dump_json()
        with self._lock:
            if key not in self._relays:
                self._relays[key] = SmtpTransport(settings)
            return self._relays[key]

    def close(self) -> None:
        with self._lock:
            relays, self._relays = list(self._relays.values()), {}
        for relay in relays:
            relay.close()


def compose(
    app: App,
    *,
    shop_id: str,
    template: str,
    to: str,
    locale: str,
    context: dict[str, Any],
    transactional: bool,
    idempotency_key: str,
    plugin: str = "",
    order: Order | None = None,
    settings: MailSettings | None = None,
) -> EmailMessage:
    """The message a mail action produces: rendered, with every header. Sends nothing."""
    settings = settings or app.mail_settings(shop_id)
    shop = app.shop(shop_id).profile
    sender = shop.sender or settings.sender
    if not sender:
        raise PlatformError(f"shop {shop_id!r} has no sender: set `sender` for the shop or in [mail]", transient=False)
    link = None if transactional else unsubscribe_url(app, shop_id, to, locale)
    brand = brand_context(settings.brand, shop.name or shop.id)
    variables = mail_context(
        default_context(order, shop), context, transactional=transactional, unsubscribe_url=link, brand=brand
    )
    rendered = render_email(app, shop_id, template, locale=locale, context=variables, plugin=plugin)
    try:
        rendered = dataclasses.replace(rendered, html=inline_css(rendered.html, brand_css(app, settings.brand)))
    except BrandError as exc:
        raise PlatformError(f"shop {shop_id!r}: {exc}", transient=False) from None
    customer = order.customer if order is not None else None
    to_name = customer.name if customer and normalise_email(customer.email) == normalise_email(to) else ""
    return build_message(
        rendered,
        sender=sender,
        to=to,
        to_name=to_name,
        reply_to=settings.reply_to,
        now=app.now(),
        timezone=shop.timezone,
        idempotency_key=idempotency_key,
        transactional=transactional,
        unsubscribe_url=link,
    )


def coupon_code_as_held(app: App, action: ActionRecord, context: dict[str, Any]) -> dict[str, Any]:
    """The mail's ``code`` as the platform holds it, once the coupon the mail waited
    for is made: the context has the code as chosen, and WooCommerce lower-cases
    codes. Only a different spelling of the same code is taken from the result."""
    code = context.get("code")
    if not action.depends_on or not isinstance(code, str):
        return context
    (coupon,) = app.store.actions_by_keys([action.depends_on]) or (None,)
    if coupon is None or coupon.kind is not ActionKind.CREATE_COUPON:
        return context
    held = coupon.result.get("code")
    if isinstance(held, str) and held != code and held.strip().lower() == code.strip().lower():
        return {**context, "code": held}
    return context


def outbox_name(app: App, action: ActionRecord) -> str:
    """Sortable by send time; the shop, action id and template say which mail it is."""
    template = re.sub(r"[^A-Za-z0-9_-]", "_", str(action.payload.get("template", "mail")))
    return f"{app.now():%Y%m%dT%H%M%SZ}-{action.shop_id}-{action.id:06d}-{template}.eml"
