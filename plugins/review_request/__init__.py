"""Review requests: ask for a review of each product once it has been used for a while.

``days_after_delivery`` days (7) after a parcel is delivered, the customer
gets the mail ``review_request`` for each product in it, with a link to the
product's review page built from ``review_url``. Shops whose platform never
reports delivery are covered by a fallback scheduled when the parcel ships,
``days_after_shipping`` days (14) later. ``reminder_days`` after the first
mail, an optional ``review_reminder`` follows (only if the first went out).

At most once per customer and product: every action key names the product
and is scoped to the customer, so a second order of the same product asks
nothing again. One mail per product (up to ``max_products`` per parcel),
because the plugin API cannot tell a hook which products were already asked
about, so one mail listing several products could not be deduplicated per
product.

Delivery and the fallback, only one fires: both use the same keys, and
``on_delivered`` asks with ``reschedule=True``, which moves a fallback still
due to count from the delivery and leaves one that already went out alone.

Never for an order cancelled, refunded or with a return requested: the
core's fire-time checks drop a due request then, and the hooks for those
events cancel them at once, with the reason.
"""

from __future__ import annotations

from string import Formatter
from urllib.parse import quote

from pydantic import Field, model_validator

from aftercare import hookimpl
from aftercare.actions import Scope
from aftercare.models import Event, LineItem, Order, Shipment
from aftercare.settings import PluginSettings

#: What ``review_url`` may use, from the order line and the order.
PLACEHOLDERS = ("product_id", "variant_id", "sku", "order_id", "order_number", "shop_id")


class Settings(PluginSettings):
    enabled: bool = False
    #: Days after delivery.
    days_after_delivery: int = Field(7, ge=0)
    #: Days after shipping when delivery is never reported (0: no fallback).
    days_after_shipping: int = Field(14, ge=0)
    #: Days after the first mail for one reminder (0: no reminder).
    reminder_days: int = Field(0, ge=0)
    #: The product's review page, e.g. "https://shop.example/products/{product_id}#reviews".
    review_url: str = ""
    #: At most this many products (the first distinct ones of the parcel) are asked about.
    max_products: int = Field(3, ge=1)
    #: Up to this many products the shop relates to the reviewed one (Shopify's complementary
    #: products, WooCommerce's cross-sells and upsells), read when the mail is sent; 0: none.
    complementary_products: int = Field(0, ge=0, le=6)

    @model_validator(mode="after")
    def _review_url_is_usable(self) -> Settings:
        if self.enabled and not self.review_url:
            raise ValueError('set review_url, e.g. "https://shop.example/products/{product_id}#reviews"')
        if self.review_url:
            unknown = set(_fields(self.review_url)) - set(PLACEHOLDERS)
            if unknown or not self.review_url.startswith(("https://", "http://")):
                raise ValueError(
                    f"review_url must be an http(s) URL using only {{{'}, {'.join(PLACEHOLDERS)}}}; "
                    f"got {self.review_url!r}"
                )
        return self


@hookimpl
def on_shipped(event, ctx):
    days = ctx.settings.days_after_shipping
    if event.shipment is None or not days:
        return
    for line in _products(event.order, event.shipment, ctx.settings):
        _schedule(ctx, event, line, days)


@hookimpl
def on_delivered(event, ctx):
    """The request counts from delivery: a shipping fallback still due moves here; one that
    already went out stays the only one."""
    if event.shipment is None:
        return
    for line in _products(event.order, event.shipment, ctx.settings):
        _schedule(ctx, event, line, ctx.settings.days_after_delivery, reschedule=True)


@hookimpl
def on_return_requested(event, ctx):
    _withdraw(event, ctx, "a return was requested")


@hookimpl
def on_refunded(event, ctx):
    _withdraw(event, ctx, "the order was refunded")


@hookimpl
def on_order_cancelled(event, ctx):
    _withdraw(event, ctx, "the order was cancelled")


# -- helpers ----------------------------------------------------------------------------


def _schedule(ctx, event: Event, line: LineItem, days: int, reschedule: bool = False) -> None:
    """The request for one product ``days`` from now, and its reminder if the merchant wants one."""
    key, reminder_key = _keys(line)
    context = {"product": _product(line, event.order, ctx)}
    if ctx.settings.complementary_products:
        context["complementary_products"] = ctx.complementary_products(
            ctx.settings.complementary_products, lines=[line.platform_id]
        )
    first = ctx.later(days=days, reschedule=reschedule).send_email(
        "review_request", key=key, scope=Scope.CUSTOMER, context=context
    )
    if ctx.settings.reminder_days:
        ctx.later(days=days + ctx.settings.reminder_days, reschedule=reschedule).send_email(
            "review_reminder", key=reminder_key, scope=Scope.CUSTOMER, context=context, after=first
        )


def _withdraw(event: Event, ctx, reason: str) -> None:
    for line in _distinct(event.order.lines):
        for key in _keys(line):
            ctx.cancel(key, reason=f"review request withdrawn: {reason}")


def _keys(line: LineItem) -> tuple[str, str]:
    """The request's and the reminder's key: per product, so per customer with ``Scope.CUSTOMER``."""
    product = line.product_id or f"line-{line.platform_id}"
    return f"review:{product}", f"review-reminder:{product}"


def _products(order: Order, shipment: Shipment, settings: Settings) -> list[LineItem]:
    """The distinct products in this parcel (all of the order's when the platform does not say)
    for which ``review_url`` can be built."""
    ids = set(shipment.line_item_ids)
    lines = [line for line in order.lines if line.platform_id in ids] or list(order.lines)
    needed = [name for name in _fields(settings.review_url) if name in ("product_id", "variant_id", "sku")]
    usable = [line for line in _distinct(lines) if all(getattr(line, name) for name in needed)]
    return usable[: settings.max_products]


def _distinct(lines) -> list[LineItem]:
    seen, result = set(), []
    for line in lines:
        product = line.product_id or f"line-{line.platform_id}"
        if product not in seen:
            seen.add(product)
            result.append(line)
    return result


def _product(line: LineItem, order: Order, ctx) -> dict:
    values = {
        "product_id": line.product_id,
        "variant_id": line.variant_id,
        "sku": line.sku,
        "order_id": order.platform_id,
        "order_number": order.number.lstrip("#"),
        "shop_id": ctx.shop.id,
    }
    url = ctx.settings.review_url.format(**{name: quote(value, safe="") for name, value in values.items()})
    return {"title": line.title, "sku": line.sku, "product_id": line.product_id, "review_url": url}


def _fields(template: str) -> list[str]:
    return [name for _text, name, _spec, _conv in Formatter().parse(template) if name is not None]
