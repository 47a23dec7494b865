"""Store.forget_customer and Store.customer_records on SQLite and PostgreSQL: after an erasure no
row of any table holds the customer's email (each column cast to text), what others need stays,
and a later event about them is dropped at ingest."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import sqlalchemy as sa

from aftercare.actions import ActionState
from aftercare.models import Address, ConsentState, SurveyAnswer, SurveyKind
from aftercare.store import ERASED_REASON, Store, customer_hash
from aftercare.testing import START, make_event, make_order

from ..core.test_store import requests_for

KEY = b"k" * 32
EMAIL = "Ana.Erase@Example.com"
PHONE = "+34 612 398765"


def _order(number: str, email: str):
    """The erased customer's orders carry these name, street and phone; the other customer's others."""
    erased = email.lower() == EMAIL.lower()
    last, street, phone = ("Erasmus", "Calle Mayor 5", PHONE) if erased else ("Keeper", "Gran Via 1", "+34 600 000001")
    address = Address(first_name="Ana", last_name=last, address1=street, city="Madrid", phone=phone)
    order = make_order(number, email=email, shipping_address=address)
    return replace(order, customer=replace(order.customer, last_name=last))


def _with_records(store: Store, email: str, number: str) -> None:
    """An event, a done and a due action, history, consent, a survey answer, a suppression and a
    rejected delivery, all naming ``email``."""
    event = make_event("order_paid", _order(number, email))
    to = f"{event.order.customer.name} <{email}>"
    requests = [replace(r, customer_email=email.lower(), payload={**r.payload, "to": to})
                for r in requests_for(event, f"note-{number}", f"later-{number}", delay=timedelta(days=7))]  # fmt: skip
    with store.transaction() as conn:
        [(event_id, _new)] = store.add_events(conn, [event])
        store.record_customer_events(conn, [event])
        store.add_actions(conn, requests)
        store.keep_rejected_delivery(conn, shop_id=event.shop_id, delivery_id=f"bad-{number}", topic="orders/paid",
                                     error="unreadable", body=f'{{"email": "{email}"}}'.encode())  # fmt: skip
        answer = SurveyAnswer(SurveyKind.CSAT, 4, START, comment=f"{number}: Ana here, all good")
        store.record_survey_answer(conn, shop_id=event.shop_id, order_id=event.order.platform_id, email=email,
                                   answer=answer, source="test")  # fmt: skip
        suppression = sa.text("INSERT INTO mail_suppressions (shop_id, email, reason, detail, created_at)"
                              " VALUES (:s, :e, 'bounced', '', :t)")  # fmt: skip
        conn.execute(suppression, {"s": event.shop_id, "e": email.lower(), "t": START})
    store.record_consent(event.shop_id, email, ConsentState.SUBSCRIBED, "test")
    first = next(a for a in store.list_actions(limit=100) if a.key == f"note-{number}")
    assert store.claim_action(first.id)
    store.finish_action(first.id, ActionState.DONE, result={"message_id": "<m@x>"}, attempted=True)


def _rows_mentioning(store: Store, term: str) -> list[tuple[str, str]]:
    found = []
    with store.engine.connect() as conn:
        for table in sa.inspect(conn).get_table_names():
            for column in sa.inspect(conn).get_columns(table):
                quoted = f'"{column["name"]}"'
                text = f"CAST({quoted} AS TEXT)" if conn.dialect.name == "postgresql" else quoted
                if column["type"].__class__.__name__ in ("BLOB", "BYTEA", "LargeBinary"):
                    text = (
                        f"convert_from({quoted}, 'UTF8')"
                        if conn.dialect.name == "postgresql"
                        else f"CAST({quoted} AS TEXT)"
                    )
                query = sa.text(f'SELECT count(*) FROM "{table}" WHERE lower({text}) LIKE :term')
                if conn.execute(query, {"term": f"%{term.lower()}%"}).scalar():
                    found.append((table, column["name"]))
    return sorted(found)  # PostgreSQL lists its tables in no fixed order


def test_forget_leaves_no_row_naming_the_customer(store):
    _with_records(store, EMAIL, "1001")
    _with_records(store, "keep@example.com", "2002")
    assert {t for t, _c in _rows_mentioning(store, EMAIL)} >= {"events", "actions", "consent", "customer_history",
                                                               "survey_answers", "mail_suppressions",
                                                               "rejected_deliveries"}  # fmt: skip
    kept_before = _rows_mentioning(store, "keep@example.com")

    report = store.forget_customer(None, EMAIL, KEY)

    assert _rows_mentioning(store, EMAIL) == []
    for term in ("Erasmus", PHONE, "Calle Mayor", "1001: Ana here"):
        assert _rows_mentioning(store, term) == [], term
    assert report.events == 1 and report.actions == 2 and report.dropped == 1 and report.consent == 1
    assert report.customer_history == 1 and report.survey_answers == 1 and report.suppressions == 1
    assert report.rejected_deliveries == 1
    assert _rows_mentioning(store, "keep@example.com") == kept_before  # the other customer keeps everything
    dropped = [a for a in store.list_actions(limit=100) if a.key == "later-1001"]
    assert [(a.state, a.reason) for a in dropped] == [(ActionState.DROPPED, ERASED_REASON)]
    done = [a for a in store.list_actions(limit=100) if a.key == "note-1001"]
    assert [a.state for a in done] == [ActionState.DONE]  # kept, without the person, for the report
    [answer] = [a for a in store.survey_answers("test") if a.order_id == "order-1001"]
    assert (answer.email, answer.answer.score, answer.answer.comment) == ("", 4, "")


def test_a_later_event_about_an_erased_customer_is_dropped_at_ingest(store):
    store.erasure_key = KEY
    store.forget_customer("test", EMAIL, KEY)
    assert store.erased("test", EMAIL.lower(), KEY)
    later = make_event("order_paid", _order("3003", EMAIL.upper()))
    other = make_event("order_paid", _order("4004", "someone@example.com"))
    with store.transaction() as conn:
        result = store.add_events(conn, [later, other])
    assert result[0] == (0, False) and result[1][1] is True
    assert [e.event.order.platform_id for e in store.list_events()] == ["order-4004"]
    with store.engine.connect() as conn:
        hashes = [row.email_hash for row in conn.execute(sa.text("SELECT email_hash FROM erasures"))]
    assert hashes == [customer_hash(KEY, EMAIL)]


def test_customer_records_lists_every_record_of_the_customer(store):
    _with_records(store, EMAIL, "1001")
    _with_records(store, "keep@example.com", "2002")
    records = store.customer_records(None, EMAIL)
    counts = {name: len(rows) for name, rows in records.items()}
    assert counts == {"events": 1, "hook_runs": 0, "actions": 2, "customer_history": 1, "survey_answers": 1,
                      "consent": 1, "suppressions": 1, "rejected_deliveries": 1}  # fmt: skip
    assert records["events"][0]["order_id"] == "order-1001"
    assert records["survey_answers"][0]["comment"] == "1001: Ana here, all good"
    assert "keep@example.com" not in repr(records)


def test_a_customer_erased_before_a_key_rotation_is_still_dropped(store):
    store.forget_customer("test", EMAIL, KEY)
    store.erasure_key, store.previous_erasure_keys = b"n" * 32, (KEY,)  # secret_key rotated, the old one kept
    with store.transaction() as conn:
        assert store.add_events(conn, [make_event("order_paid", _order("5005", EMAIL))]) == [(0, False)]
    store.previous_erasure_keys = ()  # the old key dropped: no longer recognised
    with store.transaction() as conn:
        [(_id, new)] = store.add_events(conn, [make_event("order_paid", _order("5005", EMAIL))])
    assert new


def _order_of_customer(number: str, email: str, customer_id: str):
    order = make_order(number, email=email)
    return replace(order, customer=replace(order.customer, platform_id=customer_id))


def test_customer_emails_finds_the_customer_by_platform_id_or_orders_and_not_once_erased(store):
    shop = make_order().shop_id
    orders = [
        _order_of_customer("1001", EMAIL, "17"),
        _order_of_customer("1002", "ana.new@example.com", "17"),  # the same customer, another email
        _order_of_customer("1017", "other@example.com", "1017"),  # "17" inside another id
        _order_of_customer("1003", "guest@example.com", ""),
    ]
    with store.transaction() as conn:
        store.add_events(conn, [make_event("order_paid", order) for order in orders])

    assert store.customer_emails(shop, customer_id="17") == [EMAIL.lower(), "ana.new@example.com"]
    assert store.customer_emails(shop, order_ids=["order-1003"]) == ["guest@example.com"]
    assert store.customer_emails(shop, customer_id="999", order_ids=["order-4040"]) == []
    assert store.customer_emails("another-shop", customer_id="17") == []
    assert store.customer_emails(shop) == []

    store.forget_customer(shop, EMAIL, KEY)
    assert store.customer_emails(shop, customer_id="17", order_ids=["order-1001"]) == ["ana.new@example.com"]
