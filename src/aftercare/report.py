"""``aftercare report``: what aftercare did for a shop in a period, and what came of it.

The figures are computed from the store only (action records, stored events,
survey answers), never from logs or the platform, so they can be checked by
hand. Each one is defined in ``docs/report.md``; in short, for a period
[since, until):

- emails sent per plugin: ``send_email`` actions done in the period;
- coupons issued: ``create_coupon`` actions done in the period; redeemed: of
  those, the ones whose code shows in ``Order.discount_codes`` of a paid
  order of the shop received after the coupon was created (up to now);
- repeat-purchase rate: of the customers mailed in the period, the share
  with a paid order later than the order of their first mail in the period;
- CSAT (% of 4-5), NPS (% 9-10 minus % 0-6), CES (average) of the answers
  first given in the period to the surveys about an order;
- relationship NPS: the same NPS of the answers to the periodic relationship
  survey (satisfaction_survey's ``every_months``), counted apart;
- TGW: returns requested plus complaints (CSAT answers of 1-2) per 100 orders
  paid in the period.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from aftercare.actions import ActionKind
from aftercare.models import EventKind, SurveyKind, SurveyPurpose, normalise_email

if TYPE_CHECKING:
    from aftercare.app import App
    from aftercare.store import Store

DEFAULT_DAYS = 30


@dataclass(frozen=True, slots=True)
class ShopReport:
    """The figures of one shop for [since, until). A rate is None when there is nothing to divide by."""

    shop_id: str
    since: datetime
    until: datetime
    emails_sent: dict[str, int]
    coupons_issued: int
    coupons_redeemed: int
    mailed_customers: int
    repeat_customers: int
    repeat_purchase_rate: float | None
    csat_answers: int
    csat: float | None
    nps_answers: int
    nps: float | None
    ces_answers: int
    ces: float | None
    relationship_nps_answers: int
    relationship_nps: float | None
    paid_orders: int
    returns: int
    complaints: int
    tgw: float | None

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["since"], data["until"] = self.since.isoformat(), self.until.isoformat()
        return data


def shop_report(store: Store, shop_id: str, since: datetime, until: datetime) -> ShopReport:
    """Every figure for one shop and period (see the module docstring and ``docs/report.md``)."""
    mails = store.done_actions(shop_id, ActionKind.SEND_EMAIL, since, until)
    coupons = store.done_actions(shop_id, ActionKind.CREATE_COUPON, since, until)
    paid = store.events_of_kind(shop_id, [EventKind.ORDER_PAID])  # all of them: later orders count, up to now
    returns = store.events_of_kind(shop_id, [EventKind.RETURN_REQUESTED], since, until)
    answers = store.survey_answers(shop_id, since, until)
    scores = {
        (purpose, kind): [a.answer.score for a in answers if (a.answer.purpose, a.answer.kind) == (purpose, kind)]
        for purpose in SurveyPurpose
        for kind in SurveyKind
    }

    redeemed = 0
    for coupon in coupons:
        code = _code(coupon.result.get("code") or coupon.payload.get("code", ""))
        if any(e.occurred_at > coupon.updated_at and code in map(_code, e.order.discount_codes) for e in paid):
            redeemed += 1

    paid_at: dict[str, datetime] = {}  # order -> when it was first reported paid
    orders_of: dict[str, list[str]] = {}  # customer -> their paid orders
    for event in paid:  # oldest first
        order_id = event.order.platform_id
        if order_id not in paid_at:
            paid_at[order_id] = event.occurred_at
            orders_of.setdefault(normalise_email(event.order.customer.email), []).append(order_id)
    paid_in_period = [o for o, at in paid_at.items() if since <= at < until]
    first_mail: dict[str, tuple[str, datetime]] = {}  # customer -> order and time of their first mail
    for mail in mails:  # oldest first
        if mail.customer_email:
            first_mail.setdefault(normalise_email(mail.customer_email), (mail.order_id, mail.updated_at))
    repeat = 0
    for email, (first_order, mailed_at) in first_mail.items():
        start = paid_at.get(first_order, mailed_at)  # an order never seen paid: count from the mail
        if any(paid_at[o] > start for o in orders_of.get(email, []) if o != first_order):
            repeat += 1

    csat, nps, ces = (scores[SurveyPurpose.ORDER, kind] for kind in SurveyKind)
    relationship_nps = scores[SurveyPurpose.RELATIONSHIP, SurveyKind.NPS]
    complaints = sum(1 for s in csat if s <= 2)
    return ShopReport(
        shop_id=shop_id,
        since=since,
        until=until,
        emails_sent=dict(sorted(Counter(m.plugin for m in mails).items())),
        coupons_issued=len(coupons),
        coupons_redeemed=redeemed,
        mailed_customers=len(first_mail),
        repeat_customers=repeat,
        repeat_purchase_rate=_percent(repeat, len(first_mail)),
        csat_answers=len(csat),
        csat=_percent(sum(1 for s in csat if s >= 4), len(csat)),
        nps_answers=len(nps),
        nps=_net_promoters(nps),
        ces_answers=len(ces),
        ces=round(sum(ces) / len(ces), 2) if ces else None,
        relationship_nps_answers=len(relationship_nps),
        relationship_nps=_net_promoters(relationship_nps),
        paid_orders=len(paid_in_period),
        returns=len(returns),
        complaints=complaints,
        tgw=round(100 * (len(returns) + complaints) / len(paid_in_period), 1) if paid_in_period else None,
    )


#: The days a period may start or end on: the day after the last one, in any time zone, must still be a date
#: (``--until 9999-12-31`` overflowed into a traceback, and the console's report into a 500).
FIRST_DAY, LAST_DAY = date(1970, 1, 1), date(9999, 12, 30)


def period(start: date | None, end: date | None, timezone: str, now: datetime) -> tuple[datetime, datetime]:
    """Whole days in the shop's time zone: from the start of ``start`` to the end of ``end``.

    Without ``end``, to the end of today (so everything up to now counts, the last hour too: a
    period ending at ``now`` left out what was done at ``now``); without ``start``, the
    ``DEFAULT_DAYS`` whole days up to the end, today included. The CLI and the console both ask this.
    """
    zone = ZoneInfo(timezone)
    last = end if end else now.astimezone(zone).date()
    until = datetime.combine(last + timedelta(days=1), time(), zone).astimezone(UTC)
    first = start if start else last - timedelta(days=DEFAULT_DAYS - 1)
    since = datetime.combine(first, time(), zone).astimezone(UTC)
    return since, until


def rows(report: ShopReport) -> list[tuple[str, str]]:
    """The report as (figure, value) rows, for the table and the CSV."""
    out = [(f"emails sent: {plugin}", str(n)) for plugin, n in report.emails_sent.items()]
    out.append(("emails sent: total", str(sum(report.emails_sent.values()))))
    out += [
        ("coupons issued", str(report.coupons_issued)),
        ("coupons redeemed", str(report.coupons_redeemed)),
        (
            "repeat-purchase rate",
            _show(
                report.repeat_purchase_rate,
                "%",
                f"{report.repeat_customers} of {report.mailed_customers} mailed customers",
            ),
        ),
        ("CSAT", _show(report.csat, "%", f"{report.csat_answers} answers")),
        ("NPS", _show(report.nps, "", f"{report.nps_answers} answers")),
        ("CES", _show(report.ces, "", f"{report.ces_answers} answers, 1 = least effort")),
        ("relationship NPS", _show(report.relationship_nps, "", f"{report.relationship_nps_answers} answers")),
        (
            "TGW per 100 orders",
            _show(
                report.tgw,
                "",
                f"{report.returns} returns + {report.complaints} complaints, {report.paid_orders} paid orders",
            ),
        ),
    ]
    return out


def _code(code: str) -> str:
    """Platforms match discount codes without regard to case or surrounding blanks."""
    return code.strip().upper()


def _percent(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 1) if whole else None


def _net_promoters(scores: list[int]) -> float | None:
    """NPS: % of 9-10 minus % of 0-6."""
    return _percent(sum(1 for s in scores if s >= 9) - sum(1 for s in scores if s <= 6), len(scores))


def _show(value: float | None, unit: str, detail: str) -> str:
    return f"- ({detail})" if value is None else f"{value:g}{unit} ({detail})"


# -- every shop, and CSV ---------------------------------------------------------


def shop_reports(app: App, shop_id: str | None, start: date | None, end: date | None) -> list[ShopReport]:
    """The report of each shop (or of ``shop_id`` only) for the whole days ``start`` to ``end``."""
    result = []
    for shop in app.shops.values():
        if shop_id and shop.id != shop_id:
            continue
        since, until = period(start, end, shop.profile.timezone, app.now())
        result.append(shop_report(app.store, shop.id, since, until))
    return result


def as_csv(reports: list[ShopReport]) -> str:
    """Rows of shop, since, until, figure, value."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["shop", "since", "until", "figure", "value"])
    for r in reports:
        data = r.as_dict()
        flat = {f"emails_sent.{plugin}": n for plugin, n in r.emails_sent.items()}
        flat.update({k: v for k, v in data.items() if k not in ("shop_id", "since", "until", "emails_sent")})
        for figure, value in flat.items():
            writer.writerow([r.shop_id, data["since"], data["until"], figure, "" if value is None else value])
    return out.getvalue()
