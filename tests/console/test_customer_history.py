"""One customer's history (#21 item 7): the console page and `aftercare customers show`, scoped
to the user's shops, with every order, message and its subject, coupon and whether it was
redeemed, survey answer, return, refund and delivery problem, oldest first."""

from dataclasses import replace
from datetime import timedelta

import pytest
from starlette.testclient import TestClient

from aftercare.asgi import create_asgi_app
from aftercare.console.customers import customer_history
from aftercare.dispatch import Dispatcher, execute_due
from aftercare.models import ReturnRequest, ShipmentStatus, SurveyAnswer, SurveyKind, SurveyPurpose
from aftercare.queue import Enqueuer
from aftercare.testing import START, make_event, make_order

from .conftest import add_user, login, make_app
from .test_search_and_messages import Mailer

HOUR = timedelta(hours=1)


@pytest.fixture
def history_app(tmp_path, password_hash):
    app = make_app(tmp_path, plugins=[("mailer", Mailer())])
    add_user(app, "nora", ["north"], password_hash)
    yield app
    app.close()


def happen(app, kind, order, key, shop_id="north", **made):
    app.adapter(shop_id).put_order(order)
    Dispatcher(app).dispatch(make_event(kind, order, occurred_at=app.now(), key=key, **made))
    execute_due(app)
    app.clock.advance(HOUR)


def a_customers_year(app):
    """Ana orders, gets her coupon mail, a parcel problem, a delivery, answers a survey, orders again
    with the code, returns that order; someone else and another shop's order of hers stay apart."""
    first = replace(make_order("5001", shop_id="north"), platform_id="5001", number="#1005")
    happen(app, "order_paid", first, "paid-1")
    code = next(a for a in app.store.order_actions("north", "5001") if a.kind.value == "create_coupon").payload["code"]
    parcel = first.shipments[0]
    happen(app, "shipment_exception", first, "problem-1", problem="failure")
    delivered = replace(first, shipments=(replace(parcel, status=ShipmentStatus.DELIVERED, delivered_at=app.now()),))
    happen(app, "delivered", delivered, "delivered-1")
    with app.store.transaction() as conn:
        app.store.record_survey_answer(conn, shop_id="north", order_id="5001", email="ana@example.com",
                                       answer=SurveyAnswer(SurveyKind.CSAT, 2, app.now(), "arrived late"),
                                       source="survey page")  # fmt: skip
    second = replace(make_order("5002", shop_id="north"), platform_id="5002", number="#1006", discount_codes=(code,))
    happen(app, "order_paid", second, "paid-2")
    back = replace(second, returns=(ReturnRequest("r-1", app.now(), reason="too small"),))
    happen(app, "return_requested", back, "return-1")
    happen(app, "order_paid", replace(make_order("6001", shop_id="south"), platform_id="6001"), "paid-south", "south")
    happen(app, "order_paid", replace(make_order("5003", shop_id="north", email="bo@example.com"),
                                      platform_id="5003"), "paid-bo")  # fmt: skip
    return code


def test_the_history_tells_what_the_customer_lived_through_in_order(history_app):
    code = a_customers_year(history_app)
    entries = customer_history(history_app.store, ["north"], " Ana@Example.com ")
    lines = [(e.order_number, e.what, e.text) for e in entries]
    sent = next(a for a in history_app.store.order_actions("north", "5001") if a.kind.value == "send_email")
    subject = f"{sent.result['subject']}, to ana@example.com"  # as the channel sent it
    assert lines == [
        ("#1005", "order", "order paid: 59.90 EUR, 1 line(s)"),
        ("#1005", "coupon", f"coupon from mailer: {code} (redeemed)"),
        ("#1005", "message", f"mail from mailer: {subject}"),
        ("#1005", "order", "delivery problem: failure"),
        ("#1005", "order", "delivered: DHL JJD000390007"),
        ("#1005", "answer", 'CSAT answer 2 (1-5): "arrived late"'),
        ("#1006", "order", "order paid: 59.90 EUR, 1 line(s)"),
        ("#1006", "coupon", lines[7][2]),
        ("#1006", "message", lines[8][2]),
        ("#1006", "order", "return requested: too small"),
    ]
    assert lines[7][2].endswith("(not redeemed yet)") and sent.result["subject"]
    assert [e.at for e in entries] == sorted(e.at for e in entries)
    assert entries[0].at == START
    assert {e.shop_id for e in customer_history(history_app.store, ["north", "south"], "ana@example.com")} == {
        "north", "south"
    }  # fmt: skip
    assert customer_history(history_app.store, ["north"], "nobody@example.com") == []


def test_the_console_page_is_scoped_to_the_users_shops_and_linked_from_the_order(history_app):
    a_customers_year(history_app)
    with TestClient(create_asgi_app(history_app, Enqueuer.for_app(history_app)), base_url="http://127.0.0.1",
                    follow_redirects=False) as client:  # fmt: skip
        login(client, "nora")
        order = client.get("/console/shops/north/orders/5001").text
        assert "/console/customers?email=ana%40example.com" in order
        page = client.get("/console/customers?email=ana%40example.com")
        assert page.status_code == 200
        assert "delivery problem: failure" in page.text and "return requested: too small" in page.text
        assert "(redeemed)" in page.text and "/console/actions/" in page.text  # the message view
        assert "6001" not in page.text  # the south shop's order: nora may not see it
        missing = client.get("/console/customers?email=nobody%40example.com")
        assert missing.status_code == 404 and "None of your shops" in missing.text


def test_customers_show_prints_the_history_and_json(history_app, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from aftercare.cli import cli

    a_customers_year(history_app)
    (tmp_path / "aftercare.toml").write_text(
        f'database = "{history_app.config.database_url}"\n'
        '[[shops]]\nid = "north"\nplatform = "shopify"\nwebhook_secret = "s"\nshop_domain = "n.myshopify.com"\n'
        'access_token = "t"\n'
    )
    monkeypatch.chdir(tmp_path)
    shown = CliRunner().invoke(cli, ["customers", "show", "ana@example.com"], catch_exceptions=False)
    assert shown.exit_code == 0, shown.output
    assert "#1005  delivery problem: failure" in shown.output and "#1006  return requested: too small" in shown.output
    as_json = CliRunner().invoke(cli, ["customers", "show", "ana@example.com", "--json"], catch_exceptions=False)
    import json

    rows = json.loads(as_json.output)
    assert rows[0]["order"] == "#1005" and rows[0]["what"] == "order" and rows[-1]["text"].startswith("return")
    unknown = CliRunner().invoke(cli, ["customers", "show", "ana@example.com", "--shop", "nope"])
    assert unknown.exit_code == 2 and "no shop 'nope'" in unknown.stderr
    nobody = CliRunner().invoke(cli, ["customers", "show", "nobody@example.com"])
    assert nobody.exit_code == 2 and "no order of nobody@example.com in north" in nobody.stderr


def test_a_relationship_answer_says_which_survey_it_answers(history_app):
    a_customers_year(history_app)
    history_app.clock.advance(HOUR)
    answer = SurveyAnswer(SurveyKind.NPS, 3, history_app.now(), purpose=SurveyPurpose.RELATIONSHIP)
    with history_app.store.transaction() as conn:
        history_app.store.record_survey_answer(conn, shop_id="north", order_id="5001", email="ana@example.com",
                                               answer=answer, source="survey page")  # fmt: skip
    last = customer_history(history_app.store, ["north"], "ana@example.com")[-1]
    assert (last.order_number, last.what, last.text) == ("#1005", "answer", "relationship NPS answer 3 (0-10)")
    with TestClient(create_asgi_app(history_app, Enqueuer.for_app(history_app)), base_url="http://127.0.0.1",
                    follow_redirects=False) as client:  # fmt: skip
        login(client, "nora")
        order = client.get("/console/shops/north/orders/5001").text
    assert 'id="answer-nps-relationship"><strong>Relationship NPS answer: 3</strong>' in order
    assert 'id="answer-csat"><strong>CSAT answer: 2</strong>' in order  # the order's own, beside it
