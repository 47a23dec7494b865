"""A message rendered exactly as the mail channel would compose it, and not sent (or sent as a test).

``aftercare preview`` and the console's preview page both render through
:func:`render_preview`, so what the merchant sees is what the channel composes.
:func:`send_test` hands such a message, addressed to the merchant, to the
shop's configured transport: ``aftercare preview TEMPLATE --send-to ME``.
"""

from __future__ import annotations

from email.message import EmailMessage
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aftercare.app import App
    from aftercare.models import Order


def render_preview(
    app: App,
    shop_id: str,
    template: str,
    *,
    locale: str = "",
    order: Order | None = None,
    variables: dict[str, Any] | None = None,
    plugin: str = "",
    transactional: bool = False,
    to: str = "",
) -> EmailMessage:
    """The message the mail channel would send for ``order`` (a sample one by default), unsent.

    ``aftercare preview`` and the console's preview page both render through
    this, so what the merchant sees is what the channel composes. ``to``
    addresses it (and its unsubscribe link) to someone else than the order's customer.
    """
    from aftercare.mail.channel import compose
    from aftercare.mail.templates import sample_order, samples, template_roots

    shop = app.shop(shop_id).profile
    order = order or sample_order(shop)
    if variables is None:
        variables = samples(template_roots(app, shop_id, plugin), template)
    return compose(
        app,
        shop_id=shop_id,
        template=template,
        to=to or order.customer.email or "customer@example.com",
        locale=locale or order.locale or order.customer.locale or shop.locale,
        context=variables,
        transactional=transactional,
        idempotency_key=f"{shop_id}/preview/send_email/order:{order.platform_id}/{template}",
        plugin=plugin,
        order=order,
    )


def send_test(app: App, shop_id: str, message: EmailMessage, to: str) -> dict[str, Any]:
    """Send ``message`` (from :func:`render_preview` with ``to=to``) to ``to`` through the shop's
    transport, its subject marked ``[test]``: a merchant sees the mail in their own client. Nothing
    is stored; a non-production shop sends too, since the one recipient is the merchant.
    Raises :class:`aftercare.platform.PlatformError` when the relay refuses it."""
    from aftercare.mail.transports import OutboxTransport, SmtpTransport

    subject = str(message["Subject"])
    del message["Subject"]
    message["Subject"] = f"[test] {subject}"
    settings = app.mail_settings(shop_id)
    if settings.transport == "outbox":
        folder = app.config.resolve_path(settings.outbox_dir)
        name = f"{app.now():%Y%m%dT%H%M%SZ}-{shop_id}-test-{_slug(to)}.eml"
        return OutboxTransport(folder).send(message, name)
    relay = SmtpTransport(settings.smtp)
    try:
        return relay.send(message)
    finally:
        relay.close()


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text)[:60]


def plugins_with_template(app: App, template: str) -> list[str]:
    """The plugins that ship ``template`` (for a hint when it is asked for without ``--plugin``)."""
    from aftercare.mail.templates import Root, plugin_templates, plugins_with_templates, template_names

    found = []
    for name in plugins_with_templates(app):
        folder = plugin_templates(app, name)
        if folder is not None and template in template_names([Root(folder, name)]):
            found.append(name)
    return found
