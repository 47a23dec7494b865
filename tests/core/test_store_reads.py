"""What the console and the demo read from the store, its console accounts, its schema check and
the one way to join a transaction; on SQLite and on PostgreSQL (the ``store`` fixture runs both)."""

from dataclasses import replace
from datetime import timedelta

import pytest
import sqlalchemy as sa

from aftercare.actions import ActionState
from aftercare.store import (
    DATABASE_ERRORS,
    DATABASE_UNAVAILABLE,
    ConsoleUser,
    HookRun,
    Store,
    actions,
    database_driver,
    redacted_url,
)
from aftercare.testing import START, make_event, make_order

from .test_store import requests_for, store  # noqa: F401  (the fixture: SQLite and PostgreSQL)


def requests_of(shop_id, event, *keys, delay=timedelta(0)):
    """``requests_for`` (whose actions are all shop "test"'s) for another shop."""
    return [replace(r, shop_id=shop_id) for r in requests_for(event, *keys, delay=delay)]


def add(store, *events):  # noqa: F811  (the fixture's name)
    with store.transaction() as conn:
        return [event_id for event_id, _new in store.add_events(conn, list(events))]


def test_has_schema_is_false_before_the_first_migration(store):  # noqa: F811
    assert not store.has_schema()
    store.upgrade()
    assert store.has_schema()


def test_count_events_of_a_shop_since_a_time_or_in_a_state(store):  # noqa: F811
    store.upgrade()
    add(store, make_event("order_paid", make_order("1")), make_event("order_paid", make_order("9", shop_id="other")))
    store._clock.advance(timedelta(hours=2))
    [later] = add(store, make_event("shipped", make_order("1")))
    assert store.count_events("test") == 2 and store.count_events("other") == 1
    assert store.count_events("test", since=START + timedelta(hours=1)) == 1
    assert store.count_events("test", since=START + timedelta(hours=3)) == 0
    store.event_dispatch_failed(later, "gone", None)  # not claimed: nothing changes
    assert store.count_events("test", state="failed") == 0
    assert store.claim_events([later]) == [later]
    store.event_dispatch_failed(later, "gone", None)
    assert store.count_events("test", state="failed") == 1
    assert store.count_events("test", state="failed", since=START + timedelta(hours=3)) == 0
    assert store.count_events("nobody") == 0


def test_count_due_actions_counts_a_shops_due_ones_up_to_now(store):  # noqa: F811
    store.upgrade()
    event = make_event("order_paid", make_order())
    other = make_event("order_paid", make_order("2", shop_id="other"))
    with store.transaction() as conn:
        store.add_actions(conn, requests_for(event, "now-1", "now-2"))
        store.add_actions(conn, requests_for(event, "later", delay=timedelta(days=2)))
        store.add_actions(conn, requests_of("other", other, "elsewhere"))
    assert store.count_due_actions("test", START) == 2
    assert store.count_due_actions("test", START + timedelta(days=3)) == 3
    assert store.count_due_actions("other", START) == 1
    first = store.due_actions(START, shop_id="test")[0]
    assert store.claim_action(first.id)  # running: no longer due
    assert store.count_due_actions("test", START) == 1


def test_last_event_per_topic_names_the_source_of_the_latest_newest_first(store):  # noqa: F811
    store.upgrade()
    order = make_order()
    paid = replace(make_event("order_paid", order), topic="orders/paid", source="webhook")
    add(store, paid)
    store._clock.advance(timedelta(hours=1))
    add(store, replace(make_event("shipped", order), topic="fulfillments/create", source="webhook"))
    store._clock.advance(timedelta(hours=1))
    add(store, replace(paid, dedupe_key="poll:paid", source="poll"))
    add(store, replace(make_event("order_paid", make_order(shop_id="other")), topic="orders/paid", source="page"))
    assert store.last_event_per_topic("test") == [
        ("orders/paid", "poll", START + timedelta(hours=2)),
        ("fulfillments/create", "webhook", START + timedelta(hours=1)),
    ]
    assert store.last_event_per_topic("other") == [("orders/paid", "page", START + timedelta(hours=2))]
    assert all(at.tzinfo is not None for _t, _s, at in store.last_event_per_topic("test"))
    assert store.last_event_per_topic("nobody") == []


def test_shop_cursors(store):  # noqa: F811
    store.upgrade()
    store.set_cursor("test", "2026-01-05T09:00:00Z")
    store.set_cursor("test", "abc", name="retention")
    store.set_cursor("other", "zzz")
    assert sorted(store.shop_cursors("test")) == [("poll", "2026-01-05T09:00:00Z", START), ("retention", "abc", START)]
    assert store.shop_cursors("nobody") == []


def test_an_orders_events_hook_runs_and_actions_oldest_first(store):  # noqa: F811
    store.upgrade()
    order = make_order()
    paid, shipped = make_event("order_paid", order), make_event("shipped", order)
    first, second, _elsewhere = add(store, paid, shipped, make_event("order_paid", make_order("2")))
    with store.transaction() as conn:
        store.record_hook_runs(conn, {first: [HookRun("coupon", "on_paid", "ok", "", 1, 2.5),
                                              HookRun("review", "on_paid", "failed", "KeyError: x")],
                                      second: []})  # fmt: skip
        store.add_actions(conn, requests_for(paid, "b", "a"))
    assert [e.id for e in store.order_events("test", "order-1001")] == [first, second]
    assert [e.event for e in store.order_events("test", "order-1001")] == [paid, shipped]
    assert store.order_events("other", "order-1001") == []
    runs = store.hook_runs_of_events([first, second])
    assert runs == {first: [HookRun("coupon", "on_paid", "ok", "", 1, 2.5),
                            HookRun("review", "on_paid", "failed", "KeyError: x", 0, 0.0)]}  # fmt: skip
    assert store.hook_runs_of_events([]) == {}
    assert [a.key for a in store.order_actions("test", "order-1001")] == ["b", "a"]
    assert store.order_actions("test", "order-2") == [] and store.order_actions("other", "order-1001") == []


def test_actions_page_filters_and_pages_newest_first_by_id(store):  # noqa: F811
    store.upgrade()
    one, two = make_event("order_paid", make_order("1")), make_event("order_paid", make_order("2"))
    with store.transaction() as conn:
        store.add_actions(conn, requests_for(one, "a1", "a2"))
        store.add_actions(conn, requests_for(two, "b1"))
        store.add_actions(conn, requests_of("other", make_event("order_paid", make_order("3", shop_id="other")), "c1"))
    store._clock.advance(timedelta(days=1))
    with store.transaction() as conn:
        store.add_actions(conn, requests_for(two, "b2"))
    keys = lambda records: [a.key for a in records]  # noqa: E731
    assert keys(store.actions_page(["test"], limit=10)) == ["b2", "b1", "a2", "a1"]
    assert keys(store.actions_page(["test", "other"], limit=10)) == ["b2", "c1", "b1", "a2", "a1"]
    assert store.actions_page([], limit=10) == []
    page = store.actions_page(["test", "other"], limit=2)
    assert keys(page) == ["b2", "c1"]
    assert keys(store.actions_page(["test", "other"], before=page[-1].id, limit=2)) == ["b1", "a2"]
    assert keys(store.actions_page(["test"], order_id="order-2", limit=10)) == ["b2", "b1"]
    assert keys(store.actions_page(["test"], plugin="p", limit=10)) == ["b2", "b1", "a2", "a1"]
    assert store.actions_page(["test"], plugin="q", limit=10) == []
    a1 = next(a for a in store.actions_page(["test"], limit=10) if a.key == "a1")
    assert store.cancel_action(a1.id, "by hand")
    assert keys(store.actions_page(["test"], state=ActionState.DROPPED.value, limit=10)) == ["a1"]
    day = START + timedelta(days=1)
    assert keys(store.actions_page(["test"], since=day, limit=10)) == ["b2"]
    assert keys(store.actions_page(["test"], until=day, limit=10)) == ["b1", "a2", "a1"]
    assert keys(store.actions_page(["test"], since=START, until=day, order_id="order-1", limit=10)) == ["a2", "a1"]


def test_the_demos_counts_by_shop_and_kind_and_by_plugin_state_and_reason(store):  # noqa: F811
    store.upgrade()
    one, two = make_order("1"), make_order("2")
    elsewhere = make_event("order_paid", make_order("3", shop_id="x"))
    again = replace(make_event("shipped", one), dedupe_key="again")
    add(
        store,
        make_event("order_paid", one),
        make_event("order_paid", two),
        make_event("shipped", one),
        again,
        elsewhere,
    )
    assert store.count_events_by_shop_and_kind() == {
        ("test", "order_paid"): (2, 2),
        ("test", "shipped"): (2, 1),
        ("x", "order_paid"): (1, 1),
    }
    with store.transaction() as conn:
        store.add_actions(conn, requests_for(make_event("order_paid", one), "a", "b", "c"))
    records = {a.key: a for a in store.actions_page(["test"], limit=10)}
    store.cancel_action(records["a"].id, "cap reached")
    store.cancel_action(records["b"].id, "cap reached")
    assert store.count_actions_by_plugin_state_and_reason() == {("p", "dropped", "cap reached"): 2, ("p", "due", ""): 1}


def test_console_users_saved_updated_listed_and_removed(store):  # noqa: F811
    store.upgrade()
    assert store.console_user("nora") is None and store.list_console_users() == []
    assert store.save_console_user("nora", "hash-1", ("north", "south"), START)
    assert store.save_console_user("agency", "hash-2", ("all",), START)
    assert store.console_user("nora") == ConsoleUser("nora", "hash-1", ("north", "south"), START)
    later = START + timedelta(days=1)
    assert not store.save_console_user("nora", "hash-3", ("north",), later)  # not new: hash and shops change
    assert store.console_user("nora") == ConsoleUser("nora", "hash-3", ("north",), START)
    assert [u.name for u in store.list_console_users()] == ["agency", "nora"]
    assert store.remove_console_user("nora") and not store.remove_console_user("nora")
    assert store.console_user("nora") is None


def test_write_cursor_and_adapter_state_commit_or_roll_back_with_the_transaction(store):  # noqa: F811
    store.upgrade()
    state = store.shop_state("test")
    with store.transaction() as conn:
        store.write_cursor(conn, "test", "page-1")
        state.set("order:1", "processing")  # joins it: no transaction of its own (SQLite would wait for itself)
    assert store.get_cursor("test") == "page-1" and state.get("order:1") == "processing"
    with pytest.raises(RuntimeError), store.transaction() as conn:
        store.write_cursor(conn, "test", "page-2")
        state.set("order:1", "completed")
        assert state.get("order:1") == "completed"  # read in the same transaction
        raise RuntimeError("the events could not be stored")
    assert store.get_cursor("test") == "page-1" and state.get("order:1") == "processing"


def test_adapter_state_of_another_store_does_not_join_this_ones_transaction(store, tmp_path):  # noqa: F811
    store.upgrade()
    other = Store(f"sqlite:///{tmp_path / 'other.db'}", store._clock)
    other.upgrade()
    with pytest.raises(RuntimeError), store.transaction():
        other.shop_state("test").set("k", "kept")
        raise RuntimeError("this store's transaction rolls back")
    assert other.shop_state("test").get("k") == "kept"
    other.close()


def test_database_urls_driver_and_redaction():
    assert database_driver("sqlite:///aftercare.db") is None
    assert database_driver("postgresql+psycopg://u:p@db/aftercare") == "psycopg"
    assert database_driver("postgresql+nosuchdriver://db/x") == "nosuchdriver"
    assert database_driver("not a url") is None
    assert redacted_url("postgresql+psycopg://user:secret@db:5432/aftercare") == (
        "postgresql+psycopg://user:***@db:5432/aftercare"
    )
    assert redacted_url("redis://:secret@127.0.0.1:6379/0") == "redis://:***@127.0.0.1:6379/0"
    assert redacted_url("not a url:secret@host") == "host"


def test_database_error_tuples(tmp_path):
    missing = Store(f"sqlite:///{tmp_path / 'x.db'}", None)
    with pytest.raises(DATABASE_UNAVAILABLE), missing.engine.connect() as conn:
        conn.execute(sa.select(actions.c.id))  # no such table: an OperationalError
    with pytest.raises(DATABASE_ERRORS), missing.engine.connect() as conn:
        conn.execute(sa.text("SELECT nonsense FROM"))
    missing.close()


def test_every_action_oldest_first_and_the_actions_of_some_events(store):  # noqa: F811
    store.upgrade()
    paid, shipped = make_event("order_paid", make_order("1")), make_event("shipped", make_order("2"))
    with store.transaction() as conn:
        store.add_actions(conn, requests_for(paid, "a", "b") + requests_for(shipped, "c"))
        store.add_actions(conn, requests_of("other", paid, "d"))
    assert [a.key for a in store.every_action()] == ["a", "b", "c", "d"]
    assert sorted(a.key for a in store.actions_of_events("test", [paid.dedupe_key])) == ["a", "b"]
    assert sorted(a.key for a in store.actions_of_events("test", {paid.dedupe_key, shipped.dedupe_key})) == [
        "a",
        "b",
        "c",
    ]
    assert store.actions_of_events("test", []) == []


# -- the console's search and the timeline's survey answers (issue #20) -----------------------


def test_orders_numbered_finds_a_number_with_or_without_its_hash_in_these_shops_only(store):  # noqa: F811
    from dataclasses import replace as changed

    store.upgrade()
    shopify = changed(make_order("1", shop_id="a"), number="#1005", platform_id="5001")
    woo = changed(make_order("2", shop_id="b"), number="1005", platform_id="77")
    other = changed(make_order("3", shop_id="a"), number="10050", platform_id="5002")
    tracking = changed(make_order("4", shop_id="a"), number="9", platform_id="5003")  # "1005" elsewhere in it
    tracking = changed(tracking, shipments=(changed(tracking.shipments[0], tracking_number="1005"),))
    add(store, *(make_event("order_paid", o, key=f"k-{o.platform_id}") for o in (shopify, woo, other, tracking)))
    assert store.orders_numbered(["a", "b"], "#1005") == [("b", "77"), ("a", "5001")]
    assert store.orders_numbered(["a", "b"], " 1005 ") == [("b", "77"), ("a", "5001")]
    assert store.orders_numbered(["a"], "1005") == [("a", "5001")]
    assert store.orders_numbered(["b"], "10050") == []
    assert store.orders_numbered(["a"], "1_05") == [] and store.orders_numbered(["a"], "10%") == []
    assert store.orders_numbered([], "1005") == []


def test_orders_of_customer_by_normalised_address_newest_first_in_these_shops_only(store):  # noqa: F811
    store.upgrade()
    first = make_order("1", shop_id="a", email="Ana@Example.com")
    second = make_order("2", shop_id="a", email="ana@example.com")
    elsewhere = make_order("3", shop_id="b", email="ana@example.com")
    batch = [make_event("order_paid", first, occurred_at=START), make_event("order_paid", second,
             occurred_at=START + timedelta(days=2)), make_event("order_paid", elsewhere)]  # fmt: skip
    with store.transaction() as conn:
        store.add_events(conn, batch)
        store.record_customer_events(conn, batch)
    assert store.orders_of_customer(["a"], " ANA@example.com") == [("a", "order-2"), ("a", "order-1")]
    assert sorted(store.orders_of_customer(["a", "b"], "ana@example.com")) == [
        ("a", "order-1"), ("a", "order-2"), ("b", "order-3")]  # fmt: skip
    assert store.orders_of_customer(["b"], "bob@example.com") == []


def test_order_survey_answers_are_the_answers_of_that_order(store):  # noqa: F811
    from aftercare.models import SurveyAnswer, SurveyKind

    store.upgrade()
    with store.transaction() as conn:
        given = (("o1", SurveyKind.CSAT, 2), ("o1", SurveyKind.NPS, 9), ("o2", SurveyKind.CSAT, 5))
        for order_id, kind, score in given:
            store.record_survey_answer(conn, shop_id="a", order_id=order_id, email="ana@example.com",
                                       answer=SurveyAnswer(kind, score, START), source="page")  # fmt: skip
    found = store.order_survey_answers("a", "o1")
    assert [(a.answer.kind, a.answer.score) for a in found] == [(SurveyKind.CSAT, 2), (SurveyKind.NPS, 9)]
    assert store.order_survey_answers("b", "o1") == []
