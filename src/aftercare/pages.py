"""The customer pages behind the links in aftercare's mail: survey answers and newsletter opt-in.

Mail link scanners and previews open every link, so a ``GET`` only shows a
page asking to confirm, with the link's answer preselected; the ``POST`` of
its form records. A confirmation becomes an event in the inbox
(``survey_answered``, ``optin_confirmed``) that the worker dispatches like a
platform's, so plugins react to it in their hooks. Each event has a dedupe
key, so a form posted twice fires nothing more:

- ``survey:{order}:{kind}``: the first answer of an order and survey kind (csat, nps, ces);
- ``survey:{order}:{kind}:{score}:{comment digest}``: a change to it, another score or a
  comment (the thank-you page's), so a score changed to a low one, or a complaint, is heard;
- the same with ``:relationship`` after the kind for a relationship survey's answer
  (``survey:{order}:nps:relationship``), which is kept apart from the order's own;
- ``optin:{email}``: once per customer and shop.

The token (:mod:`aftercare.links`) is opaque and names the shop; nothing of
another shop is ever read or written. A survey or opt-in link past its expiry
shows "this link has expired" (410) in the reader's language and records nothing. Pages render from ``_survey.html`` and
``_optin.html`` with the mail template machinery, in the reader's language,
and a shop overrides them as it overrides a mail template.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from aftercare.links import OPTIN_PATH, SURVEY_PATH, ExpiredLink, InvalidLink, read_token
from aftercare.mail.templates import environment, locale_chain, template_roots
from aftercare.mail.web import PAGE_HEADERS
from aftercare.models import ConsentState, Event, EventKind, SurveyAnswer, SurveyKind, SurveyPurpose

if TYPE_CHECKING:
    from aftercare.app import App
    from aftercare.queue import Enqueuer

log = logging.getLogger("aftercare.pages")

SURVEY_SOURCE = "survey page"
OPTIN_SOURCE = "double opt-in confirmation"
MAX_COMMENT = 2000
MAX_FORM_BYTES = 16_384


@dataclass(frozen=True, slots=True)
class SurveyLink:
    shop_id: str
    order_id: str
    email: str
    locale: str
    kind: SurveyKind
    score: int
    purpose: SurveyPurpose = SurveyPurpose.ORDER


@dataclass(frozen=True, slots=True)
class OptinLink:
    shop_id: str
    order_id: str
    email: str
    locale: str


def read_survey_link(app: App, token: str) -> SurveyLink:
    link = read_token(app, "survey", token)
    try:
        # Links made before surveys had a purpose have five fields: they were all about an order.
        fields = (*link.fields, SurveyPurpose.ORDER.value) if len(link.fields) == 5 else link.fields
        order_id, email, locale, kind, score, purpose = fields
        survey = SurveyLink(link.shop_id, order_id, email, locale, SurveyKind(kind), int(score), SurveyPurpose(purpose))
    except ValueError:
        raise InvalidLink("malformed survey link") from None
    if survey.score not in survey.kind.scale:
        raise InvalidLink("the survey link's score is off the scale")
    return survey


def read_optin_link(app: App, token: str) -> OptinLink:
    link = read_token(app, "optin", token)
    try:
        order_id, email, locale = link.fields
    except ValueError:
        raise InvalidLink("malformed opt-in link") from None
    return OptinLink(link.shop_id, order_id, email, locale)


def routes(app: App, queue: Enqueuer) -> list[Route]:
    async def survey(request: Request) -> HTMLResponse:
        token = request.path_params["token"]
        try:
            link = read_survey_link(app, token)
        except ExpiredLink as expired:
            return _expired(app, "_survey.html", expired)
        except InvalidLink:
            return _invalid(app, "_survey.html")
        show = {"token": token, "kind": link.kind.value, "scale": list(link.kind.scale)}
        about_order = link.purpose is SurveyPurpose.ORDER  # a relationship survey is about no order
        if request.method == "GET":
            number = await run_in_threadpool(_order_number, app, link.shop_id, link.order_id) if about_order else ""
            return _page(app, link, "_survey.html", state="confirm", score=link.score, order_number=number, **show)
        form = await _form(request)
        score = _score(form.get("score"), link.kind, default=link.score)
        if score is None:
            return _invalid(app, "_survey.html", link)
        await run_in_threadpool(record_survey_answer, app, queue, link, link.kind, score)
        asks_ces = link.kind is not SurveyKind.CES and about_order  # effort is an order's, not a relationship's
        return _page(app, link, "_survey.html", state="thanks", score=score, order_number="", asks_ces=asks_ces,
                     ces_scale=list(SurveyKind.CES.scale), **show)  # fmt: skip

    async def survey_more(request: Request) -> HTMLResponse:
        token = request.path_params["token"]
        try:
            link = read_survey_link(app, token)
        except ExpiredLink as expired:
            return _expired(app, "_survey.html", expired)
        except InvalidLink:
            return _invalid(app, "_survey.html")
        form = await _form(request)
        comment = str(form.get("comment") or "").strip()[:MAX_COMMENT]
        ces = _score(form.get("ces"), SurveyKind.CES, default=None)
        await run_in_threadpool(record_more, app, queue, link, comment, ces)
        return _page(app, link, "_survey.html", state="done", token=token, kind=link.kind.value)

    async def optin(request: Request) -> HTMLResponse:
        try:
            link = read_optin_link(app, request.path_params["token"])
        except ExpiredLink as expired:
            return _expired(app, "_optin.html", expired)
        except InvalidLink:
            return _invalid(app, "_optin.html")
        if request.method == "GET":
            return _page(app, link, "_optin.html", state="confirm", email=link.email)
        await run_in_threadpool(record_optin, app, queue, link)
        return _page(app, link, "_optin.html", state="done", email=link.email)

    return [
        Route(SURVEY_PATH + "/{token}", survey, methods=["GET", "POST"], name="survey"),
        Route(SURVEY_PATH + "/{token}/more", survey_more, methods=["POST"], name="survey_more"),
        Route(OPTIN_PATH + "/{token}", optin, methods=["GET", "POST"], name="optin"),
    ]


# -- recording (in a worker thread) ----------------------------------------------


def record_survey_answer(
    app: App, queue: Enqueuer, link: SurveyLink, kind: SurveyKind, score: int, comment: str = ""
) -> None:
    """Keep the answer and, with it in one transaction, its event; then enqueue the event.

    The first answer's event has the key ``survey:{order}:{kind}``. A change (another score, or a
    comment it did not have) has one of its own, ``survey:{order}:{kind}:{score}:{digest of the
    comment}``, carrying the answer as it now is: a score changed to a low one, or a complaint
    written on the thank-you page, reaches the hooks too. The same form posted again changes
    nothing and fires nothing. A relationship survey's answer is kept apart from the order's
    own, and its keys say so after the kind (``survey:{order}:{kind}:relationship...``)."""
    store = app.store
    purpose = link.purpose
    before = store.survey_answer(link.shop_id, link.order_id, kind, purpose)
    said = comment or (before.answer.comment if before else "")
    about = f"{kind.value}" if purpose is SurveyPurpose.ORDER else f"{kind.value}:{purpose.value}"
    if before is not None and before.answer.score == score and said == before.answer.comment:
        key = ""  # nothing new: keep the record's time and source, fire nothing
    elif before is None:
        key = f"survey:{link.order_id}:{about}"
    else:
        digest = hashlib.sha256(said.encode()).hexdigest()[:12]
        key = f"survey:{link.order_id}:{about}:{score}:{digest}"
    answer = SurveyAnswer(kind, score, app.now(), comment, purpose)
    shown = SurveyAnswer(kind, score, before.answer.answered_at if before else app.now(), said, purpose)
    event = _event(app, link.shop_id, link.order_id, EventKind.SURVEY_ANSWERED, key, answer=shown) if key else None
    with store.transaction() as conn:
        store.record_survey_answer(conn, shop_id=link.shop_id, order_id=link.order_id, email=link.email,
                                   answer=answer, source=SURVEY_SOURCE)  # fmt: skip
        new_ids = [i for i, new in store.add_events(conn, [event]) if new] if event else []
    _enqueue(queue, new_ids)


def record_more(app: App, queue: Enqueuer, link: SurveyLink, comment: str, ces: int | None) -> None:
    """The thank-you form: a comment on the answer already given, and a Customer Effort answer."""
    if comment:
        given = app.store.survey_answer(link.shop_id, link.order_id, link.kind, link.purpose)
        score = given.answer.score if given else link.score
        record_survey_answer(app, queue, link, link.kind, score, comment)
    if ces is not None and link.kind is not SurveyKind.CES and link.purpose is SurveyPurpose.ORDER:
        record_survey_answer(app, queue, link, SurveyKind.CES, ces)


def record_optin(app: App, queue: Enqueuer, link: OptinLink) -> None:
    """Record the consent (once: history keeps changes, not repeats) and the customer's one opt-in event."""
    store = app.store
    store.record_consent_change(link.shop_id, link.email, ConsentState.SUBSCRIBED, OPTIN_SOURCE)
    event = _event(app, link.shop_id, link.order_id, EventKind.OPTIN_CONFIRMED, f"optin:{link.email}")
    if event is None:
        return
    with store.transaction() as conn:
        new_ids = [i for i, new in store.add_events(conn, [event]) if new]
    _enqueue(queue, new_ids)


def _event(app: App, shop_id: str, order_id: str, kind: EventKind, key: str, **extra: Any) -> Event | None:
    """An event about the link's order as the store last saw it; None (and a warning) if it never did."""
    order = app.store.latest_order(shop_id, order_id)
    if order is None:
        log.warning("page shop=%s order=%s: no stored order, so no %s event", shop_id, order_id, kind.value)
        return None
    return Event(kind=kind, shop_id=shop_id, order=order, occurred_at=app.now(), dedupe_key=key,
                 source="page", topic=kind.value, **extra)  # fmt: skip


def _enqueue(queue: Enqueuer, event_ids: list[int]) -> None:
    try:
        queue.dispatch_events(event_ids)
    except Exception:  # stored is what counts; the worker's sweep finds pending events
        log.exception("could not enqueue %d page event(s); the sweep will pick them up", len(event_ids))


def _order_number(app: App, shop_id: str, order_id: str) -> str:
    order = app.store.latest_order(shop_id, order_id)
    return order.number if order else ""


async def _form(request: Request) -> dict[str, str]:
    """The posted form's fields (urlencoded, as our pages post), first value of each.

    Read up to a small limit: a comment box needs no more, and nobody may make us hold a huge body.
    """
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            break
    return {name: values[0] for name, values in parse_qs(body[:MAX_FORM_BYTES].decode("utf-8", "replace")).items()}


def _score(value: Any, kind: SurveyKind, *, default: int | None) -> int | None:
    """The form's score if it is on the kind's scale; the default when absent; None when wrong."""
    if value in (None, ""):
        return default
    try:
        score = int(str(value))
    except ValueError:
        return None
    return score if score in kind.scale else None


# -- rendering -----------------------------------------------------------------


def _page(app: App, link: SurveyLink | OptinLink, template: str, **variables: Any) -> HTMLResponse:
    return HTMLResponse(render(app, link.shop_id, link.locale, template, **variables), headers=PAGE_HEADERS)


def _invalid(app: App, template: str, link: SurveyLink | OptinLink | None = None) -> HTMLResponse:
    body = render(app, link.shop_id if link else None, link.locale if link else "", template, state="invalid")
    return HTMLResponse(body, status_code=400, headers=PAGE_HEADERS)


def _expired(app: App, template: str, expired: ExpiredLink) -> HTMLResponse:
    """Gone, said kindly: the link was genuine, so the page is in its shop's and reader's language."""
    fields = expired.link.fields
    locale = fields[2] if len(fields) > 2 else ""  # survey and opt-in links: order, email, locale, ...
    body = render(app, expired.link.shop_id, locale, template, state="expired")
    return HTMLResponse(body, status_code=410, headers=PAGE_HEADERS)


def render(app: App, shop_id: str | None, locale: str, template: str, **variables: Any) -> str:
    """A page in the reader's language (the link's, else the shop's), found like a mail template."""
    shop = app.shop(shop_id).profile if shop_id else None
    chain = locale_chain(locale, shop.locale) if shop else locale_chain(locale)
    env = environment(template_roots(app, shop_id), chain, chain[0], shop.timezone if shop else "UTC")
    shop_vars = {"id": shop.id, "name": shop.name or shop.id} if shop else None
    return env.get_template(template).render(shop=shop_vars, **variables)
