"""Greetings: a birthday mail, and dated greetings (Christmas, a shop's anniversary), to customers
who opted in to marketing mail.

**The birthday** is the customer's ``birthday`` as the shop's adapter reads it from the field its
settings name (Shopify's ``birthday_metafield``, a customer metafield ``namespace.key``;
WooCommerce's ``birthday_meta_key``, a customer meta key). Nothing is guessed: without that
setting, or without a ``YYYY-MM-DD`` value on the customer, there is no birthday mail.

**The rule.** Each paid order (not cancelled) of a customer with marketing consent schedules
the customer's next birthday, and the next day of each dated greeting, that falls within a year
of the payment, at ``send_hour`` in the shop's time zone. The keys are the customer's
(``birthday:2027``, ``greeting:xmas:2026``), so a customer gets each at most once a year
however many orders they place, and a customer who ordered in the last year gets the next
one. A birthday on 29 February is greeted on 28 February in other years. A later order that
finds another birthday on the customer (corrected in the shop) moves the pending mail to it.

**When due** the mail is dropped if the customer unsubscribed (on the platform or through
aftercare's links); the order being cancelled or refunded since does not matter (the greeting
is the customer's, not the order's). It is marketing mail: quiet hours, the frequency cap
and suppressions apply in the mail channel.
"""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator

from aftercare import hookimpl
from aftercare.actions import Recheck, Scope
from aftercare.models import ConsentState
from aftercare.settings import PluginSettings

BIRTHDAY_TEMPLATE = "birthday"
#: How far ahead an order schedules: the next occurrence within a year of the payment.
HORIZON = timedelta(days=365)


class DatedGreeting(BaseModel):
    """A greeting sent on one day of every year: ``{date = "12-24", template = "xmas"}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Month and day, ``MM-DD``.
    date: str
    #: The mail's template: a built-in one (``xmas``, ``new_year``) or the shop's own.
    template: str = Field(pattern=r"^[a-z0-9_]{1,40}$")

    @field_validator("date")
    @classmethod
    def _month_and_day(cls, value: str) -> str:
        value = value.strip()
        month, dash, day = value.partition("-")
        if not (dash and len(month) == 2 and len(day) == 2 and month.isdigit() and day.isdigit()):
            raise ValueError(f"expected month-day like '12-24', got {value!r}")
        if not 1 <= int(month) <= 12 or not 1 <= int(day) <= calendar.monthrange(2024, int(month))[1]:
            raise ValueError(f"{value!r} is no day of the year")
        return value

    @property
    def month_day(self) -> tuple[int, int]:
        month, _dash, day = self.date.partition("-")
        return int(month), int(day)


class Settings(PluginSettings):
    enabled: bool = False
    #: The birthday mail (needs the adapter's birthday setting: see the module's text).
    birthday: bool = True
    #: The hour (0-23, the shop's time zone) the greetings go out on their day.
    send_hour: int = Field(9, ge=0, le=23)
    #: Greetings on fixed days of the year.
    greetings: list[DatedGreeting] = []

    @field_validator("greetings")
    @classmethod
    def _one_greeting_per_template(cls, value: list[DatedGreeting]) -> list[DatedGreeting]:
        seen = [greeting.template for greeting in value]
        doubled = sorted({name for name in seen if seen.count(name) > 1})
        if doubled:
            raise ValueError(f"template {doubled[0]!r} is given twice: one date per greeting template")
        return value

    def longest_delay(self) -> timedelta:
        return HORIZON


@hookimpl
def on_order_paid(event, ctx):
    order = event.order
    customer = order.customer
    settings = ctx.settings
    if order.is_cancelled or not customer.email.strip():
        return
    if customer.marketing_consent is not ConsentState.SUBSCRIBED:
        return  # greetings are marketing mail: only for customers who said yes
    zone = ZoneInfo(ctx.shop.timezone)
    latest = event.occurred_at + HORIZON
    if settings.birthday and customer.birthday is not None:
        due, year = next_day(customer.birthday.month, customer.birthday.day, ctx.now(), zone, settings.send_hour)
        if due <= latest:
            # Another year's pending birthday mail was for a birthday the shop has since corrected.
            for other in (year - 1, year + 1):
                ctx.cancel(f"birthday:{other}", reason="birthday changed on the customer", scope=Scope.CUSTOMER)
            _greet(ctx, due, BIRTHDAY_TEMPLATE, f"birthday:{year}", {"year": year})
    for greeting in settings.greetings:
        due, year = next_day(*greeting.month_day, ctx.now(), zone, settings.send_hour)
        if due <= latest:
            context = {"greeting": greeting.template, "date": greeting.date, "year": year}
            _greet(ctx, due, greeting.template, f"greeting:{greeting.template}:{year}", context)


def _greet(ctx, due: datetime, template: str, key: str, context: dict) -> None:
    later = ctx.later(due - ctx.now(), rechecks=(Recheck.UNSUBSCRIBED,), reschedule=True)
    later.send_email(template, key=key, scope=Scope.CUSTOMER, context=context)


def next_day(month: int, day: int, after: datetime, zone: ZoneInfo, hour: int) -> tuple[datetime, int]:
    """The first ``hour`` o'clock of ``month``-``day`` in ``zone`` later than ``after``, in UTC,
    and its year; 29 February falls on the 28th in other years."""
    year = after.astimezone(zone).year
    while True:
        moment = datetime.combine(day_in(year, month, day), time(hour), zone).astimezone(UTC)
        if moment > after:
            return moment, year
        year += 1


def day_in(year: int, month: int, day: int) -> date:
    """``month``-``day`` in ``year``; 29 February is the 28th in a year without it."""
    return date(year, month, min(day, calendar.monthrange(year, month)[1]))
