"""A message rendered exactly as the mail channel would compose it, and not sent.

``aftercare preview`` and the console's preview page both render through
:func:`render_preview`, so what the merchant sees is what the channel composes.
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
) -> EmailMessage:
    """The message the mail channel would send for ``order`` (a sample one by default), unsent.

    ``aftercare preview`` and the console's preview page both render through
    this, so what the merchant sees is what the channel composes.
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
        to=order.customer.email or "customer@example.com",
        locale=locale or order.locale or order.customer.locale or shop.locale,
        context=variables,
        transactional=transactional,
        idempotency_key=f"{shop_id}/preview/send_email/order:{order.platform_id}/{template}",
        plugin=plugin,
        order=order,
    )
