"""Delivery exceptions: the carrier reports a problem with a parcel; tell the customer at once.

``on_shipment_exception`` sends the transactional mail ``shipment_exception``
(it goes even to customers who unsubscribed from marketing) saying what the
carrier reported (a failed or attempted delivery, a delay, a parcel held, on
its way back, or a carrier exception) and what the customer can do, with the
carrier's own message and the tracking link when the platform gives them. A
parcel waiting at a pickup point gets its own mail, ``ready_for_pickup``,
with where to collect it when the platform says (Shopify's fulfillment event
address); when it does not, the mail says so and points to the carrier's
notice and tracking page: an address is never guessed.

The staff get a private note on the order (``note_text``; ``""``: none). With
``coupon.enabled`` the customer also gets an apology coupon, created through
the same ``ctx.create_coupon`` as the coupon plugin's and mailed with
``apology_coupon`` once the platform has the code, at most once per order
however many problems its parcels have, for the problems in
``coupon.problems`` (not a parcel ready for pickup, by default).

Each parcel's problem is answered once: the action keys name the parcel and
the problem (``exception:7:failure``), so a repeated webhook or a poll of the
same state adds nothing, while a delay followed by a failed attempt gives two
notices. The checks:

- an order cancelled, or refunded in full or for every line in the parcel,
  gets nothing, and the same is checked again when the actions fire;
- a report that arrives when the platform already has the parcel delivered
  (a late webhook, a poll catching up) sends nothing: it is history. A notice
  sent before the parcel then arrives stays as it was: it was right when sent;
- ``problems`` limits which problems are answered at all.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from string import Formatter
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from aftercare import hookimpl
from aftercare.actions import Recheck, lines_refunded
from aftercare.models import Event, Money, Order, Shipment, ShipmentException, ShipmentProblem, ShipmentStatus
from aftercare.settings import PluginSettings

#: How the note names each problem (staff read it in the shop's admin, in English).
PROBLEM_LABELS: dict[ShipmentProblem, str] = {
    ShipmentProblem.ATTEMPTED_DELIVERY: "a delivery attempt failed",
    ShipmentProblem.DELAYED: "the parcel is delayed",
    ShipmentProblem.FAILURE: "the delivery failed",
    ShipmentProblem.READY_FOR_PICKUP: "the parcel is ready for pickup",
    ShipmentProblem.EXCEPTION: "a carrier exception",
    ShipmentProblem.ON_HOLD: "the carrier holds the parcel",
    ShipmentProblem.RETURN_TO_SENDER: "the parcel is returning to the shop",
}

_NOTE_FIELDS = {"problem", "carrier", "tracking_number", "message", "location", "email"}

#: Checked again when each action fires (no consent check: the notice is transactional).
RECHECKS = (Recheck.CANCELLED, Recheck.LINES_REFUNDED)


class ApologyCoupon(BaseModel):
    """The apology coupon: the coupon plugin's kinds of code, once per order."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = False
    #: The problems that earn it (a parcel ready for pickup is no trouble).
    problems: list[ShipmentProblem] = [p for p in ShipmentProblem if p is not ShipmentProblem.READY_FOR_PICKUP]
    #: "percent" off, or a "fixed_amount" off in the order's currency.
    kind: Literal["percent", "fixed_amount"] = "percent"
    value: Decimal = Field(Decimal(10), gt=0)
    #: Days the code is valid.
    valid_days: int = Field(60, ge=1)
    #: The next order's subtotal must reach this (order currency); none by default.
    minimum_spend: Decimal | None = Field(None, gt=0)
    #: Put before the random part of the code: SORRY -> SORRY-7Q2XM-4KD9P.
    prefix: str = Field("SORRY", max_length=20, pattern=r"^[A-Za-z0-9]*$")

    @model_validator(mode="after")
    def _percent_is_a_percentage(self) -> ApologyCoupon:
        if self.kind == "percent" and self.value > 100:
            raise ValueError(f"a percent coupon takes a value up to 100, got {self.value}")
        return self


class Settings(PluginSettings):
    enabled: bool = False
    #: The problems answered (all by default).
    problems: list[ShipmentProblem] = list(ShipmentProblem)
    #: The private note on the order, with {problem}, {carrier}, {tracking_number},
    #: {message}, {location} and {email}; "" leaves no note.
    note_text: str = "Carrier report: {problem} (parcel {tracking_number}). Emailed {email} what to do."
    coupon: ApologyCoupon = ApologyCoupon()

    @field_validator("note_text")
    @classmethod
    def _note_names_known_fields(cls, value: str) -> str:
        try:
            names = {name for _text, name, _spec, _conv in Formatter().parse(value) if name is not None}
        except ValueError as exc:
            raise ValueError(f"note_text is not a valid template ({exc}): {value!r}") from None
        unknown = names - _NOTE_FIELDS
        if unknown:
            raise ValueError(
                f"note_text names {', '.join(sorted(repr(n) for n in unknown))}; "
                f"it may use {', '.join('{' + n + '}' for n in sorted(_NOTE_FIELDS))}"
            )
        return value


# -- hooks ------------------------------------------------------------------------------


@hookimpl
def on_shipment_exception(event: Event, ctx) -> None:
    report, shipment, order = event.exception, event.shipment, event.order
    settings = ctx.settings
    if report is None or shipment is None or report.problem not in settings.problems:
        return
    lines = _parcel_lines(order, shipment)
    if order.is_cancelled or lines_refunded(order, lines):
        return
    if _delivered_since(order, shipment):
        return
    now = ctx.later(rechecks=RECHECKS)
    key = f"exception:{shipment.platform_id}:{report.problem.value}"
    template = "ready_for_pickup" if report.problem is ShipmentProblem.READY_FOR_PICKUP else "shipment_exception"
    now.send_email(template, transactional=True, key=key, context=_report(order, shipment, report), lines=lines)
    coupon = settings.coupon
    apology = coupon.enabled and report.problem in coupon.problems
    if settings.note_text:
        now.add_order_note(_note(settings.note_text, order, shipment, report, apology), key=key)
    if apology:
        created = now.create_coupon(
            percent=coupon.value if coupon.kind == "percent" else None,
            amount=Money(coupon.value, order.currency) if coupon.kind == "fixed_amount" else None,
            expires_in=timedelta(days=coupon.valid_days),
            minimum_subtotal=Money(coupon.minimum_spend, order.currency) if coupon.minimum_spend else None,
            prefix=coupon.prefix,
            key="apology",
        )
        context = {**_offer(created.payload), "problem": report.problem.value}
        now.send_email("apology_coupon", transactional=True, key="apology", context=context, after=created)


# -- helpers ----------------------------------------------------------------------------


def _parcel_lines(order: Order, shipment: Shipment) -> list[str]:
    """The order lines in this parcel (all of the order's when the platform does not say)."""
    ids = set(shipment.line_item_ids)
    return [line.platform_id for line in order.lines if line.platform_id in ids] or [
        line.platform_id for line in order.lines
    ]


def _delivered_since(order: Order, shipment: Shipment) -> bool:
    """The platform's record of the parcel (the order re-read whole) says it arrived."""
    record = order.shipment(shipment.platform_id)
    return record is not None and (record.status is ShipmentStatus.DELIVERED or record.delivered_at is not None)


def _report(order: Order, shipment: Shipment, report: ShipmentException) -> dict:
    """The mail's variables: what happened to which parcel, and where it is."""
    record = order.shipment(shipment.platform_id) or shipment
    ids = set(record.line_item_ids)
    lines = [line for line in order.lines if line.platform_id in ids] or list(order.lines)
    return {
        "problem": report.problem.value,
        "happened_at": report.happened_at.isoformat(),
        "message": report.message,
        "location": report.location,
        "carrier": record.carrier,
        "tracking_number": record.tracking_number,
        "tracking_url": record.tracking_url,
        "items": [{"title": line.title, "quantity": line.quantity} for line in lines],
    }


def _note(text: str, order: Order, shipment: Shipment, report: ShipmentException, apology: bool) -> str:
    record = order.shipment(shipment.platform_id) or shipment
    note = text.format(
        problem=PROBLEM_LABELS[report.problem],
        carrier=record.carrier or "the carrier",
        tracking_number=record.tracking_number or record.platform_id,
        message=report.message,
        location=report.location,
        email=order.customer.email,
    )
    return f"{note} Apology coupon offered." if apology else note


def _offer(payload: dict) -> dict:
    """What the mail says about the coupon, from the request as the platform will get it."""
    percent = payload["kind"] == "percent"
    return {
        "code": payload["code"],
        "percent": f"{Decimal(payload['value']).normalize():f}" if percent else None,
        "amount": None if percent else {"amount": payload["value"], "currency": payload["currency"]},
        "expires_at": payload["expires_at"],
        "minimum": payload["minimum_subtotal"],
    }
