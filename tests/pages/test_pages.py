"""The survey and opt-in pages: a GET records nothing, a POST records once, one shop never acts on another."""

from datetime import timedelta

from aftercare.asgi import create_asgi_app
from aftercare.links import make_token
from aftercare.models import ConsentState, EventKind, SurveyKind, SurveyPurpose
from aftercare.pages import OPTIN_SOURCE, SURVEY_SOURCE, read_survey_link

from .conftest import optin_path, paid, survey_path
from .legacy import b64, legacy_token, unb64


def page_events_of(app, kind):
    return [e for e in app.store.list_events() if e.event.kind is kind]


def test_get_shows_the_question_with_the_score_preselected_and_records_nothing(served):
    app, worker, client = served
    order = paid(app)
    response = client.get(survey_path(app, order, "csat", 4))
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert "How satisfied are you" in response.text and "Order 1001" in response.text
    assert 'value="4" checked' in response.text and 'value="5" checked' not in response.text
    assert '<form method="post">' in response.text
    assert app.store.survey_answers("test") == []
    assert page_events_of(app, EventKind.SURVEY_ANSWERED) == []
    assert worker.queue.backlog() == 0


def test_post_records_the_answer_and_one_event_even_when_posted_twice(served, page_events):
    app, worker, client = served
    order = paid(app)
    url = survey_path(app, order, "nps", 9)
    assert client.post(url).status_code == 200
    assert client.post(url).status_code == 200

    [stored] = app.store.survey_answers("test")
    assert (stored.order_id, stored.email, stored.source) == ("order-1001", "ana@example.com", SURVEY_SOURCE)
    assert (stored.answer.kind, stored.answer.score, stored.answer.answered_at) == (SurveyKind.NPS, 9, app.now())
    [event] = page_events_of(app, EventKind.SURVEY_ANSWERED)
    assert (event.event.dedupe_key, event.event.source) == ("survey:order-1001:nps", "page")
    assert event.event.order == order and event.event.answer == stored.answer
    assert worker.queue.backlog() == 1  # enqueued once, after commit

    worker.run_now()
    assert page_events.seen == [("survey_answered", "order-1001", stored.answer)]


def test_a_changed_score_updates_the_answer_and_fires_once_more_with_the_new_score(served):
    app, _worker, client = served
    order = paid(app)
    url = survey_path(app, order, "csat", 5)
    client.post(url)
    first_time = app.now()
    app.clock.advance(timedelta(hours=1))
    response = client.post(url, data={"score": "2"})
    assert response.status_code == 200
    client.post(url, data={"score": "2"})  # the same change posted again: nothing more
    [stored] = app.store.survey_answers("test")
    assert stored.answer.score == 2
    assert stored.answer.answered_at == first_time and stored.updated_at == app.now()
    first, changed = sorted(page_events_of(app, EventKind.SURVEY_ANSWERED), key=lambda e: e.id)
    assert (first.event.answer.score, changed.event.answer.score) == (5, 2)
    assert changed.event.dedupe_key.startswith("survey:order-1001:csat:2:")
    assert changed.event.answer.answered_at == first_time


def test_a_score_off_the_scale_is_refused(served):
    app, _worker, client = served
    url = survey_path(app, paid(app), "csat", 5)
    for bad in ("6", "0", "x"):
        assert client.post(url, data={"score": bad}).status_code == 400
    assert app.store.survey_answers("test") == []


def test_thank_you_page_takes_a_comment_and_a_customer_effort_answer(served, page_events):
    app, worker, client = served
    order = paid(app)
    url = survey_path(app, order, "csat", 4)
    thanks = client.post(url)
    assert 'name="comment"' in thanks.text and 'name="ces"' in thanks.text
    assert f'action="{url.rsplit("/", 1)[1]}/more"' in thanks.text  # relative: works under any path prefix

    done = client.post(url + "/more", data={"comment": "  Arrived a day late, but fine.  ", "ces": "2"})
    assert done.status_code == 200 and "Thank you for your feedback" in done.text
    answers = {a.answer.kind: a for a in app.store.survey_answers("test")}
    assert (answers[SurveyKind.CSAT].answer.score, answers[SurveyKind.CSAT].answer.comment) == (
        4, "Arrived a day late, but fine.")  # fmt: skip
    assert answers[SurveyKind.CES].answer.score == 2
    keys = sorted(e.event.dedupe_key for e in page_events_of(app, EventKind.SURVEY_ANSWERED))
    assert keys[:2] == ["survey:order-1001:ces", "survey:order-1001:csat"] and len(keys) == 3
    assert keys[2].startswith("survey:order-1001:csat:4:")  # the comment: the answer's event once more

    client.post(url)  # confirming again keeps the comment, and fires nothing new
    assert app.store.survey_answer("test", "order-1001", SurveyKind.CSAT).answer.comment == (
        "Arrived a day late, but fine.")  # fmt: skip
    assert len(page_events_of(app, EventKind.SURVEY_ANSWERED)) == 3
    worker.run_now()
    seen = [(answer.kind.value, answer.comment) for _, _, answer in page_events.seen]
    assert sorted(seen) == [("ces", ""), ("csat", ""), ("csat", "Arrived a day late, but fine.")]


def test_ces_survey_asks_no_second_effort_question(served):
    app, _worker, client = served
    thanks = client.post(survey_path(app, paid(app), "ces", 3))
    assert 'name="comment"' in thanks.text and 'name="ces"' not in thanks.text


def test_tampered_or_foreign_tokens_are_400(served):
    app, _worker, client = served
    order = paid(app)
    url = survey_path(app, order, "csat", 5)
    token = url.rsplit("/", 1)[1]
    middle = len(token) // 2
    tampered = f"/survey/{token[:middle]}{'A' if token[middle] != 'A' else 'B'}{token[middle + 1 :]}"
    truncated = f"/survey/{token[:-4]}"
    for bad in (tampered, truncated, "/survey/nonsense", optin_path(app, order).replace("/optin/", "/survey/")):
        assert client.get(bad).status_code == 400
        assert client.post(bad).status_code == 400
    assert client.post(survey_path(app, order).replace("/survey/", "/optin/")).status_code == 400
    assert "This survey link is not valid" in client.get("/survey/nonsense").text
    assert app.store.survey_answers("test") == [] and app.store.consent_history("test", "ana@example.com") == []


def test_a_link_of_one_shop_never_reads_or_writes_another(served):
    app, _worker, client = served
    mine = paid(app, "1001", shop_id="test")
    paid(app, "1001", shop_id="other", email="ivan@example.com")  # same order id in the other shop
    # A legacy token signed for shop "test" with the other shop's id swapped in does not verify
    # (an opaque token has no readable shop id to swap).
    url = survey_path(app, mine, "csat", 5)
    body, mac = legacy_token(app, "survey", "test", "order-1001", "ana@example.com", "en", "csat", "5").split(".")
    forged = b64(unb64(body).replace(b"\ntest\n", b"\nother\n"))
    assert client.post(f"/survey/{forged}.{mac}").status_code == 400

    # The genuine link acts on its own shop only, with its own shop's order.
    client.post(url)
    assert [a.shop_id for a in app.store.survey_answers("test")] == ["test"]
    assert app.store.survey_answers("other") == []
    [event] = page_events_of(app, EventKind.SURVEY_ANSWERED)
    assert event.event.shop_id == "test" and event.event.order.customer.email == "ana@example.com"


def test_optin_records_consent_with_its_source_and_one_event(served, page_events):
    app, worker, client = served
    order = paid(app)
    url = optin_path(app, order)
    page = client.get(url)
    assert page.status_code == 200 and "ana@example.com" in page.text and "<form" in page.text
    assert app.store.consent_history("test", "ana@example.com") == []

    assert client.post(url).status_code == 200
    assert client.post(url).status_code == 200
    assert app.store.consent_history("test", "ana@example.com") == [(ConsentState.SUBSCRIBED, OPTIN_SOURCE, app.now())]
    [event] = page_events_of(app, EventKind.OPTIN_CONFIRMED)
    assert (event.event.dedupe_key, event.event.order) == ("optin:ana@example.com", order)

    second_order = paid(app, "1002")  # one opt-in per customer, whichever order's mail it came from
    client.post(optin_path(app, second_order))
    assert len(page_events_of(app, EventKind.OPTIN_CONFIRMED)) == 1
    worker.run_now()
    assert page_events.seen == [("optin_confirmed", "order-1001", "ana@example.com")]


def test_a_page_without_a_stored_order_records_the_answer_and_no_event(served):
    app, worker, client = served
    from aftercare.testing import make_order

    never_seen = make_order("2001")
    client.post(survey_path(app, never_seen, "csat", 3))
    assert [a.answer.score for a in app.store.survey_answers("test")] == [3]
    assert app.store.list_events() == [] and worker.queue.backlog() == 0


def test_pages_speak_spanish_and_bulgarian(served):
    app, _worker, client = served
    order = paid(app)
    es = client.get(survey_path(app, order, "nps", 10, locale="es-ES"))
    assert "¿Qué probabilidad hay de que recomiendes Tienda Test" in es.text and "Enviar mi respuesta" in es.text
    assert '<html lang="es">' in es.text
    assert "¡Gracias!" in client.post(survey_path(app, order, "csat", 5, locale="es")).text
    assert "Sí, suscribirme" in client.get(optin_path(app, order, locale="es")).text

    bulgarian = paid(app, "3001", shop_id="other", email="ivan@example.com")
    bg = client.get(survey_path(app, bulgarian, "csat", 5, locale=""))  # no locale: the shop's (bg)
    assert "Доколко сте доволни" in bg.text and "Изпрати отговора ми" in bg.text
    assert "Да, абонирайте ме" in client.get(optin_path(app, bulgarian, locale="bg")).text
    assert "Благодарим ви!" in client.post(optin_path(app, bulgarian, locale="bg")).text


def test_the_pages_enqueue_their_events_through_the_producer(two_shops):
    from starlette.testclient import TestClient

    from ..runtime.test_queue import Recording

    app = two_shops
    producer = Recording.for_app(app)
    order = paid(app)
    with TestClient(create_asgi_app(app, producer), base_url="http://127.0.0.1") as client:
        assert client.post(survey_path(app, order, "csat", 5)).status_code == 200
        assert client.post(optin_path(app, order)).status_code == 200
    survey = page_events_of(app, EventKind.SURVEY_ANSWERED)[0]
    optin = page_events_of(app, EventKind.OPTIN_CONFIRMED)[0]
    assert producer.events == [[survey.id], [optin.id]]


def test_a_relationship_answer_is_kept_apart_from_the_orders_own_with_events_of_its_own(served, page_events):
    app, worker, client = served
    order = paid(app)
    relationship = survey_path(app, order, "nps", 3, purpose=SurveyPurpose.RELATIONSHIP)
    page = client.get(relationship)
    assert "How likely are you to recommend" in page.text and 'value="3" checked' in page.text
    assert "Order 1001" not in page.text  # about the shop as a whole, not this order
    client.post(survey_path(app, order, "nps", 9))  # the order's own NPS answer
    thanks = client.post(relationship)
    assert 'name="comment"' in thanks.text and 'name="ces"' not in thanks.text  # effort is an order's

    answers = {a.answer.purpose: a.answer for a in app.store.survey_answers("test")}
    assert {purpose: (a.kind, a.score) for purpose, a in answers.items()} == {
        SurveyPurpose.ORDER: (SurveyKind.NPS, 9),
        SurveyPurpose.RELATIONSHIP: (SurveyKind.NPS, 3),
    }
    client.post(relationship, data={"score": "2"})
    client.post(relationship + "/more", data={"comment": "Slow replies lately", "ces": "6"})  # no CES asked: none kept
    stored = app.store.survey_answer("test", "order-1001", SurveyKind.NPS, SurveyPurpose.RELATIONSHIP)
    assert (stored.answer.score, stored.answer.comment) == (2, "Slow replies lately")
    assert app.store.survey_answer("test", "order-1001", SurveyKind.NPS).answer.score == 9  # the order's: as it was
    assert app.store.survey_answer("test", "order-1001", SurveyKind.CES) is None
    keys = sorted(e.event.dedupe_key for e in page_events_of(app, EventKind.SURVEY_ANSWERED))
    assert keys[:2] == ["survey:order-1001:nps", "survey:order-1001:nps:relationship"] and len(keys) == 4
    assert all(key.startswith("survey:order-1001:nps:relationship:2:") for key in keys[2:])
    worker.run_now()
    seen = sorted((a.purpose.value, a.score, a.comment) for _, _, a in page_events.seen)
    assert seen == [("order", 9, ""), ("relationship", 2, ""), ("relationship", 2, "Slow replies lately"),
                    ("relationship", 3, "")]  # fmt: skip


def test_a_survey_link_made_before_purposes_existed_reads_as_an_orders(served):
    app, _worker, client = served
    order = paid(app)
    fields = ("order-1001", "ana@example.com", "en", "nps", "7")  # five fields: no purpose
    for token in (make_token(app, "survey", "test", *fields), legacy_token(app, "survey", "test", *fields)):
        link = read_survey_link(app, token)
        assert (link.kind, link.score, link.purpose) == (SurveyKind.NPS, 7, SurveyPurpose.ORDER)
    assert "Order 1001" in client.get(f"/survey/{make_token(app, 'survey', 'test', *fields)}").text
    client.post(f"/survey/{legacy_token(app, 'survey', 'test', *fields)}")
    [stored] = app.store.survey_answers("test")
    assert (stored.answer.purpose, stored.answer.score) == (SurveyPurpose.ORDER, 7)
    [event] = page_events_of(app, EventKind.SURVEY_ANSWERED)
    assert event.event.dedupe_key == "survey:order-1001:nps"
    assert read_survey_link(app, survey_path(app, order, "nps", 7).rsplit("/", 1)[1]).purpose is SurveyPurpose.ORDER
    unknown = make_token(app, "survey", "test", *fields, "weekly")
    assert client.post(f"/survey/{unknown}").status_code == 400  # a purpose this aftercare does not know
