"""Coupons: a unique code for the customer's next purchase, and rewards for other plugins' moments.

After payment (``send_after = "paid"``) or after delivery (``"delivered"``)
the plugin creates a single-use code on the shop's platform through
``ctx.create_coupon`` (percent or fixed amount, expiry, minimum spend,
restricted to this customer) and mails it with the template ``coupon``; the
mail waits until the platform has the code and is dropped if it could not be
created. Orders whose total is below ``minimum_order`` get nothing.

At most one per customer and ``period``: the action key names the calendar
period of the order date in the shop's time zone (``coupon:2026-Q1`` for
``"quarter"``; ``2026-01`` for ``"month"``, ``2026`` for ``"year"``, ``once``
for ``"ever"``) and is scoped to the customer, so a second order in the same
quarter records nothing new. Two orders on either side of a period boundary
each get one.

``reward_for`` turns the coupon into the reward of another plugin's moment:
``"optin_confirmed"`` (a confirmed newsletter sign-up, the welcome coupon)
and ``"survey_answered"`` (thanks for an answer). The reward goes out with
the template ``reward_coupon``, at most once per customer and moment, and
uses the same coupon settings.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import Field, model_validator

from aftercare import hookimpl
from aftercare.actions import Scope
from aftercare.models import Money, Order
from aftercare.settings import PluginSettings

Moment = Literal["optin_confirmed", "survey_answered"]


class Settings(PluginSettings):
    enabled: bool = False
    #: When the next-purchase coupon is sent: "paid" or "delivered".
    send_after: Literal["paid", "delivered"] = "paid"
    #: "percent" off, or a "fixed_amount" off in the order's currency.
    kind: Literal["percent", "fixed_amount"] = "percent"
    value: Decimal = Field(Decimal(10), gt=0)
    #: Days the code is valid.
    valid_days: int = Field(60, ge=1)
    #: The next order's subtotal must reach this (order currency); none by default.
    minimum_spend: Decimal | None = Field(None, gt=0)
    #: Orders whose total is below this get no coupon (order currency).
    minimum_order: Decimal = Field(Decimal(0), ge=0)
    #: At most one next-purchase coupon per customer per "month", "quarter", "year", or "ever".
    period: Literal["month", "quarter", "year", "ever"] = "quarter"
    #: Put before the random part of the code, e.g. "THANKS" -> THANKS-7Q2XM-4KD9P.
    prefix: str = Field("", max_length=20, pattern=r"^[A-Za-z0-9]*$")
    #: Other plugins' moments rewarded with a coupon (at most one per customer and moment).
    reward_for: list[Moment] = []

    @model_validator(mode="after")
    def _percent_is_a_percentage(self) -> Settings:
        if self.kind == "percent" and self.value > 100:
            raise ValueError(f"a percent coupon takes a value up to 100, got {self.value}")
        return self


@hookimpl
def on_order_paid(event, ctx):
    if ctx.settings.send_after == "paid":
        _next_purchase(event.order, ctx)


@hookimpl
def on_delivered(event, ctx):
    if ctx.settings.send_after == "delivered":
        _next_purchase(event.order, ctx)


@hookimpl
def on_optin_confirmed(event, ctx):
    if "optin_confirmed" in ctx.settings.reward_for:
        _reward(event.order, ctx, "optin_confirmed")


@hookimpl
def on_survey_answered(event, ctx):
    if "survey_answered" in ctx.settings.reward_for:
        _reward(event.order, ctx, "survey_answered")


# -- helpers ----------------------------------------------------------------------------


def _next_purchase(order: Order, ctx) -> None:
    settings = ctx.settings
    if order.total.amount < settings.minimum_order or order.is_cancelled or order.is_refunded:
        return
    key = f"coupon:{period_key(order.created_at, settings.period, ctx.shop.timezone)}"
    coupon = _create(ctx, order, key)
    ctx.send_email("coupon", key=key, scope=Scope.CUSTOMER, context=_offer(coupon.payload), after=coupon)


def _reward(order: Order, ctx, moment: Moment) -> None:
    key = f"reward:{moment}"
    coupon = _create(ctx, order, key)
    context = {**_offer(coupon.payload), "moment": moment}
    ctx.send_email("reward_coupon", key=key, scope=Scope.CUSTOMER, context=context, after=coupon)


def _create(ctx, order: Order, key: str):
    settings = ctx.settings
    value = settings.value
    return ctx.create_coupon(
        percent=value if settings.kind == "percent" else None,
        amount=Money(value, order.currency) if settings.kind == "fixed_amount" else None,
        expires_in=timedelta(days=settings.valid_days),
        minimum_subtotal=Money(settings.minimum_spend, order.currency) if settings.minimum_spend else None,
        prefix=settings.prefix,
        key=key,
        scope=Scope.CUSTOMER,
    )


def _offer(payload: dict) -> dict:
    """What the mail says about the coupon, from the request as the platform will get it."""
    percent = payload["kind"] == "percent"
    return {
        "code": payload["code"],
        "percent": _plain(payload["value"]) if percent else None,
        "amount": None if percent else {"amount": payload["value"], "currency": payload["currency"]},
        "expires_at": payload["expires_at"],
        "minimum": payload["minimum_subtotal"],
    }


def period_key(moment: datetime, period: str, timezone: str) -> str:
    """The calendar period of ``moment`` in the shop's time zone: 2026-Q1, 2026-01, 2026 or once."""
    local = moment.astimezone(ZoneInfo(timezone))
    if period == "month":
        return f"{local:%Y-%m}"
    if period == "quarter":
        return f"{local.year}-Q{(local.month - 1) // 3 + 1}"
    if period == "year":
        return f"{local.year}"
    return "once"


def _plain(value: str) -> str:
    """``"10"`` and ``"12.5"`` as a reader writes them (no ``10.00``)."""
    number = Decimal(value).normalize()
    return f"{number:f}"
