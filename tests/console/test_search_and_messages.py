"""The console's search (order number with or without '#', platform id, customer email), the
subject and recipient in the lists, the coupon code and survey score in the timeline, and the
view of each sent message (issue #20)."""

import re
from dataclasses import replace
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from aftercare import hookimpl
from aftercare.actions import ActionKind, ActionState
from aftercare.asgi import create_asgi_app
from aftercare.dispatch import Dispatcher, execute_due
from aftercare.models import SurveyAnswer, SurveyKind
from aftercare.queue import Enqueuer
from aftercare.testing import START, make_event, make_order

from .conftest import add_user, login, make_app


class Mailer:
    """A coupon, then a thank-you mail that carries its code."""

    name = "mailer"

    @hookimpl
    def on_order_paid(self, event, ctx):
        coupon = ctx.create_coupon(percent=10, prefix="THANKS")
        ctx.send_email("thank_you", context={"code": coupon.payload["code"]}, after=coupon)


@pytest.fixture
def mail_app(tmp_path, password_hash):
    app = make_app(tmp_path, plugins=[("mailer", Mailer())])
    add_user(app, "nora", ["north"], password_hash)
    add_user(app, "agency", ["all"], password_hash)
    yield app
    app.close()


@pytest.fixture
def mail_client(mail_app):
    with TestClient(create_asgi_app(mail_app, Enqueuer.for_app(mail_app)), base_url="http://127.0.0.1",
                    follow_redirects=False) as client:  # fmt: skip
        yield client


def paid(app, platform_id, number, shop_id="north", email="ana@example.com"):
    order = replace(make_order(platform_id, shop_id=shop_id, email=email), platform_id=platform_id, number=number)
    app.adapter(shop_id).put_order(order)
    Dispatcher(app).dispatch(make_event("order_paid", order, key=f"paid-{shop_id}-{platform_id}"))
    return order


def location(answer):
    assert answer.status_code == 302, answer.text
    return answer.headers["location"]


def test_an_order_is_found_by_its_number_with_or_without_hash_and_by_platform_id(mail_client, mail_app):
    paid(mail_app, "5001", "#1005")
    paid(mail_app, "5002", "#1006")
    login(mail_client, "nora")
    for text in ("#1005", "1005", " #1005 ", "5001"):
        answer = mail_client.get("/console/shops/north/orders", params={"order": text})
        assert location(answer) == "/console/shops/north/orders/5001", text
    assert location(mail_client.get("/console/shops/north/orders?order=%231005")).endswith("/orders/5001")
    missing = mail_client.get("/console/shops/north/orders?order=1007")
    assert missing.status_code == 404 and "No order matches" in missing.text


def test_a_customer_email_lists_their_orders_of_the_viewers_shops_only(mail_client, mail_app):
    paid(mail_app, "5001", "#1005", email="Ana@Example.com")
    paid(mail_app, "5002", "#1006", email="ana@example.com")
    paid(mail_app, "6001", "#1005", shop_id="south", email="ana@example.com")
    paid(mail_app, "5003", "#1007", email="bob@example.com")
    login(mail_client, "nora")
    page = mail_client.get("/console/shops/north/orders", params={"order": "ANA@example.com"})
    assert page.status_code == 200 and "2 orders match" in page.text
    assert page.text.index("/orders/5002") < page.text.index("/orders/5001")  # newest first
    assert "6001" not in page.text and "5003" not in page.text
    # Across her shops: still only north's; one order of bob's opens it at once.
    assert "6001" not in mail_client.get("/console/search", params={"q": "ana@example.com"}).text
    assert location(mail_client.get("/console/search", params={"q": "bob@example.com"})).endswith("/orders/5003")
    # Her search does not see south's order of the same number.
    assert location(mail_client.get("/console/search", params={"q": "#1005"})) == "/console/shops/north/orders/5001"
    assert mail_client.get("/console/shops/south/orders", params={"order": "#1005"}).status_code == 404


def test_agency_search_lists_the_same_number_in_two_shops(mail_client, mail_app):
    paid(mail_app, "5001", "#1005")
    paid(mail_app, "6001", "1005", shop_id="south")
    login(mail_client, "agency")
    page = mail_client.get("/console/search", params={"q": "1005"})
    assert page.status_code == 200
    assert "/shops/north/orders/5001" in page.text and "/shops/south/orders/6001" in page.text


def test_lists_and_timeline_show_subject_recipient_coupon_code_and_survey_score(mail_client, mail_app):
    paid(mail_app, "5001", "#1005")
    with mail_app.store.transaction() as conn:
        mail_app.store.record_survey_answer(conn, shop_id="north", order_id="5001", email="ana@example.com",
                                            answer=SurveyAnswer(SurveyKind.CSAT, 2, START, "arrived broken"),
                                            source="survey page")  # fmt: skip
    login(mail_client, "nora")
    before = mail_client.get("/console/shops/north/orders/5001").text
    assert "(thank_you, not sent)" in before and "to ana@example.com" in before
    execute_due(mail_app)
    actions = mail_app.store.order_actions("north", "5001")
    mail = next(a for a in actions if a.kind is ActionKind.SEND_EMAIL)
    coupon = next(a for a in actions if a.kind is ActionKind.CREATE_COUPON)
    assert mail.state is ActionState.DONE and mail.result["subject"]
    code = coupon.result.get("code") or coupon.payload["code"]
    page = mail_client.get("/console/shops/north/orders/5001").text
    assert mail.result["subject"] in page and f"/console/actions/{mail.id}/message" in page
    assert f'<code class="code">{code}</code>' in page
    assert "CSAT answer: 2" in page and "arrived broken" in page
    listed = mail_client.get("/console/actions?shop=north").text
    assert mail.result["subject"] in listed and "ana@example.com" in listed and code in listed


def test_a_sent_message_is_shown_as_stored_in_a_sandboxed_iframe_under_a_strict_csp(mail_client, mail_app):
    paid(mail_app, "5001", "#1005")
    execute_due(mail_app)
    mail = next(a for a in mail_app.store.order_actions("north", "5001") if a.kind is ActionKind.SEND_EMAIL)
    stored = Path(mail.result["path"]).read_bytes()
    login(mail_client, "nora")
    page = mail_client.get(f"/console/actions/{mail.id}/message")
    assert page.status_code == 200, page.text
    assert "Stored copy" in page.text and Path(mail.result["path"]).name in page.text
    assert re.search(r'<iframe class="mail" sandbox title="[^"]*" referrerpolicy="no-referrer" srcdoc="', page.text)
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp and "frame-ancestors 'none'" in csp
    code = (next(a for a in mail_app.store.order_actions("north", "5001") if a.kind is ActionKind.CREATE_COUPON)
            .payload["code"])  # fmt: skip
    assert code.encode() in stored and code in page.text
    # The outbox file gone (an erasure, a clean-up): re-rendered by the channel's code, and said so.
    Path(mail.result["path"]).unlink()
    again = mail_client.get(f"/console/actions/{mail.id}/message")
    assert again.status_code == 200 and "Re-rendered" in again.text and code in again.text
    assert mail.result["subject"] in again.text


def test_a_result_path_outside_the_outbox_is_not_read(mail_client, mail_app, tmp_path):
    paid(mail_app, "5001", "#1005")
    execute_due(mail_app)
    mail = next(a for a in mail_app.store.order_actions("north", "5001") if a.kind is ActionKind.SEND_EMAIL)
    secret = tmp_path / "elsewhere.eml"
    secret.write_bytes(b"Subject: not for the console\r\n\r\nsecret body")
    import sqlalchemy as sa

    from aftercare.store import actions

    with mail_app.store.transaction() as conn:
        moved = {**mail.result, "path": str(secret)}
        conn.execute(sa.update(actions).where(actions.c.id == mail.id).values(result=moved))
    login(mail_client, "nora")
    page = mail_client.get(f"/console/actions/{mail.id}/message")
    assert page.status_code == 200 and "secret body" not in page.text and "Re-rendered" in page.text


def test_the_message_view_is_404_for_another_shop_and_for_an_action_that_is_no_mail(mail_client, mail_app):
    paid(mail_app, "6001", "#1", shop_id="south")
    paid(mail_app, "5001", "#1005")
    login(mail_client, "nora")
    south_mail = next(a for a in mail_app.store.order_actions("south", "6001") if a.kind is ActionKind.SEND_EMAIL)
    note = next(a for a in mail_app.store.order_actions("north", "5001") if a.kind is ActionKind.ADD_ORDER_NOTE)
    assert mail_client.get(f"/console/actions/{south_mail.id}/message").status_code == 404
    assert mail_client.get(f"/console/actions/{note.id}/message").status_code == 404
    assert mail_client.get("/console/actions/99999/message").status_code == 404
