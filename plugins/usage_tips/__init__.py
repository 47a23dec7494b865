"""Usage tips: a few days after delivery, how to get the most out of what the customer bought.

Products are sorted into groups configured in TOML; each group has its own
template and delay::

    [plugins.usage_tips.groups.coffee]
    skus = ["CUP-2"]                 # exact SKUs (case-insensitive)
    product_ids = ["632910392"]      # the platform's product ids
    title_keywords = ["espresso"]    # a word in the line's title (case-insensitive)
    template = "tips_coffee"         # "" (default): the generic usage_tips template ...
    tips = []                        # ... which lists these lines (or {en = [...], es = [...]})
    days_after_delivery = 5          # default: the plugin's days_after_delivery

The core's line items carry SKU, product id, variant id and title but no
product tags, so groups match on those three. An order with products of two
groups gets two mails, each once (keys ``tips:<group>``).

Delivery or shipping, never both: when the platform never reports delivery
the mail goes ``assumed_transit_days`` + the group's delay after the first
parcel left; a reported delivery asks for the same key with
``reschedule=True``, which moves the mail to count from the delivery while
it is still due and leaves it alone once it went out. Marketing mail: re-checked when due (cancelled, refunded,
returned, unsubscribed) and subject to quiet hours and the frequency cap.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import Field

from aftercare import hookimpl
from aftercare.models import Event, LineItem
from aftercare.settings import LocalizedLines, PluginSettings, ProductGroup, matched_groups

GENERIC_TEMPLATE = "usage_tips"


class Group(ProductGroup):
    """Products that share tips: matched by SKU, product id or a title keyword."""

    #: The group's template; "" for the generic one, which lists ``tips``.
    template: str = ""
    #: Lines of the generic template: one list for every language, or a list per language
    #: (``{en = [...], es = [...]}``; the mail's language, then ``en``, then the first).
    tips: LocalizedLines = []
    #: Days after delivery; default: the plugin's ``days_after_delivery``.
    days_after_delivery: int | None = Field(None, ge=0)


class Settings(PluginSettings):
    enabled: bool = False
    days_after_delivery: int = Field(5, ge=0)
    #: When the platform never reports delivery, assume the parcel took this long.
    assumed_transit_days: int = Field(4, ge=0)
    groups: dict[str, Group] = {}


# -- hooks ------------------------------------------------------------------------------


@hookimpl
def on_shipped(event: Event, ctx) -> None:
    order = event.order
    if order.delivery_known:
        return  # on_delivered schedules from the delivery date
    shipped = order.first_shipped_at or event.occurred_at
    for name, group, lines in matched_groups(ctx.settings.groups, order.lines):
        due = shipped + timedelta(days=ctx.settings.assumed_transit_days + _days(group, ctx.settings))
        _send_tips(ctx, name, group, lines, due=due)


@hookimpl
def on_delivered(event: Event, ctx) -> None:
    delivered = (event.shipment.delivered_at if event.shipment else None) or event.occurred_at
    for name, group, lines in matched_groups(ctx.settings.groups, event.order.lines):
        _send_tips(ctx, name, group, lines, due=delivered + timedelta(days=_days(group, ctx.settings)), reschedule=True)


# -- helpers ----------------------------------------------------------------------------


def _days(group: Group, settings: Settings) -> int:
    return settings.days_after_delivery if group.days_after_delivery is None else group.days_after_delivery


def _send_tips(ctx, name: str, group: Group, lines: list[LineItem], *, due: datetime, reschedule: bool = False) -> None:
    context = {
        "group": name,
        "products": [{"title": line.title, "sku": line.sku, "quantity": line.quantity} for line in lines],
        "tips": group.tips if isinstance(group.tips, dict) else list(group.tips),
    }
    later = ctx.later(max(due - ctx.now(), timedelta(0)), reschedule=reschedule)
    later.send_email(group.template or GENERIC_TEMPLATE, key=f"tips:{name}", context=context)
