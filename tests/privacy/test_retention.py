"""Retention: what is older than the limit goes (in batches), nothing newer, with the app's clock."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from aftercare.actions import ActionState
from aftercare.models import ConsentState, SurveyAnswer, SurveyKind
from aftercare.privacy import apply_retention
from aftercare.store import customer_history, hook_runs
from aftercare.testing import make_event, make_order

from ..core.test_store import requests_for


def _order_with_records(store, number: str, *, done: bool, delay=timedelta(0)) -> None:
    order = make_order(number, email=f"c{number}@example.com")
    event = make_event("order_paid", order, occurred_at=store._clock.now())
    with store.transaction() as conn:
        [(event_id, _new)] = store.add_events(conn, [event])
        store.record_customer_events(conn, [event])
        store.add_actions(conn, requests_for(event, f"note-{number}", delay=delay))
        store.record_hook_runs(conn, {event_id: []})
        answer = SurveyAnswer(SurveyKind.CSAT, 5, store._clock.now(), comment=f"comment {number}")
        store.record_survey_answer(conn, shop_id="test", order_id=event.order.platform_id,
                                   email=f"c{number}@example.com", answer=answer, source="test")  # fmt: skip
        store.keep_rejected_delivery(conn, shop_id="test", delivery_id=f"bad-{number}", topic="t", error="e",
                                     body=b"{}")  # fmt: skip
    store.record_consent("test", f"c{number}@example.com", ConsentState.SUBSCRIBED, "test")
    if done:
        [action] = [a for a in store.list_actions(limit=100) if a.key == f"note-{number}"]
        assert store.claim_action(action.id)
        store.finish_action(action.id, ActionState.DONE, attempted=True)


def test_retention_deletes_what_is_older_than_the_limit_and_nothing_newer(store):
    clock = store._clock
    _order_with_records(store, "1", done=True)  # old, done
    _order_with_records(store, "2", done=False, delay=timedelta(days=400))  # old, but its action is still due
    clock.advance(timedelta(days=30))
    _order_with_records(store, "3", done=True)  # new
    limit = clock.now() - timedelta(days=10)

    counts = store.delete_older_than("test", limit, batch=1)  # one row a transaction: the batches loop

    assert counts["events"] == 1 and counts["actions"] == 1 and counts["customer_history"] == 2
    assert counts["hook_runs"] == 0  # the events had none: record_hook_runs([]) only marks them dispatched
    assert counts["rejected_deliveries"] == 2 and counts["survey_answers"] == 2
    assert sorted(e.event.order.platform_id for e in store.list_events()) == ["order-2", "order-3"]
    assert sorted(a.key for a in store.list_actions()) == ["note-2", "note-3"]  # the due one stays
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(customer_history)).scalar() == 1
        assert conn.execute(sa.select(sa.func.count()).select_from(hook_runs)).scalar() == 0
    answers = {a.order_id: (a.email, a.answer.score, a.answer.comment) for a in store.survey_answers("test")}
    assert answers == {"order-1": ("", 5, ""), "order-2": ("", 5, ""), "order-3": ("c3@example.com", 5, "comment 3")}
    assert store.current_consent("test", "c1@example.com") is ConsentState.SUBSCRIBED  # the proof stays
    assert [r["delivery_id"] for r in store.rejected()] == ["bad-3"]
    again = store.delete_older_than("test", limit)
    assert again == {"events": 0, "actions": 0, "customer_history": 0, "rejected_deliveries": 0, "survey_answers": 0}


def test_the_sweep_applies_each_shops_retention_days_at_most_hourly(aftercare_app):
    app = aftercare_app(shop={"retention_days": 20})
    _order_with_records(app.store, "1", done=True)
    app.clock.advance(timedelta(days=19, hours=23, minutes=30))
    assert apply_retention(app) == {}  # not older than 20 days yet
    assert len(app.store.list_events()) == 1
    app.clock.advance(timedelta(minutes=40))
    assert apply_retention(app) == {}  # older now, but it ran less than an hour ago
    app.clock.advance(timedelta(minutes=30))
    assert apply_retention(app)["test"]["events"] == 1
    assert app.store.list_events() == []


def test_retention_days_zero_keeps_everything(aftercare_app):
    app = aftercare_app(shop={"retention_days": 0})
    _order_with_records(app.store, "1", done=True)
    app.clock.advance(timedelta(days=5000))
    assert apply_retention(app, force=True) == {}
    assert len(app.store.list_events()) == 1
