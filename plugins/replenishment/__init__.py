"""Replenishment: a reminder to buy again when a product's usage cycle runs out.

Products with a usage cycle are grouped in TOML, matched like the other
plugins' groups (SKU, product id, title keyword)::

    [plugins.replenishment]
    enabled = true
    shop_url = "https://shop.example.com"   # for the buy-again links

    [plugins.replenishment.groups.coffee]
    skus = ["BEANS-1KG"]
    cycle_days = 30                  # how long one unit lasts
    per_unit = true                  # two bags last 60 days (the default)
    url = ""                         # the buy-again link; "" = the platform's cart link

The reminder (key ``replenish:<group>``) falls due ``cycle_days`` (times the
quantity) after delivery; when the platform never reports delivery, after
``assumed_transit_days`` more from the first shipment, moved to count from
the delivery if one is reported later (the ``reschedule`` rule, as in
usage_tips). A new paid order of the same customer containing a product of
the group withdraws the pending reminder at once and starts its own cycle.

The buy-again link is the group's ``url``, else a link that puts the same
products in the cart: ``{shop_url}/cart/{variant}:{quantity},…`` on Shopify,
``{shop_url}/?add-to-cart={variation or product}&quantity={n}`` on
WooCommerce (one product: WooCommerce's link takes one). Marketing mail: re-checked when due
(cancelled, refunded, returned, unsubscribed), quiet hours and the frequency
cap apply. A cycle that already ran out when aftercare first saw the order
(a backfill) sends nothing.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import Field, model_validator

from aftercare import hookimpl
from aftercare.actions import Scope
from aftercare.models import Event, LineItem
from aftercare.settings import PluginSettings, ProductGroup, matched_groups

TEMPLATE = "replenishment"


class Group(ProductGroup):
    """Products that run out together: matched by SKU, product id or a title keyword."""

    #: Days one unit lasts.
    cycle_days: int = Field(ge=1)
    #: Multiply the cycle by the quantity bought (two bags last twice as long).
    per_unit: bool = True
    #: The buy-again link; "" for the platform's cart link made from ``shop_url``.
    url: str = Field("", pattern=r"^(https?://\S+)?$")


class Settings(PluginSettings):
    enabled: bool = False
    #: The shop's storefront address, for the platform's cart links.
    shop_url: str = Field("", pattern=r"^(https?://\S+)?$")
    #: When the platform never reports delivery, assume the parcel took this long.
    assumed_transit_days: int = Field(4, ge=0)
    groups: dict[str, Group] = {}

    @model_validator(mode="after")
    def _every_group_has_a_link(self) -> Settings:
        for name, group in self.groups.items():
            if not group.url and not self.shop_url:
                raise ValueError(f"groups.{name}: set its url, or the plugin's shop_url for the platform's cart link")
        return self

    def longest_delay(self) -> timedelta:
        """A cycle times the largest quantity is unknown ahead: the longest single cycle."""
        return max((timedelta(days=g.cycle_days) for g in self.groups.values()), default=timedelta(0))


# -- hooks ------------------------------------------------------------------------------


@hookimpl
def on_order_paid(event: Event, ctx) -> None:
    for name, _group, _lines in matched_groups(ctx.settings.groups, event.order.lines):
        # Bought again: the earlier order's reminder is not needed; this order starts its own cycle.
        ctx.cancel(_key(name), reason="replenishment withdrawn: the customer bought it again", scope=Scope.CUSTOMER)


@hookimpl
def on_shipped(event: Event, ctx) -> None:
    order = event.order
    if order.delivery_known:
        return  # on_delivered counts from the delivery
    shipped = order.first_shipped_at or event.occurred_at
    _remind(event, ctx, shipped + timedelta(days=ctx.settings.assumed_transit_days))


@hookimpl
def on_delivered(event: Event, ctx) -> None:
    delivered = (event.shipment.delivered_at if event.shipment else None) or event.occurred_at
    _remind(event, ctx, delivered, reschedule=True)


# -- helpers ----------------------------------------------------------------------------


def _remind(event: Event, ctx, arrived: datetime, *, reschedule: bool = False) -> None:
    order = event.order
    if order.is_cancelled or order.is_refunded:
        return
    for name, group, lines in matched_groups(ctx.settings.groups, order.lines):
        due = arrived + _cycle(group, lines)
        if due <= ctx.now():
            continue  # the cycle ran out before aftercare saw the order (a backfill)
        context = {
            "group": name,
            "products": [{"title": line.title, "sku": line.sku, "quantity": line.quantity} for line in lines],
            "buy_url": group.url or cart_link(ctx.shop.platform, ctx.settings.shop_url, lines),
        }
        later = ctx.later(due - ctx.now(), reschedule=reschedule)
        later.send_email(TEMPLATE, key=_key(name), context=context, lines=[line.platform_id for line in lines])


def _key(group: str) -> str:
    return f"replenish:{group}"


def _cycle(group: Group, lines: list[LineItem]) -> timedelta:
    units = max(line.quantity for line in lines) if group.per_unit else 1
    return timedelta(days=group.cycle_days * max(units, 1))


def cart_link(platform: str, shop_url: str, lines: list[LineItem]) -> str:
    """A link that puts ``lines`` in the cart again, or the shop's address if the platform has none."""
    base = shop_url.rstrip("/")
    if platform == "shopify":
        items = ",".join(f"{line.variant_id}:{line.quantity}" for line in lines if line.variant_id)
        return f"{base}/cart/{items}" if items else base
    if platform == "woocommerce":
        line = next((line for line in lines if line.variant_id or line.product_id), None)
        if line is None:
            return base
        return f"{base}/?add-to-cart={line.variant_id or line.product_id}&quantity={line.quantity}"
    return base
