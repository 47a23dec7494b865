"""The channel end to end over a real SMTP server on 127.0.0.1: MIME, headers, languages, errors, reuse."""

import socket
from dataclasses import replace
from datetime import timedelta
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.testclient import TestClient

from aftercare.actions import ActionState
from aftercare.dispatch import Dispatcher, execute_due
from aftercare.mail.web import routes
from aftercare.models import ConsentState, Customer
from aftercare.store import SuppressionReason
from aftercare.testing import make_event, make_order


def mails(app):
    return {(a.key, a.customer_email): a for a in app.store.list_actions() if a.kind.value == "send_email"}


def pay(app, order):
    Dispatcher(app).dispatch(make_event("order_paid", order))
    execute_due(app)


def test_marketing_mail_arrives_with_both_parts_headers_and_spanish_intact(mail_app, smtp_server):
    _controller, handler = smtp_server
    app = mail_app()
    pay(app, make_order())

    (action,) = mails(app).values()
    assert action.state is ActionState.DONE, action.reason
    (received,) = handler.received
    assert received.mail_from == "hola@tienda.example" and received.rcpt_tos == ["ana@example.com"]
    message = received.message
    assert message.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
    assert message["Subject"] == "Gracias por tu pedido 1001 en Tienda Ñandú"
    assert str(message["From"]) == "Tienda Ñandú <hola@tienda.example>"
    assert str(message["To"]) == "Ana García <ana@example.com>"
    assert message["Message-ID"] == action.result["message_id"] and message["Date"]
    assert message["X-Aftercare-Key"] == action.idempotency_key
    assert message["Content-Language"] == "es"
    assert message["X-Aftercare-Transactional"] is None
    assert message["List-Unsubscribe"].startswith("<http://127.0.0.1:8000/unsubscribe/")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "Hola, Ana:" in text and "GRACIAS-7Q2XM" in text and "59,90\xa0€" in text
    assert "¡Hasta pronto!" in html and "GRACIAS-7Q2XM" in html
    assert "4 de enero de 2026" in text  # the order's date, in the shop's time zone, in Spanish
    assert message["List-Unsubscribe"].strip("<>") in text


def test_bulgarian_mail_keeps_its_cyrillic_and_formats_money_and_dates_in_bulgarian(mail_app, smtp_server):
    _controller, handler = smtp_server
    app = mail_app(timezone="Europe/Sofia")
    customer = Customer(email="maria@example.bg", first_name="Мария", last_name="Петрова", locale="bg")
    pay(app, make_order("2002", email="maria@example.bg", customer=customer, locale="bg"))

    message = handler.received[0].message
    assert message["Subject"] == "Благодарим ви за поръчка 2002 от Tienda Ñandú"
    assert str(message["To"]) == "Мария Петрова <maria@example.bg>"
    text = message.get_body(("plain",)).get_content()
    assert "Здравейте, Мария," in text and "59,90\xa0€" in text and "4 януари 2026" in text
    assert "Мария" in message.get_body(("html",)).get_content()


def test_html_is_autoescaped_and_text_is_not(mail_app, smtp_server):
    _controller, handler = smtp_server
    app = mail_app()
    customer = Customer(email="ana@example.com", first_name="<b>Ana</b> & Co", locale="es")
    pay(app, make_order(customer=customer))
    message = handler.received[0].message
    assert "&lt;b&gt;Ana&lt;/b&gt; &amp; Co" in message.get_body(("html",)).get_content()
    assert "<b>Ana</b> & Co" in message.get_body(("plain",)).get_content()


def test_the_unsubscribe_link_asks_on_get_records_on_post_and_suppresses_later_marketing(mail_app, smtp_server):
    _controller, handler = smtp_server
    app = mail_app()
    order = make_order()
    pay(app, order)
    link = handler.received[0].message["List-Unsubscribe"].strip("<>")
    client = TestClient(Starlette(routes=routes(app)))

    page = client.get(urlsplit(link).path)
    assert page.status_code == 200 and 'method="post"' in page.text and "ana@example.com" in page.text
    assert app.store.current_consent("test", "ana@example.com") is None  # a GET (a link scanner) changes nothing
    assert app.store.suppressions("test", "ana@example.com") == []

    done = client.post(urlsplit(link).path)
    assert done.status_code == 200 and "Hecho" in done.text
    assert app.store.consent_history("test", "ana@example.com")[-1][:2] == (
        ConsentState.UNSUBSCRIBED,
        "unsubscribe link",
    )
    assert [s.reason for s in app.store.suppressions("test", "ana@example.com")] == [SuppressionReason.UNSUBSCRIBED]
    assert client.post(urlsplit(link).path).status_code == 200  # twice is fine
    assert len(app.store.consent_history("test", "ana@example.com")) == 1

    pay(app, make_order("1002"))  # marketing: dropped
    Dispatcher(app).dispatch(make_event("shipped", order))  # transactional: still sent
    execute_due(app)
    by_key = {a.order_id + "/" + a.key: a for a in mails(app).values()} | {
        a.order_id + "/" + a.key: a for a in app.store.list_actions() if a.kind.value == "send_email"
    }
    second = by_key["order-1002/thank_you"]
    assert second.state is ActionState.DROPPED and second.reason.startswith("suppressed: unsubscribed")
    assert by_key["order-1001/shipped"].state is ActionState.DONE
    assert len(handler.received) == 2
    assert handler.received[1].message["X-Aftercare-Transactional"] == "yes"
    assert handler.received[1].message["List-Unsubscribe"] is None


def test_one_click_post_from_a_mail_client_unsubscribes(mail_app, smtp_server):
    _controller, handler = smtp_server
    app = mail_app()
    pay(app, make_order())
    link = handler.received[0].message["List-Unsubscribe"].strip("<>")
    client = TestClient(Starlette(routes=routes(app)))
    response = client.post(urlsplit(link).path, data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    assert app.store.consent_history("test", "ana@example.com")[-1][1] == "one-click unsubscribe (RFC 8058)"


def test_an_altered_link_is_refused(mail_app, smtp_server):
    _controller, handler = smtp_server
    app = mail_app()
    pay(app, make_order())
    path = urlsplit(handler.received[0].message["List-Unsubscribe"].strip("<>")).path
    token = path.rsplit("/", 1)[1]
    client = TestClient(Starlette(routes=routes(app)))
    assert client.post(f"/unsubscribe/{token[:-2]}{'AA' if token[-2:] != 'AA' else 'BB'}").status_code == 400
    assert client.post(f"/unsubscribe/{token[:-3]}").status_code == 400
    assert client.get("/unsubscribe/nonsense").status_code == 400
    assert app.store.current_consent("test", "ana@example.com") is None


def test_a_550_recipient_error_fails_the_mail_and_suppresses_the_address_for_all_mail(mail_app, smtp_server):
    _controller, handler = smtp_server
    handler.refuse["gone@example.com"] = "550 5.1.1 <gone@example.com>: user unknown"
    app = mail_app()
    order = make_order(email="gone@example.com", customer=Customer(email="gone@example.com", locale="en"))
    pay(app, order)
    (action,) = mails(app).values()
    assert action.state is ActionState.FAILED
    assert "550" in action.reason and "user unknown" in action.reason
    (entry,) = app.store.suppressions("test", "gone@example.com")
    assert entry.reason is SuppressionReason.BOUNCED

    handler.refuse.clear()
    Dispatcher(app).dispatch(make_event("shipped", order))  # even transactional mail stops
    execute_due(app)
    shipped = next(a for a in mails(app).values() if a.key == "shipped")
    assert shipped.state is ActionState.DROPPED and shipped.reason.startswith("suppressed: bounced gone@example.com")
    assert handler.received == []


def test_a_451_is_transient_the_queue_retries_and_the_mail_goes_out_later(mail_app, smtp_server):
    _controller, handler = smtp_server
    handler.refuse["ana@example.com"] = "451 4.3.0 greylisted, try again later"
    app = mail_app()
    pay(app, make_order())
    (action,) = mails(app).values()
    assert action.state is ActionState.DUE and "451" in action.reason and action.due_at > app.now()
    assert app.store.suppressions("test", "ana@example.com") == []

    handler.refuse.clear()
    app.clock.advance(timedelta(hours=1))
    execute_due(app)
    (action,) = mails(app).values()
    assert action.state is ActionState.DONE and len(handler.received) == 1


def test_a_batch_of_mails_goes_over_one_connection(mail_app, smtp_server):
    _controller, handler = smtp_server
    app = mail_app()
    dispatcher = Dispatcher(app)
    for n in range(4):
        dispatcher.dispatch(make_event("order_paid", make_order(f"30{n}", email=f"c{n}@example.com")))
    execute_due(app)
    assert len(handler.received) == 4
    assert len({r.peer for r in handler.received}) == 1
    relay = app.plugins.channels()["send_email"].relay(app.config.shop("test").mail.smtp)
    assert relay.connections_opened == 1


def test_a_connection_closed_by_the_server_while_idle_is_replaced(mail_app, smtp_server):
    _controller, handler = smtp_server
    app = mail_app()
    pay(app, make_order("401", email="a@example.com"))
    relay = app.plugins.channels()["send_email"].relay(app.config.shop("test").mail.smtp)
    relay._conn.sock.shutdown(socket.SHUT_RDWR)  # what a server's idle timeout looks like from here
    pay(app, make_order("402", email="b@example.com"))
    assert len(handler.received) == 2 and relay.connections_opened == 2
    assert all(a.state is ActionState.DONE for a in mails(app).values())


def test_a_mail_is_sent_once_even_if_its_event_comes_again(mail_app, smtp_server):
    _controller, handler = smtp_server
    app = mail_app()
    order = make_order()
    pay(app, order)
    pay(app, replace(order))
    assert len(handler.received) == 1


def test_the_shops_mail_settings_are_merged_once_for_every_mail(mail_app, smtp_server, monkeypatch):
    import aftercare.app

    _controller, handler = smtp_server
    merges = []
    merge = aftercare.app.shop_mail_settings
    monkeypatch.setattr(aftercare.app, "shop_mail_settings", lambda *args: merges.append(args) or merge(*args))
    app = mail_app()
    for number in ("1001", "1002", "1003"):
        pay(app, make_order(number, email=f"c{number}@example.com"))

    assert len(handler.received) == 3 and all(a.state is ActionState.DONE for a in mails(app).values())
    assert len(merges) == 1  # one shop: [mail] under its [shops.mail] once, not once per check, link and mail
