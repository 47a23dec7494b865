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

Relationship survey (``every_months``)
    Apart from the survey about an order, an NPS question about the shop as a
    whole, at most once a period to each customer with a delivered order in it.
    The periods are calendar blocks of ``every_months`` months in the shop's
    time zone, named by their first month (``every_months = 6``: ``2026-01`` for
    January to June, ``2026-07`` for July to December; a number that does not
    divide 12 lets the blocks run on across years). The first delivery of a
    customer's in a period schedules the mail ``relationship_days_after_delivery``
    later under the customer's key ``relationship:<period>``, so later deliveries
    in the period add nothing, and a delivery in the next period a second mail.
    Marketing mail, as the greetings plugin's: only for a customer who opted in to
    marketing mail, dropped when due if they unsubscribed since; quiet hours, the
    frequency cap and suppressions apply. The order being returned or refunded
    since does not withdraw it: the question is about the customer's relationship
    with the shop, not that order. A delivery the shop reports after its period
    ended (a first sync of history) schedules none. The answers carry the purpose
    ``relationship``: kept apart from the order's own (another answer of the same
    order and kind), and counted apart in the report and the console.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timedelta
from email.utils import parseaddr
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import Field

from aftercare import hookimpl
from aftercare.actions import Recheck, Scope
from aftercare.models import ConsentState, Event, SurveyAnswer, SurveyKind, SurveyPurpose
from aftercare.settings import PluginSettings

SURVEY = "survey"
#: The relationship survey's customer-scoped key, per period: ``relationship:2026-07``.
RELATIONSHIP = "relationship"
log = logging.getLogger("aftercare.plugins.satisfaction_survey")
#: A comment with one of these is a complaint whatever the score (en, es, bg; word stems).
COMPLAINT_WORDS = ("broken", "damaged", "late", "missing", "wrong", "refund", "never arrived", "complain",
                   "roto", "rota", "dañad", "tarde", "falta", "equivocad", "reembolso", "queja",
                   "счупен", "повреден", "закъсн", "липсв", "грешн", "оплак")  # fmt: skip


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
    #: Mail the shop's staff (template ``staff_alert``, in the shop's language) on a low score or a
    #: complaint comment, also when an answer is changed to one.
    staff_alert: bool = False
    #: Where to: "" for the shop's sender address.
    staff_alert_to: str = ""
    #: Alert on CSAT at or below this (0: never), NPS at or below this (-1: never), CES at or above (8: never).
    staff_alert_csat: int = Field(2, ge=0, le=5)
    staff_alert_nps: int = Field(6, ge=-1, le=10)
    staff_alert_ces: int = Field(6, ge=1, le=8)
    #: Which comments alert: "complaints" (a comment with a score short of the best two, or with one of
    #: ``complaint_words``), "all", or "none".
    staff_alert_comments: Literal["complaints", "all", "none"] = "complaints"
    #: Words that make a comment a complaint whatever the score (any case, anywhere in the comment).
    complaint_words: list[str] = Field(default_factory=lambda: list(COMPLAINT_WORDS))
    #: A relationship NPS survey once per period of this many months to each customer with a delivered
    #: order in it (0: none); see the module's text.
    every_months: int = Field(0, ge=0)
    #: The relationship survey goes this many days after the customer's first delivery in the period
    #: (its links work for ``[links] survey_days`` from the delivery: keep this well below that).
    relationship_days_after_delivery: int = Field(14, ge=0)
    relationship_template: str = "relationship_survey"

    def longest_delay(self) -> timedelta:
        relationship = self.relationship_days_after_delivery if self.every_months else 0
        return timedelta(days=max(self.days_after_delivery, self.days_after_shipping, relationship))


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
    if ctx.settings.every_months:
        _send_relationship_survey(event, ctx, delivered)


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
    _alert_staff(event, ctx)
    answer = event.answer
    if answer is None or not _needs_follow_up(answer, ctx.settings):
        return
    ctx.add_order_note(_follow_up_note(answer), key=f"follow-up-{_survey_of(answer)}")
    tag = ctx.settings.follow_up_tag.strip()
    if tag:
        # Once per order (and apart for the relationship survey asked through it): a customer untagged
        # after a follow-up is tagged again by a later low score.
        about = "order" if answer.purpose is SurveyPurpose.ORDER else f"{answer.purpose.value}:order"
        ctx.tag_customer(tag, key=f"{tag}:{about}:{event.order.platform_id}")


# -- helpers ----------------------------------------------------------------------------


def _alert_staff(event: Event, ctx) -> None:
    """A mail to the shop's staff on a low score or a complaint comment. The hook fires again when the
    customer changes the answer or adds a comment; the key holds the score and the comment, so each
    new low answer or complaint alerts once, and the same one never twice."""
    answer, settings = event.answer, ctx.settings
    if answer is None or not settings.staff_alert:
        return
    low, complaint = _low_for_staff(answer, settings), _complaint(answer, settings)
    if not (low or complaint):
        return
    to = settings.staff_alert_to.strip() or parseaddr(ctx.shop.sender)[1]
    if not to:
        log.warning("[satisfaction_survey] staff_alert is on but there is no address: set staff_alert_to or "
                    "the shop's sender")  # fmt: skip
        return
    digest = hashlib.sha256(f"{answer.score}:{answer.comment.strip()}".encode()).hexdigest()[:12]
    scale = answer.kind.scale
    context = {"kind": answer.kind.value, "score": answer.score, "lowest": scale.start, "highest": scale.stop - 1,
               "comment": answer.comment.strip(), "low": low, "complaint": complaint,
               "purpose": answer.purpose.value}  # fmt: skip
    ctx.send_email("staff_alert", to=to, transactional=True, locale=ctx.shop.locale,
                   key=f"staff-alert-{_survey_of(answer)}-{digest}", context=context)  # fmt: skip


def _send_survey(ctx, *, due: datetime, reschedule: bool = False) -> None:
    """Schedule the survey mail at ``due`` (now, if that has passed)."""
    kind = SurveyKind(ctx.settings.kind)
    answers = [{"score": score, "url": ctx.survey_link(kind, score)} for score in kind.scale]
    later = ctx.later(max(due - ctx.now(), timedelta(0)), reschedule=reschedule)
    later.send_email(ctx.settings.template, key=SURVEY, context={"kind": kind.value, "answers": answers})


def _send_relationship_survey(event: Event, ctx, delivered: datetime) -> None:
    """The customer's relationship NPS of the delivery's period, if they have none yet (see the module's text)."""
    settings, order = ctx.settings, event.order
    customer = order.customer
    if order.is_cancelled or not customer.email.strip():
        return
    if customer.marketing_consent is not ConsentState.SUBSCRIBED:
        return  # marketing mail about no order: only for customers who said yes
    zone = ZoneInfo(ctx.shop.timezone)
    period = relationship_period(delivered, zone, settings.every_months)
    if period != relationship_period(ctx.now(), zone, settings.every_months):
        return  # the period is over: no survey about it now (a backfill of old deliveries)
    due = delivered + timedelta(days=settings.relationship_days_after_delivery)
    kind, purpose = SurveyKind.NPS, SurveyPurpose.RELATIONSHIP
    answers = [{"score": score, "url": ctx.survey_link(kind, score, purpose=purpose)} for score in kind.scale]
    later = ctx.later(max(due - ctx.now(), timedelta(0)), rechecks=(Recheck.UNSUBSCRIBED,))
    context = {"kind": kind.value, "answers": answers, "period": period, "every_months": settings.every_months}
    later.send_email(settings.relationship_template, key=f"{RELATIONSHIP}:{period}", scope=Scope.CUSTOMER,
                     context=context)  # fmt: skip


def relationship_period(moment: datetime, zone: ZoneInfo, every_months: int) -> str:
    """The calendar block of ``every_months`` months that ``moment`` falls in, in ``zone``, named by its
    first month: ``2026-07`` for 10 August 2026 with 6; blocks count from January of year 0, so with a
    divisor of 12 they start in January every year."""
    local = moment.astimezone(zone)
    first = (local.year * 12 + local.month - 1) // every_months * every_months
    return f"{first // 12:04d}-{first % 12 + 1:02d}"


def _withdraw(ctx, why: str) -> None:
    ctx.cancel(SURVEY, reason=f"{why}: no survey")


def _survey_of(answer: SurveyAnswer) -> str:
    """``nps`` for an order survey's answer, ``relationship-nps`` for the relationship survey's (in keys)."""
    if answer.purpose is SurveyPurpose.ORDER:
        return answer.kind.value
    return f"{answer.purpose.value}-{answer.kind.value}"


def _needs_follow_up(answer: SurveyAnswer, settings: Settings) -> bool:
    if answer.kind is SurveyKind.CSAT:
        return answer.score <= settings.low_csat
    if answer.kind is SurveyKind.NPS:
        return answer.score <= settings.low_nps
    return answer.score >= settings.high_ces


def _low_for_staff(answer: SurveyAnswer, settings: Settings) -> bool:
    if answer.kind is SurveyKind.CSAT:
        return answer.score <= settings.staff_alert_csat
    if answer.kind is SurveyKind.NPS:
        return answer.score <= settings.staff_alert_nps
    return answer.score >= settings.staff_alert_ces


def _complaint(answer: SurveyAnswer, settings: Settings) -> bool:
    """A comment that alerts (``staff_alert_comments``): short of the best two scores, or with a complaint word."""
    comment = answer.comment.strip().lower()
    if not comment or settings.staff_alert_comments == "none":
        return False
    if settings.staff_alert_comments == "all":
        return True
    best = {SurveyKind.CSAT: answer.score >= 4, SurveyKind.NPS: answer.score >= 9, SurveyKind.CES: answer.score <= 2}
    words = [w.strip().lower() for w in settings.complaint_words if w.strip()]
    return not best[answer.kind] or any(w in comment for w in words)


def _follow_up_note(answer: SurveyAnswer) -> str:
    scale = answer.kind.scale
    comment = answer.comment.strip()
    said = f'comment: "{comment}"' if comment else "no comment"
    kind = answer.kind.value.upper()
    survey = kind if answer.purpose is SurveyPurpose.ORDER else f"{answer.purpose.value} {kind}"
    return f"follow up: {survey} {answer.score} ({scale.start}-{scale.stop - 1}) — {said}"
