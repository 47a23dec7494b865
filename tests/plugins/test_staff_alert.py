"""The satisfaction survey's staff alert (issue #20): a mail to the shop's contact on a low score or a
complaint comment, in the shop's language, configurable, and again when the customer changes the
answer to a low one or adds a complaint on the thank-you page."""

from dataclasses import replace

import pytest
from starlette.testclient import TestClient

from aftercare.asgi import create_asgi_app
from aftercare.dispatch import Dispatcher, execute_due
from aftercare.models import SurveyPurpose
from aftercare.plugins import satisfaction_survey
from aftercare.testing import make_event, make_order
from aftercare.worker import Worker

from ..pages.conftest import survey_path
from .conftest import inbox
from .test_satisfaction_survey import answered, shopify_order

ON = {"satisfaction_survey": {"staff_alert": True, "follow_up_tag": ""}}


def staff_mail(app):
    return [m for m in inbox(app) if m.key and "/staff-alert-" in m.key]


def test_a_low_score_mails_the_shops_sender_address_in_the_shops_language(plugin_app):
    app = plugin_app(satisfaction_survey, settings=ON, locale="bg")  # the customer writes Spanish
    order = replace(shopify_order(), locale="es")
    Dispatcher(app).dispatch(answered(order, "csat", 2, "La caja llegó aplastada"))
    execute_due(app)
    (mail,) = staff_mail(app)
    assert mail.to == "hola@tienda.example" and mail.transactional and mail.language == "bg"
    assert mail.subject == f"Ниска оценка CSAT 2 за поръчка {order.number} (Lucía)"
    assert "La caja llegó aplastada" in mail.text and "(оплакване)" in mail.text
    assert "CSAT 2 (скала от 1 до 5), ниска оценка" in mail.text


@pytest.mark.parametrize(
    ("kind", "score", "comment", "alerts"),
    [
        ("csat", 4, "", False),
        ("csat", 3, "", False),
        ("csat", 3, "meh, it was fine", True),  # a comment short of the best two scores
        ("csat", 5, "love it", False),
        ("csat", 5, "Great, but one cup was BROKEN", True),  # a complaint word, whatever the score
        ("nps", 6, "", True),
        ("nps", 9, "", False),
        ("ces", 6, "", True),
        ("ces", 2, "", False),
    ],
)
def test_what_alerts(plugin_app, kind, score, comment, alerts):
    app = plugin_app(satisfaction_survey, settings=ON)
    requests = Dispatcher(app).dispatch(answered(shopify_order(), kind, score, comment)).requests
    assert any(r.payload.get("template") == "staff_alert" for r in requests) is alerts


def test_off_by_default_and_each_setting_is_honoured(plugin_app):
    app = plugin_app(satisfaction_survey, settings={"satisfaction_survey": {"follow_up_tag": ""}})
    assert not [r for r in Dispatcher(app).dispatch(answered(shopify_order(), "csat", 1)).requests
                if r.payload.get("template") == "staff_alert"]  # fmt: skip
    settings = {"satisfaction_survey": {"staff_alert": True, "staff_alert_to": "care@tienda.example",
                                        "staff_alert_csat": 3, "staff_alert_comments": "none"}}  # fmt: skip
    app = plugin_app(satisfaction_survey, settings=settings)
    dispatcher = Dispatcher(app)
    three = dispatcher.dispatch(answered(shopify_order(), "csat", 3)).requests
    assert [r.payload["to"] for r in three if r.payload.get("template") == "staff_alert"] == ["care@tienda.example"]
    other = replace(shopify_order(), platform_id="1073459971")
    broken = dispatcher.dispatch(answered(other, "csat", 5, "broken")).requests
    assert not [r for r in broken if r.payload.get("template") == "staff_alert"]  # comments: none


def test_a_changed_answer_and_a_complaint_on_the_thank_you_page_alert_each_once(plugin_app):
    app = plugin_app(satisfaction_survey, settings=ON)
    order = make_order("1001", shop_id="test", email="ana@example.com")
    app.adapter("test").put_order(order)
    Dispatcher(app).dispatch(make_event("order_paid", order))
    worker = Worker(app)
    with TestClient(create_asgi_app(app, worker.queue), base_url="http://127.0.0.1") as client:
        url = survey_path(app, order, "csat", 5)

        def post(path, **form):
            assert client.post(path, data=form).status_code == 200
            worker.run_now()
            execute_due(app)
            return staff_mail(app)

        assert post(url) == []  # a 5: nothing to say
        (changed,) = post(url, score="2")  # changed to a 2: the hook fires again, and alerts
        assert "CSAT 2" in changed.text and "No comment." in changed.text
        assert len(post(url, score="2")) == 1  # the same answer again: no second alert
        mails = post(url + "/more", comment="The parcel came two weeks late")
        assert len(mails) == 2 and "The parcel came two weeks late" in mails[1].text
        assert len(post(url + "/more", comment="The parcel came two weeks late")) == 2
    notes = app.adapter("test").notes.get(order.platform_id, [])
    assert notes == ["follow up: CSAT 2 (1-5) — no comment"]  # the follow-up note stays once per order and kind


def test_the_staff_alert_template_renders_in_every_language(plugin_app):
    from aftercare.mail.templates import check_templates

    app = plugin_app(satisfaction_survey, settings=ON)
    assert check_templates(app) == []


def test_erasing_the_customer_blanks_the_comment_the_alert_carried(plugin_app):
    app = plugin_app(satisfaction_survey, settings=ON)
    order = shopify_order()
    Dispatcher(app).dispatch(answered(order, "csat", 2, "Call me on my cell, Lucía"))
    (alert,) = [a for a in app.store.list_actions() if a.payload.get("template") == "staff_alert"]
    assert alert.payload["context"]["comment"]
    app.store.forget_customer("test", order.customer.email, b"k" * 32)
    erased = app.store.get_action(alert.id)
    assert erased.payload["context"]["comment"] == "" and "Lucía" not in str(erased.payload)


def test_a_low_relationship_score_alerts_apart_and_says_which_survey_it_answers(plugin_app):
    app = plugin_app(satisfaction_survey, settings=ON)
    order = shopify_order()
    Dispatcher(app).dispatch(answered(order, "nps", 3))  # the order's own NPS
    relationship = answered(order, "nps", 3)
    relationship = replace(relationship, dedupe_key="survey:relationship",
                           answer=replace(relationship.answer, purpose=SurveyPurpose.RELATIONSHIP))  # fmt: skip
    Dispatcher(app).dispatch(relationship)
    execute_due(app)
    order_alert, relationship_alert = staff_mail(app)
    assert "/staff-alert-nps-" in order_alert.key and "/staff-alert-relationship-nps-" in relationship_alert.key
    assert "NPS 3 (scale 0 to 10), a low score, in the relationship survey" in relationship_alert.text
    assert "relationship survey" not in order_alert.text
