"""Newsletter invitations with double opt-in.

``days_after_delivery`` days (2) after delivery, a customer who has not
subscribed gets the mail ``newsletter_invite`` with a signed confirmation
link (``ctx.optin_link()``). It is marketing mail: suppression, unsubscribe,
the frequency cap and quiet hours apply, and the core's fire-time checks drop
it if the order was cancelled, refunded or returned meanwhile. Customers whose
platform consent is already ``subscribed`` are not asked, nor are those who
``unsubscribed`` there or have a confirmation ``pending``: only
``not_subscribed`` and ``unknown``. One invitation per customer, ever (the key
is scoped to the customer), whatever the number of orders or parcels.

When the customer confirms, the page records the consent and fires
``on_optin_confirmed``; this plugin then tells the platform
(``ctx.set_marketing_consent("subscribed", source="double opt-in")``, which
the core executes through the adapter and records with time and source) and,
if ``customer_tag`` is set, tags the customer. A welcome coupon is the coupon
plugin's job (``[plugins.coupon] reward_for = ["optin_confirmed"]``).
"""

from __future__ import annotations

from pydantic import Field

from aftercare import hookimpl
from aftercare.actions import Scope
from aftercare.models import ConsentState
from aftercare.settings import PluginSettings

#: Platform consent states that may be invited.
INVITABLE = (ConsentState.NOT_SUBSCRIBED, ConsentState.UNKNOWN)


class Settings(PluginSettings):
    enabled: bool = False
    #: Days after delivery.
    days_after_delivery: int = Field(2, ge=0)
    #: A customer tag to add on the platform when the sign-up is confirmed ("" for none).
    customer_tag: str = ""


@hookimpl
def on_delivered(event, ctx):
    if event.order.customer.marketing_consent not in INVITABLE:
        return
    ctx.later(days=ctx.settings.days_after_delivery).send_email(
        "newsletter_invite",
        key="newsletter-invite",
        scope=Scope.CUSTOMER,
        context={"optin_url": ctx.optin_link()},
    )


@hookimpl
def on_optin_confirmed(event, ctx):
    ctx.set_marketing_consent(
        ConsentState.SUBSCRIBED, source="double opt-in", key=f"subscribed:order:{event.order.platform_id}"
    )
    if ctx.settings.customer_tag:
        ctx.tag_customer(ctx.settings.customer_tag)
