"""Warranty reminder: a few weeks before a product's warranty ends, remind the customer to check it.

Warranties are configured per product group in TOML::

    [plugins.warranty_reminder.groups.grinders]
    skus = ["GRIND-1"]               # exact SKUs (case-insensitive)
    product_ids = []                 # the platform's product ids
    title_keywords = ["grinder"]     # a word in the line's title (case-insensitive)
    months = 24                      # length of the warranty
    days_before = 30                 # the reminder is due this many days before it ends
    template = ""                    # "" (default): the plugin's ``template``

The core's line items carry SKU, product id, variant id and title but no
product tags, so groups match on those three.

The warranty starts at delivery, or when the first parcel left if the
platform never reports delivery. It ends ``months`` calendar months later
(31 January + 1 month is 28/29 February), and the reminder falls due exactly
``days_before`` days earlier, at the same time of day. Each order and group
gets one reminder, key ``warranty:<group>``: scheduled from shipping, moved
to count from the delivery when one is reported before it falls due
(``reschedule=True``); reported on or after that date, the one from shipping
stands.

Re-checked when due for a cancelled order, an unsubscribed customer and
refunded products. A partial refund or return does not void the warranty of
the other products: a group's reminder is withdrawn when its products are
returned or refunded (or the whole order is), not for any refund on the
order; a group whose products were refunded before they shipped gets none,
and one refunded after the reminder was scheduled is dropped when it falls due
(``lines_refunded``: the order is re-read then, with its refunds' lines).
"""

from __future__ import annotations

import calendar
from collections.abc import Collection
from datetime import datetime, timedelta

from pydantic import Field, HttpUrl

from aftercare import hookimpl
from aftercare.actions import Recheck
from aftercare.models import Event, FinancialStatus, LineItem, Order
from aftercare.settings import PluginSettings, ProductGroup, matched_groups

RECHECKS = (Recheck.CANCELLED, Recheck.UNSUBSCRIBED, Recheck.LINES_REFUNDED)
#: The key of the reminder from shipping before one key per group did both (still withdrawn).
LEGACY_FALLBACK = "warranty-fallback:{}"


class Warranty(ProductGroup):
    """Products with the same warranty: matched by SKU, product id or a title keyword."""

    months: int = Field(ge=1)
    days_before: int = Field(30, ge=0)
    #: The group's template; "" for the plugin's ``template``.
    template: str = ""


class Settings(PluginSettings):
    enabled: bool = False
    template: str = "warranty_reminder"
    #: Where to make a warranty claim, linked from the mail (leave out: "reply to this email").
    claim_url: HttpUrl | None = None
    groups: dict[str, Warranty] = {}

    def longest_delay(self) -> timedelta:
        # A calendar month is at most 31 days; the reminder falls due days_before the end.
        return max(
            (timedelta(days=31 * w.months - w.days_before) for w in self.groups.values()),
            default=timedelta(0),
        )


# -- hooks ------------------------------------------------------------------------------


@hookimpl
def on_shipped(event: Event, ctx) -> None:
    order = event.order
    if order.delivery_known:
        return  # on_delivered starts the warranty at the delivery
    start = order.first_shipped_at or event.occurred_at
    for name, warranty, lines in _covered(ctx, order):
        _remind(ctx, name, warranty, lines, start=start)


@hookimpl
def on_delivered(event: Event, ctx) -> None:
    order = event.order
    delivered = (event.shipment.delivered_at if event.shipment else None) or event.occurred_at
    shipped = order.first_shipped_at
    for name, warranty, lines in _covered(ctx, order):
        if shipped is not None and ctx.now() >= _reminder_due(shipped, warranty):
            # The reminder counted from shipping is due or sent: it stays the one (recorded if it was not).
            _remind(ctx, name, warranty, lines, start=shipped)
            continue
        _remind(ctx, name, warranty, lines, start=delivered, reschedule=True)
        # Orders scheduled before one key did it kept the shipping one under a second key.
        ctx.cancel(LEGACY_FALLBACK.format(name), reason="delivery reported: the warranty starts at the delivery")


@hookimpl
def on_return_requested(event: Event, ctx) -> None:
    request = event.return_request
    returned = set(request.line_item_ids) if request else set()
    _withdraw(event.order, ctx, returned, whole_order=not returned, why="its products are being returned")


@hookimpl
def on_refunded(event: Event, ctx) -> None:
    # This refund's lines and any earlier refund's: a product refunded in two goes is refunded.
    refunded = set(event.refund.line_item_ids) if event.refund else set()
    refunded |= event.order.refunded_line_ids
    whole = event.order.financial_status is FinancialStatus.REFUNDED
    _withdraw(event.order, ctx, refunded, whole_order=whole, why="its products were refunded")


@hookimpl
def on_order_cancelled(event: Event, ctx) -> None:
    _withdraw(event.order, ctx, set(), whole_order=True, why="the order was cancelled")


# -- helpers ----------------------------------------------------------------------------


def _covered(ctx, order: Order) -> list[tuple[str, Warranty, list[LineItem]]]:
    """The groups the order's products are in, but for products already refunded."""
    if order.financial_status is FinancialStatus.REFUNDED:
        return []
    refunded = order.refunded_line_ids
    return [
        (name, warranty, lines)
        for name, warranty, lines in matched_groups(ctx.settings.groups, order.lines)
        if not all(line.platform_id in refunded for line in lines)
    ]


def _remind(
    ctx, name: str, warranty: Warranty, lines: list[LineItem], *, start: datetime, reschedule: bool = False
) -> None:
    """Schedule the reminder of a warranty starting at ``start``; nothing if it has already ended."""
    ends = add_months(start, warranty.months)
    if ends <= ctx.now():
        return
    context = {
        "group": name,
        "months": warranty.months,
        "starts_at": start.isoformat(),
        "ends_at": ends.isoformat(),
        "products": [{"title": line.title, "sku": line.sku, "quantity": line.quantity} for line in lines],
        "claim_url": str(ctx.settings.claim_url) if ctx.settings.claim_url else "",
    }
    delay = max(_reminder_due(start, warranty) - ctx.now(), timedelta(0))
    later = ctx.later(delay, rechecks=RECHECKS, reschedule=reschedule)
    later.send_email(
        warranty.template or ctx.settings.template,
        key=f"warranty:{name}",
        context=context,
        lines=[line.platform_id for line in lines],
    )


def _withdraw(order: Order, ctx, line_ids: Collection[str], *, whole_order: bool, why: str) -> None:
    for name, _warranty, lines in matched_groups(ctx.settings.groups, order.lines):
        if whole_order or all(line.platform_id in line_ids for line in lines):
            for key in (f"warranty:{name}", LEGACY_FALLBACK.format(name)):
                ctx.cancel(key, reason=f"{why}: no warranty reminder for {name}")


def _reminder_due(start: datetime, warranty: Warranty) -> datetime:
    return add_months(start, warranty.months) - timedelta(days=warranty.days_before)


def add_months(moment: datetime, months: int) -> datetime:
    """Calendar months later, the day clamped to the month's last (31 Jan + 1 month = 28/29 Feb)."""
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    return moment.replace(year=year, month=month, day=min(moment.day, calendar.monthrange(year, month)[1]))
