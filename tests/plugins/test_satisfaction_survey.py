"""satisfaction_survey: one survey per order after delivery (or shipping), signed one-click answers, follow-ups."""

import re
from dataclasses import replace
from datetime import timedelta

import pytest

from aftercare.actions import ActionKind, ActionState
from aftercare.dispatch import Dispatcher, execute_due
from aftercare.links import read_token
from aftercare.mail.templates import check_templates
from aftercare.models import (
    EventKind,
    FinancialStatus,
    Refund,
    ReturnRequest,
    ShipmentStatus,
    SurveyAnswer,
    SurveyKind,
)
from aftercare.plugins import satisfaction_survey
from aftercare.testing import START, make_event, sample_order

from .conftest import inbox

DAY = timedelta(days=1)
LINK = re.compile(r"http://127\.0\.0\.1:8000/survey/([\w.-]+)")
FOLLOW_UP = "test/satisfaction_survey/tag_customer/customer:foo@example.com/aftercare-follow-up:order:1073459970"


def actions(app):
    """(kind, key, due_at, state, reason) of every action, in the order they were recorded."""
    records = sorted(app.store.list_actions(), key=lambda a: a.id)
    return [(a.kind, a.key, a.due_at, a.state, a.reason) for a in records]


def shopify_order(**changes):
    """The real Shopify order, its parcel shipped at START, in the customer's language."""
    order = sample_order("shopify_order_paid_fulfilled")
    parcel = replace(order.shipments[0], carrier="Correos", status=ShipmentStatus.IN_TRANSIT, shipped_at=START)
    customer = replace(order.customer, first_name="Lucía")
    return replace(order, shipments=(parcel,), customer=customer, **changes)


def delivered(order, at):
    parcel = replace(order.shipments[0], status=ShipmentStatus.DELIVERED, delivered_at=at)
    return replace(order, shipments=(parcel,))


def ship_and_deliver(app, order, delivered_at):
    """Paid and shipped at START, delivered at ``delivered_at`` (the clock moved there); returns the final order."""
    adapter, dispatcher = app.adapter("test"), Dispatcher(app)
    adapter.put_order(order)
    dispatcher.dispatch(make_event("order_paid", order))
    dispatcher.dispatch(make_event("shipped", order))
    execute_due(app)
    app.clock.advance(delivered_at - app.now())
    arrived = delivered(order, delivered_at)
    adapter.put_order(arrived)
    dispatcher.dispatch(make_event("delivered", arrived, occurred_at=delivered_at))
    execute_due(app)
    return arrived


def survey_links(app, text):
    """The links in ``text`` as (order, email, locale, kind, score), each checked against its signature."""
    return [read_token(app, "survey", token).fields for token in LINK.findall(text)]


def answered(order, kind, score, comment=""):
    event = make_event(EventKind.SURVEY_ANSWERED, order, occurred_at=START + 6 * DAY, key=f"survey:{kind}:{score}")
    return replace(event, answer=SurveyAnswer(SurveyKind(kind), score, START + 6 * DAY, comment), source="survey page")


def test_csat_survey_three_days_after_delivery_in_spanish_with_signed_one_click_links(plugin_app):
    app = plugin_app(satisfaction_survey)
    ship_and_deliver(app, shopify_order(locale="es-ES"), START + 2 * DAY)

    assert actions(app) == [  # the shipping fallback, moved to count from the delivery
        (ActionKind.SEND_EMAIL, "survey", START + 5 * DAY, ActionState.DUE, "rescheduled by on_delivered"),
    ]
    app.clock.advance(3 * DAY - timedelta(minutes=1))
    execute_due(app)
    assert inbox(app) == []  # not a minute early

    app.clock.advance(timedelta(minutes=1))
    execute_due(app)
    (mail,) = inbox(app)
    assert mail.to == "foo@example.com" and mail.language == "es" and not mail.transactional
    assert mail.key == "test/satisfaction_survey/send_email/order:1073459970/survey"
    assert mail.subject == "¿Qué tal tu pedido #1002? Cuéntanoslo en unos segundos"
    assert "Hola, Lucía:" in mail.text
    assert "¿Cuánto te ha satisfecho tu pedido #1002?" in mail.text
    assert "5 - Muy satisfecho: http://127.0.0.1:8000/survey/" in mail.text
    assert "1 - Muy insatisfecho: http://127.0.0.1:8000/survey/" in mail.text
    assert survey_links(app, mail.text) == [
        ("1073459970", "foo@example.com", "es-ES", "csat", str(score)) for score in (5, 4, 3, 2, 1)
    ]
    assert survey_links(app, mail.html) == survey_links(app, mail.text)
    assert "Ni satisfecho ni insatisfecho" in mail.html and "¡Gracias por tu tiempo!" in mail.html
    assert mail.message["List-Unsubscribe"]  # marketing mail: the customer can opt out


def test_nps_survey_in_bulgarian_falls_back_to_shipping_when_delivery_is_never_reported(plugin_app):
    app = plugin_app(satisfaction_survey, settings={"satisfaction_survey": {"kind": "nps"}})
    base = sample_order("woocommerce_order_completed")
    order = replace(
        base,
        customer=replace(base.customer, first_name="Мария", locale="bg"),
        shipments=(replace(base.shipments[0], carrier="Speedy", shipped_at=START),),
    )
    app.adapter("test").put_order(order)
    Dispatcher(app).dispatch(make_event("order_paid", order))
    Dispatcher(app).dispatch(make_event("shipped", order))
    assert actions(app) == [(ActionKind.SEND_EMAIL, "survey", START + 10 * DAY, ActionState.DUE, "")]

    app.clock.advance(10 * DAY)
    execute_due(app)
    (mail,) = inbox(app)
    assert mail.subject == "Бихте ли препоръчали Tienda Ñandú? Кажете ни за секунди"
    assert mail.language == "bg" and "Здравейте, Мария," in mail.text
    assert "Колко вероятно е да препоръчате Tienda Ñandú на приятел или колега?" in mail.text
    assert "0 = изобщо не е вероятно, 10 = много вероятно" in mail.text
    assert survey_links(app, mail.text) == [
        ("727", "john.doe@example.com", "bg", "nps", str(score)) for score in range(11)
    ]
    assert len(LINK.findall(mail.html)) == 11


def test_a_delivery_reported_after_the_fallback_date_sends_no_second_survey(plugin_app):
    app = plugin_app(satisfaction_survey)
    order = shopify_order()
    app.adapter("test").put_order(order)
    Dispatcher(app).dispatch(make_event("shipped", order))
    app.clock.advance(10 * DAY)
    execute_due(app)
    arrived = delivered(order, START + 11 * DAY)
    app.clock.advance(DAY)
    Dispatcher(app).dispatch(make_event("delivered", arrived, occurred_at=START + 11 * DAY))
    app.clock.advance(5 * DAY)
    execute_due(app)

    assert actions(app) == [(ActionKind.SEND_EMAIL, "survey", START + 10 * DAY, ActionState.DONE, "")]
    (mail,) = inbox(app)
    assert mail.subject == "How was your order #1002? Tell us in a few seconds"
    assert "5 - Very satisfied: http://127.0.0.1:8000/survey/" in mail.text


def test_a_delivery_without_a_shipping_event_schedules_from_the_delivery(plugin_app):
    app = plugin_app(satisfaction_survey, settings={"satisfaction_survey": {"days_after_delivery": 4}})
    arrived = delivered(shopify_order(), START + DAY)
    app.clock.advance(DAY)
    Dispatcher(app).dispatch(make_event("delivered", arrived, occurred_at=START + DAY))
    Dispatcher(app).dispatch(make_event("shipped", arrived))  # seen late, by a poll: no second survey
    assert actions(app) == [(ActionKind.SEND_EMAIL, "survey", START + 5 * DAY, ActionState.DUE, "")]


@pytest.mark.parametrize(
    ("kind", "change", "reason"),
    [
        (
            "refunded",
            {
                "financial_status": FinancialStatus.REFUNDED,
                "refunds": (Refund("refund-1", START + 3 * DAY, reason="damaged"),),
            },
            "the order was refunded: no survey",
        ),
        (
            "return_requested",
            {"returns": (ReturnRequest("return-1", START + 3 * DAY, reason="too small"),)},
            "a return was requested: no survey",
        ),
        ("order_cancelled", {"cancelled_at": START + 3 * DAY}, "the order was cancelled: no survey"),
    ],
)
def test_a_refund_return_or_cancellation_between_delivery_and_the_survey_date_withdraws_it(
    plugin_app, kind, change, reason
):
    app = plugin_app(satisfaction_survey)
    arrived = ship_and_deliver(app, shopify_order(), START + 2 * DAY)
    app.clock.advance(DAY)
    after = replace(arrived, **change)
    app.adapter("test").put_order(after)
    Dispatcher(app).dispatch(make_event(kind, after, occurred_at=START + 3 * DAY))
    app.clock.advance(5 * DAY)
    execute_due(app)

    assert actions(app)[-1] == (ActionKind.SEND_EMAIL, "survey", START + 5 * DAY, ActionState.DROPPED, reason)
    assert inbox(app) == []


def test_a_refund_the_plugin_never_heard_of_is_caught_by_the_fire_time_check(plugin_app):
    app = plugin_app(satisfaction_survey)
    arrived = ship_and_deliver(app, shopify_order(), START + 2 * DAY)
    refunded = replace(arrived, financial_status=FinancialStatus.REFUNDED)
    app.adapter("test").put_order(refunded)  # refunded on the platform; the event got lost
    app.clock.advance(3 * DAY)
    execute_due(app)
    assert actions(app)[-1] == (
        ActionKind.SEND_EMAIL, "survey", START + 5 * DAY, ActionState.DROPPED, "fire-time check: the order was refunded"
    )  # fmt: skip
    assert inbox(app) == []


def test_a_low_score_adds_a_note_and_tags_the_customer_a_high_one_does_not(plugin_app):
    app = plugin_app(satisfaction_survey)
    order = shopify_order()
    low = Dispatcher(app).dispatch(answered(order, "csat", 2, "La caja llegó aplastada"))
    high = Dispatcher(app).dispatch(answered(replace(order, platform_id="1073459971"), "csat", 4))
    execute_due(app)

    assert high.requests == []
    assert [(r.kind, r.idempotency_key) for r in low.requests] == [
        (ActionKind.ADD_ORDER_NOTE, "test/satisfaction_survey/add_order_note/order:1073459970/follow-up-csat"),
        (ActionKind.TAG_CUSTOMER, FOLLOW_UP),
    ]
    adapter = app.adapter("test")
    assert adapter.notes == {"1073459970": ['follow up: CSAT 2 (1-5) — comment: "La caja llegó aplastada"']}
    assert adapter.customer_tags == {"foo@example.com": {"aftercare-follow-up"}}
    assert {a.state for a in app.store.list_actions()} == {ActionState.DONE}


@pytest.mark.parametrize(
    ("kind", "score", "follow_up"),
    [("nps", 6, True), ("nps", 7, False), ("csat", 3, False), ("ces", 6, True), ("ces", 5, False)],
)
def test_thresholds_for_each_kind_of_answer(plugin_app, kind, score, follow_up):
    app = plugin_app(satisfaction_survey, settings={"satisfaction_survey": {"follow_up_tag": ""}})
    requests = Dispatcher(app).dispatch(answered(shopify_order(), kind, score)).requests
    assert [r.kind for r in requests] == ([ActionKind.ADD_ORDER_NOTE] if follow_up else [])
    if follow_up:
        scale = SurveyKind(kind).scale
        expected = f"follow up: {kind.upper()} {score} ({scale.start}-{scale.stop - 1}) — no comment"
        assert requests[0].payload["text"] == expected


def test_off_until_enabled_and_templates_check_clean(aftercare_app):
    app = aftercare_app(satisfaction_survey)
    assert Dispatcher(app).dispatch(make_event("delivered", delivered(shopify_order(), START))).requests == []
    assert check_templates(app) == []
