"""Satisfaction survey: a one-click CSAT or NPS question a few days after delivery.

The mail carries one signed link per score (``ctx.survey_link``); the
customer page it opens asks to confirm, records the answer and fires
``on_survey_answered``, where a low score becomes an order note and a
customer tag for follow-up.

Delivery or shipping, never both
    The survey is due ``days_after_delivery`` after the delivery the platform
    reports. Shops whose platform never reports delivery get it
    ``days_after_shipping`` after the first parcel left instead: ``on_shipped``
    schedules that, and ``on_delivered`` asks for the same key with
    ``reschedule=True``, which moves it to count from the delivery while it
    is still due and leaves it alone once it went out.

Never after a cancellation, refund or return: the mail is re-checked when it
falls due (the core's fire-time checks), and the survey is withdrawn as soon
as one of those events arrives.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from pydantic import Field

from aftercare import hookimpl
from aftercare.models import Event, SurveyAnswer, SurveyKind
from aftercare.settings import PluginSettings

SURVEY = "survey"


class Settings(PluginSettings):
    enabled: bool = False
    #: ``csat``: "how satisfied are you?" 1-5; ``nps``: "how likely to recommend us?" 0-10.
    kind: Literal["csat", "nps"] = "csat"
    days_after_delivery: int = Field(3, ge=0)
    #: When the platform never reports delivery: this many days after the first parcel left.
    days_after_shipping: int = Field(10, ge=0)
    template: str = "satisfaction_survey"
    #: Follow up on CSAT at or below this (0: never).
    low_csat: int = Field(2, ge=0, le=5)
    #: Follow up on NPS at or below this (detractors are 0-6; -1: never).
    low_nps: int = Field(6, ge=-1, le=10)
    #: Follow up on a Customer Effort score (1-7, asked on the survey page) at or above this (8: never).
    high_ces: int = Field(6, ge=1, le=8)
    #: Tag the customer with this on a low score ("": no tag, the order note only).
    follow_up_tag: str = "aftercare-follow-up"


# -- hooks ------------------------------------------------------------------------------


@hookimpl
def on_shipped(event: Event, ctx) -> None:
    if event.order.delivery_known:
        return  # on_delivered schedules it from the delivery date
    shipped = event.order.first_shipped_at or event.occurred_at
    _send_survey(ctx, due=shipped + timedelta(days=ctx.settings.days_after_shipping))


@hookimpl
def on_delivered(event: Event, ctx) -> None:
    delivered = (event.shipment.delivered_at if event.shipment else None) or event.occurred_at
    _send_survey(ctx, due=delivered + timedelta(days=ctx.settings.days_after_delivery), reschedule=True)


@hookimpl
def on_return_requested(event: Event, ctx) -> None:
    _withdraw(ctx, "a return was requested")


@hookimpl
def on_refunded(event: Event, ctx) -> None:
    _withdraw(ctx, "the order was refunded")


@hookimpl
def on_order_cancelled(event: Event, ctx) -> None:
    _withdraw(ctx, "the order was cancelled")


@hookimpl
def on_survey_answered(event: Event, ctx) -> None:
    answer = event.answer
    if answer is None or not _needs_follow_up(answer, ctx.settings):
        return
    ctx.add_order_note(_follow_up_note(answer), key=f"follow-up-{answer.kind.value}")
    tag = ctx.settings.follow_up_tag.strip()
    if tag:
        # Once per order: a customer untagged after a follow-up is tagged again by a later low score.
        ctx.tag_customer(tag, key=f"{tag}:order:{event.order.platform_id}")


# -- helpers ----------------------------------------------------------------------------


def _send_survey(ctx, *, due: datetime, reschedule: bool = False) -> None:
    """Schedule the survey mail at ``due`` (now, if that has passed)."""
    kind = SurveyKind(ctx.settings.kind)
    answers = [{"score": score, "url": ctx.survey_link(kind, score)} for score in kind.scale]
    later = ctx.later(max(due - ctx.now(), timedelta(0)), reschedule=reschedule)
    later.send_email(ctx.settings.template, key=SURVEY, context={"kind": kind.value, "answers": answers})


def _withdraw(ctx, why: str) -> None:
    ctx.cancel(SURVEY, reason=f"{why}: no survey")


def _needs_follow_up(answer: SurveyAnswer, settings: Settings) -> bool:
    if answer.kind is SurveyKind.CSAT:
        return answer.score <= settings.low_csat
    if answer.kind is SurveyKind.NPS:
        return answer.score <= settings.low_nps
    return answer.score >= settings.high_ces


def _follow_up_note(answer: SurveyAnswer) -> str:
    scale = answer.kind.scale
    comment = answer.comment.strip()
    said = f'comment: "{comment}"' if comment else "no comment"
    return f"follow up: {answer.kind.value.upper()} {answer.score} ({scale.start}-{scale.stop - 1}) — {said}"
