"""Win-back: a mail to a customer whose last order is ``days`` old, and who has not ordered since.

Each paid order schedules one mail (key ``win_back``) ``days`` after payment,
optionally with a single-use coupon created only when the mail is due. The
next paid order of the same customer withdraws the pending one at once
(``ctx.cancel(..., scope="customer")``) and schedules its own, so only the
customer's latest order ever waits: the worker's schedule does the counting,
no platform scan runs per day.

When the mail falls due it is re-checked (DESIGN rule 3): dropped if the
order was cancelled or refunded, the customer unsubscribed, or the customer
history in the store holds a later paid order (``ordered_again``: a backfill
may dispatch the later order first). It is marketing mail: quiet hours, the
frequency cap and marketing consent apply.

Orders whose win-back moment has already passed when they reach aftercare (a
first sync of old history) get none: enabling the plugin never mails every
lapsed customer of the shop's past at once.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Literal

from pydantic import Field, model_validator

from aftercare import hookimpl
from aftercare.actions import DEFAULT_RECHECKS, Recheck, Scope
from aftercare.models import Money
from aftercare.settings import PluginSettings

KEY = "win_back"


class Settings(PluginSettings):
    enabled: bool = False
    #: Days after the last paid order without a new one.
    days: int = Field(90, ge=1)
    #: Orders whose total is below this schedule nothing (order currency).
    minimum_order: Decimal = Field(Decimal(0), ge=0)
    #: A coupon in the mail: created on the platform only when the mail is due.
    coupon: bool = False
    #: "percent" off, or a "fixed_amount" off in the order's currency.
    coupon_kind: Literal["percent", "fixed_amount"] = "percent"
    coupon_value: Decimal = Field(Decimal(15), gt=0)
    #: Days the code is valid, counted from the mail.
    coupon_valid_days: int = Field(30, ge=1)
    #: Put before the random part of the code, e.g. "COMEBACK" -> COMEBACK-7Q2XM-4KD9P.
    coupon_prefix: str = Field("", max_length=20, pattern=r"^[A-Za-z0-9]*$")

    @model_validator(mode="after")
    def _percent_is_a_percentage(self) -> Settings:
        if self.coupon_kind == "percent" and self.coupon_value > 100:
            raise ValueError(f"coupon_value: a percent coupon takes up to 100, got {self.coupon_value}")
        return self

    def longest_delay(self) -> timedelta:
        return timedelta(days=self.days)


@hookimpl
def on_order_paid(event, ctx):
    order = event.order
    # This order is the customer's latest: the previous one's win-back is not needed any more.
    ctx.cancel(KEY, reason="win-back withdrawn: the customer ordered again", scope=Scope.CUSTOMER)
    settings = ctx.settings
    if order.total.amount < settings.minimum_order or order.is_cancelled or order.is_refunded:
        return
    due = event.occurred_at + timedelta(days=settings.days)
    if due <= ctx.now():
        return  # the moment passed before aftercare saw the order (a backfill): see the module's text
    later = ctx.later(due - ctx.now(), rechecks=(*DEFAULT_RECHECKS, Recheck.ORDERED_AGAIN))
    # The coupon's words at the top level, as the coupon plugin's: the channel then shows the
    # code as the platform holds it (WooCommerce lower-cases codes).
    context: dict = {"days": settings.days, "last_order": order.number, "code": None, "percent": None,
                     "amount": None, "expires_at": None}  # fmt: skip
    coupon = None
    if settings.coupon:
        percent = settings.coupon_kind == "percent"
        coupon = later.create_coupon(
            percent=settings.coupon_value if percent else None,
            amount=None if percent else Money(settings.coupon_value, order.currency),
            expires_in=timedelta(days=settings.coupon_valid_days),
            prefix=settings.coupon_prefix,
            key=KEY,
        )
        payload = coupon.payload
        context |= {
            "code": payload["code"],
            "percent": _plain(payload["value"]) if percent else None,
            "amount": None if percent else {"amount": payload["value"], "currency": payload["currency"]},
            "expires_at": payload["expires_at"],
        }
    later.send_email("win_back", key=KEY, context=context, after=coupon)


def _plain(value: str) -> str:
    """``"10"`` and ``"12.5"`` as a reader writes them (no ``10.00``)."""
    return f"{Decimal(value).normalize():f}"
