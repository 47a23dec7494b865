"""satisfaction_survey's relationship survey (``every_months``): one NPS mail per period to each customer
with a delivered order in it and marketing consent, its answers kept and counted apart."""

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from starlette.testclient import TestClient

from aftercare.actions import ActionKind, ActionState, ReasonCode
from aftercare.app import App
from aftercare.asgi import create_asgi_app
from aftercare.config import ConfigError, load_config
from aftercare.dispatch import Dispatcher, execute_due
from aftercare.models import ConsentState, EventKind, ShipmentStatus, SurveyAnswer, SurveyKind, SurveyPurpose
from aftercare.pages import read_survey_link
from aftercare.plugin_manager import PluginManager
from aftercare.plugins import satisfaction_survey
from aftercare.plugins.satisfaction_survey import relationship_period
from aftercare.report import shop_report
from aftercare.testing import START, make_event, make_order, memory_platform
from aftercare.worker import Worker

from .conftest import inbox

DAY = timedelta(days=1)
LINK = re.compile(r"http://127\.0\.0\.1:8000/survey/([\w.-]+)")
SIX_MONTHS = {"satisfaction_survey": {"every_months": 6}}


def customer_order(number="1001", *, consent=ConsentState.SUBSCRIBED, email="ana@example.com"):
    order = make_order(number, email=email)
    return replace(order, customer=replace(order.customer, marketing_consent=consent))


def deliver(app, order, at=None):
    """The order delivered ``at`` (default now), as the platform reports it."""
    at = at or app.now()
    parcel = replace(order.shipments[0], status=ShipmentStatus.DELIVERED, delivered_at=at)
    arrived = replace(order, shipments=(parcel,))
    app.adapter("test").put_order(arrived)
    Dispatcher(app).dispatch(make_event("delivered", arrived, occurred_at=at))
    return arrived


def run_days(app, days):
    """The worker running for ``days``: what falls due goes out within the hour."""
    for _ in range(days * 24):
        app.clock.advance(timedelta(hours=1))
        execute_due(app)


def relationship_actions(app):
    """(key, idempotency subject, due_at, state, reason code) of the relationship mails, oldest first."""
    records = sorted(app.store.list_actions(), key=lambda a: a.id)
    return [(a.key, a.idempotency_key.split("/")[3], a.due_at, a.state, a.reason_code)
            for a in records if a.key.startswith("relationship:")]  # fmt: skip


def relationship_mails(app):
    return [mail for mail in inbox(app) if mail.key.rsplit("/", 1)[1].startswith("relationship:")]


def test_a_delivered_order_brings_one_relationship_nps_mail_in_the_customers_language(plugin_app):
    app = plugin_app(satisfaction_survey, settings=SIX_MONTHS, timezone="Europe/Madrid")
    deliver(app, customer_order())
    due = START + 14 * DAY
    assert relationship_actions(app) == [
        ("relationship:2026-01", "customer:ana@example.com", due, ActionState.DUE, ReasonCode.NONE)
    ]
    app.clock.advance(3 * DAY)
    execute_due(app)  # the order's own survey, 3 days after the delivery
    app.clock.advance(due - app.now() - timedelta(minutes=1))
    execute_due(app)
    assert relationship_mails(app) == []  # not a minute early
    app.clock.advance(timedelta(minutes=1))
    execute_due(app)
    (mail,) = relationship_mails(app)
    assert mail.subject == "Una pregunta para ti: ¿recomendarías Tienda Ñandú?" and mail.language == "es"
    assert "Hola, Ana:" in mail.text and "sobre nosotros en general, no sobre un pedido" in mail.text
    assert "0 = nada probable, 10 = muy probable" in mail.text
    links = [read_survey_link(app, token) for token in LINK.findall(mail.text)]
    assert [(link.kind, link.score, link.purpose) for link in links] == [
        (SurveyKind.NPS, score, SurveyPurpose.RELATIONSHIP) for score in range(11)
    ]
    assert {link.order_id for link in links} == {"order-1001"} and len(LINK.findall(mail.html)) == 11
    assert not mail.transactional and mail.message["List-Unsubscribe"]  # marketing mail
    assert [m.key.rsplit("/", 1)[1] for m in inbox(app)] == ["survey", "relationship:2026-01"]  # and the order's


def test_once_a_period_however_many_deliveries_and_again_in_the_next_period(plugin_app):
    app = plugin_app(satisfaction_survey, settings=SIX_MONTHS)
    deliver(app, customer_order("1001"))
    run_days(app, 20)
    assert len(relationship_mails(app)) == 1
    app.clock.advance(30 * DAY)
    deliver(app, customer_order("1002"))  # the same customer, the same period: already asked
    deliver(app, customer_order("1001"))  # the platform repeats a delivery: nothing either
    run_days(app, 20)
    assert len(relationship_mails(app)) == 1
    assert [key for key, *_ in relationship_actions(app)] == ["relationship:2026-01"]

    app.clock.advance(datetime(2026, 7, 2, 9, tzinfo=UTC) - app.now())
    deliver(app, customer_order("1003"))  # the next period
    run_days(app, 15)
    assert [(key, state) for key, _who, _due, state, _code in relationship_actions(app)] == [
        ("relationship:2026-01", ActionState.DONE),
        ("relationship:2026-07", ActionState.DONE),
    ]
    assert len(relationship_mails(app)) == 2


@pytest.mark.parametrize(
    "consent", [ConsentState.UNKNOWN, ConsentState.NOT_SUBSCRIBED, ConsentState.UNSUBSCRIBED, ConsentState.PENDING]
)
def test_nothing_without_marketing_consent(plugin_app, consent):
    app = plugin_app(satisfaction_survey, settings=SIX_MONTHS)
    deliver(app, customer_order(consent=consent))
    assert relationship_actions(app) == []
    assert [a.key for a in app.store.list_actions()] == ["survey"]  # the order's own survey is not marketing-only


def test_nothing_when_off_or_for_a_delivery_of_a_period_already_over(plugin_app):
    app = plugin_app(satisfaction_survey)  # every_months absent
    deliver(app, customer_order())
    app = plugin_app(satisfaction_survey, settings={"satisfaction_survey": {"every_months": 0}})
    deliver(app, customer_order())
    assert relationship_actions(app) == []
    app = plugin_app(satisfaction_survey, settings=SIX_MONTHS)
    # A first sync brings a delivery of December: its period ended on 31 December.
    deliver(app, customer_order("900"), at=datetime(2025, 12, 20, 12, tzinfo=UTC))
    assert relationship_actions(app) == []
    app = plugin_app(
        satisfaction_survey,
        settings={"satisfaction_survey": {"every_months": 6, "relationship_days_after_delivery": 2}},
    )
    deliver(app, customer_order("901"), at=datetime(2026, 1, 1, 12, tzinfo=UTC))  # in this period, 2 days passed
    assert relationship_actions(app) == [
        ("relationship:2026-01", "customer:ana@example.com", START, ActionState.DUE, ReasonCode.NONE)  # so: now
    ]


@pytest.mark.parametrize("where", ["the platform", "aftercare's unsubscribe link"])
def test_dropped_when_due_if_the_customer_unsubscribed_since(plugin_app, where):
    app = plugin_app(satisfaction_survey, settings=SIX_MONTHS)
    order = deliver(app, customer_order())
    if where == "the platform":
        unsubscribed = replace(order.customer, marketing_consent=ConsentState.UNSUBSCRIBED)
        app.adapter("test").put_order(replace(order, customer=unsubscribed))
    else:
        app.store.record_unsubscribe("test", "ana@example.com", "unsubscribe link")
    app.clock.advance(14 * DAY)
    execute_due(app)
    [(_key, _who, _due, state, code)] = relationship_actions(app)
    assert (state, code) == (ActionState.DROPPED, ReasonCode.FIRE_TIME_CHECK)
    assert relationship_mails(app) == []


def test_a_return_or_refund_of_the_order_since_does_not_withdraw_it(plugin_app):
    app = plugin_app(satisfaction_survey, settings=SIX_MONTHS)
    order = deliver(app, customer_order())
    Dispatcher(app).dispatch(make_event("return_requested", order, occurred_at=app.now() + DAY))
    run_days(app, 15)
    assert len(relationship_mails(app)) == 1  # about the shop as a whole: an unhappy customer's answer counts most
    survey = next(a for a in app.store.list_actions() if a.key == "survey")
    assert survey.state is ActionState.DROPPED  # the order's own survey is withdrawn


def test_an_answer_is_kept_apart_followed_up_apart_and_reported_as_relationship_nps(plugin_app):
    app = plugin_app(satisfaction_survey, settings=SIX_MONTHS)
    deliver(app, customer_order())
    run_days(app, 15)
    order_mail, relationship_mail = inbox(app)
    worker = Worker(app)
    with TestClient(create_asgi_app(app, worker.queue), base_url="http://127.0.0.1") as client:
        by_score = {read_survey_link(app, t).score: t for t in LINK.findall(relationship_mail.text)}
        assert client.post(f"/survey/{by_score[2]}").status_code == 200
        order_link = LINK.search(order_mail.text).group(1)  # the order's CSAT survey, 5 first
        assert client.post(f"/survey/{order_link}").status_code == 200
    worker.run_now()

    answers = {a.answer.purpose: a.answer for a in app.store.survey_answers("test")}
    assert {p: (a.kind, a.score) for p, a in answers.items()} == {
        SurveyPurpose.RELATIONSHIP: (SurveyKind.NPS, 2),
        SurveyPurpose.ORDER: (SurveyKind.CSAT, 5),
    }
    notes = [a.payload["text"] for a in app.store.list_actions() if a.kind is ActionKind.ADD_ORDER_NOTE]
    assert notes == ["follow up: relationship NPS 2 (0-10) — no comment"]
    report = shop_report(app.store, "test", START, app.now() + DAY)
    assert (report.relationship_nps_answers, report.relationship_nps) == (1, -100.0)
    assert (report.nps_answers, report.csat_answers, report.csat) == (0, 1, 100.0)  # the post-order figures


def test_a_low_relationship_score_and_a_low_order_nps_each_get_their_note(plugin_app):
    app = plugin_app(satisfaction_survey, settings={"satisfaction_survey": {"kind": "nps", "every_months": 6}})
    order = customer_order()
    app.adapter("test").put_order(order)
    for purpose in SurveyPurpose:
        answer = SurveyAnswer(SurveyKind.NPS, 3, START, purpose=purpose)
        event = replace(make_event(EventKind.SURVEY_ANSWERED, order, key=f"survey:{purpose.value}"), answer=answer)
        Dispatcher(app).dispatch(event)
    keys = sorted((a.kind.value, a.key) for a in app.store.list_actions())
    assert keys == [
        ("add_order_note", "follow-up-nps"),
        ("add_order_note", "follow-up-relationship-nps"),
        ("tag_customer", "aftercare-follow-up:order:order-1001"),
        ("tag_customer", "aftercare-follow-up:relationship:order:order-1001"),
    ]


@pytest.mark.parametrize(
    ("every_months", "moment", "period"),
    [
        (6, datetime(2026, 6, 30, 21, 59, tzinfo=UTC), "2026-01"),  # 23:59 on 30 June in Madrid
        (6, datetime(2026, 6, 30, 22, 0, tzinfo=UTC), "2026-07"),  # midnight in Madrid: the next half-year
        (3, datetime(2026, 5, 15, tzinfo=UTC), "2026-04"),
        (12, datetime(2026, 12, 31, 12, tzinfo=UTC), "2026-01"),
        (1, datetime(2026, 2, 10, tzinfo=UTC), "2026-02"),
        (5, datetime(2026, 1, 5, tzinfo=UTC), "2025-11"),  # a length that does not divide 12 runs across years
        (5, datetime(2026, 4, 5, tzinfo=UTC), "2026-04"),
    ],
)
def test_periods_are_calendar_blocks_in_the_shops_time_zone_named_by_their_first_month(every_months, moment, period):
    assert relationship_period(moment, ZoneInfo("Europe/Madrid"), every_months) == period


def test_every_months_must_be_a_whole_number_of_zero_or_more_named_by_its_toml_path(tmp_path):
    shop = '[[shops]]\nid = "acme"\nplatform = "memory"\nwebhook_secret = "s"\n'
    manager = PluginManager.load(entry_points=False, extra=[("memory", memory_platform),
                                                            ("satisfaction_survey", satisfaction_survey)])  # fmt: skip
    wrong = [
        ("-1", "input should be greater than or equal to 0 (got -1)"),
        ('"six"', "input should be a valid integer, unable to parse string as an integer (got 'six')"),
        ("1.5", "input should be a valid integer, got a number with a fractional part (got 1.5)"),
    ]
    for value, problem in wrong:
        path = tmp_path / "aftercare.toml"
        path.write_text(f"{shop}\n[plugins.satisfaction_survey]\nevery_months = {value}\n", encoding="utf-8")
        with pytest.raises(ConfigError) as excinfo:
            App(load_config(path, {}), plugins=manager)
        assert excinfo.value.problems == [f"plugins.satisfaction_survey.every_months: {problem}"]
    path.write_text(f"{shop}\n[shops.plugins.satisfaction_survey]\nevery_months = 6\n", encoding="utf-8")
    app = App(load_config(path, {}), plugins=manager)
    try:
        assert app.shop("acme").plugin_settings["satisfaction_survey"].every_months == 6
    finally:
        app.close()
