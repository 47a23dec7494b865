"""The store on SQLite and on PostgreSQL: migrations, dedupe, the outbox, consent."""

import contextlib
import os
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from aftercare.actions import ActionState
from aftercare.clock import ManualClock
from aftercare.context import ActionSink, Context, ShopProfile
from aftercare.migrations import alembic_config, upgrade
from aftercare.models import ConsentState
from aftercare.settings import PluginSettings
from aftercare.store import Store, metadata
from aftercare.testing import START, make_event, make_order

POSTGRES = os.environ.get("AFTERCARE_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def postgres_or_skip():
    engine = sa.create_engine(POSTGRES)
    try:
        with engine.connect():
            pass
    except sa.exc.OperationalError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL must answer in CI at {POSTGRES}: {exc}")
        pytest.skip(f"no PostgreSQL at {POSTGRES}")
    finally:
        engine.dispose()


@contextlib.contextmanager
def postgres_schema(prefix: str = "t") -> Iterator[tuple[str, str]]:
    """A PostgreSQL schema of its own, dropped afterwards: (its name, a database URL that uses it).
    Each test gets one, so tests (and test processes) never see each other's rows."""
    postgres_or_skip()
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES)
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    try:
        yield schema, f"{POSTGRES}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.db'}"
        yield Store(url, ManualClock(START))
        return
    with postgres_schema() as (_, url):
        s = Store(url, ManualClock(START))
        yield s
        s.close()


def requests_for(event, *keys, delay=timedelta(0)):
    sink = ActionSink()
    ctx = Context(event=event, plugin="p", hook=event.kind.hook, shop=ShopProfile("test", "memory"),
                  settings=PluginSettings(), clock=lambda: START, sink=sink)  # fmt: skip
    for key in keys:
        ctx.later(delay).add_order_note(key, key=key)
    return sink.requests


def test_migrated_schema_matches_the_tables_in_code(store):
    store.upgrade()
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_upgrade_is_repeatable_and_keeps_data(store):
    store.upgrade()
    event = make_event("order_paid", make_order())
    with store.transaction() as conn:
        store.add_events(conn, [event])
    store.upgrade()
    assert [e.event for e in store.list_events()] == [event]


def test_events_dedupe_per_shop_and_key(store):
    store.upgrade()
    event = make_event("order_paid", make_order())
    with store.transaction() as conn:
        (first_id, first_new), (again_id, again_new) = store.add_events(conn, [event, event])
    assert first_new and not again_new and first_id == again_id
    with store.transaction() as conn:
        [(_id, new)] = store.add_events(conn, [event])
    assert not new
    assert len(store.list_events()) == 1


def test_actions_dedupe_claim_and_schedule(store):
    store.upgrade()
    event = make_event("order_paid", make_order())
    with store.transaction() as conn:
        assert len(store.add_actions(conn, requests_for(event, "a", "b"))) == 2
        assert store.add_actions(conn, requests_for(event, "a", "b")) == set()
        store.add_actions(conn, requests_for(event, "later", delay=timedelta(days=7)))
    due = store.due_actions(START)
    assert [a.key for a in due] == ["a", "b"]
    assert store.claim_action(due[0].id) and not store.claim_action(due[0].id)
    store.finish_action(due[0].id, ActionState.FAILED, reason="422 Unprocessable: note too long")
    assert store.get_action(due[0].id).reason == "422 Unprocessable: note too long"
    assert store.retry_action(due[0].id)
    assert [a.key for a in store.due_actions(START + timedelta(days=8))] == ["a", "b", "later"]
    assert store.due_actions(START + timedelta(days=8))[2].due_at == START + timedelta(days=7)


def test_finishing_an_action_releases_what_waits_for_it_in_the_same_transaction(store):
    store.upgrade()
    event = make_event("order_paid", make_order())
    coupon, mail, other = requests_for(event, "coupon", "mail", "other")
    mail = replace(mail, depends_on=coupon.idempotency_key)
    other = replace(other, depends_on=coupon.idempotency_key)
    with store.transaction() as conn:
        store.add_actions(conn, [coupon, mail, other])
    ids = {a.key: a.id for a in store.due_actions(START)}
    for key in ("coupon", "mail", "other"):
        assert store.claim_action(ids[key])
    an_hour = START + timedelta(hours=1)
    assert store.wait_for_dependency(ids["mail"], coupon.idempotency_key, an_hour) is ActionState.RUNNING
    store.reschedule_action(ids["other"], an_hour, "quiet hours")  # waits, but not for the coupon
    assert store.finish_action(ids["coupon"], ActionState.DONE) == [ids["mail"]]
    assert store.get_action(ids["mail"]).due_at == START
    assert store.get_action(ids["other"]).due_at == an_hour
    assert store.claim_action(ids["mail"])  # the coupon is done now: no more waiting
    assert store.wait_for_dependency(ids["mail"], coupon.idempotency_key, an_hour) is ActionState.DONE
    assert store.get_action(ids["mail"]).state is ActionState.RUNNING


def test_consent_is_a_history_with_time_and_source(store):
    store.upgrade()
    store.record_consent("test", "Ana@Example.com", ConsentState.SUBSCRIBED, "double opt-in link")
    store.record_consent("test", "ana@example.com", ConsentState.UNSUBSCRIBED, "one-click unsubscribe")
    history = store.consent_history("test", "ANA@example.com")
    assert [(s, src) for s, src, _ in history] == [
        (ConsentState.SUBSCRIBED, "double opt-in link"),
        (ConsentState.UNSUBSCRIBED, "one-click unsubscribe"),
    ]
    assert store.current_consent("test", "ana@example.com") is ConsentState.UNSUBSCRIBED


def test_simultaneous_consent_changes_write_one_history_row(store):
    store.upgrade()
    start = threading.Barrier(20)
    changed = []

    def confirm():
        start.wait()
        changed.append(store.record_consent_change("test", "Ana@Example.com", ConsentState.SUBSCRIBED, "opt-in"))

    threads = [threading.Thread(target=confirm) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(changed) == [False] * 19 + [True]
    assert [s for s, _src, _at in store.consent_history("test", "ana@example.com")] == [ConsentState.SUBSCRIBED]
    assert store.record_consent_change("test", "ana@example.com", ConsentState.UNSUBSCRIBED, "unsubscribe link")
    assert len(store.consent_history("test", "ana@example.com")) == 2


def test_login_attempts_count_atomically_in_windows(store):
    store.upgrade()
    limits = {"name:nora": (2, timedelta(minutes=1)), "address:10.0.0.1": (3, timedelta(minutes=15))}
    start = threading.Barrier(10)
    over = []

    def attempt():
        start.wait()
        over.append(store.count_login_attempt(limits))

    threads = [threading.Thread(target=attempt) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sum(1 for keys in over if not keys) == 2  # exactly the limit passes, however they interleave
    assert sum(1 for keys in over if "address:10.0.0.1" not in keys) == 3
    store.refund_login_attempt(["address:10.0.0.1"], timedelta(minutes=15))
    store._clock.advance(timedelta(minutes=2))  # the name's window has passed, the address's has not
    assert store.count_login_attempt(limits) == ["address:10.0.0.1"]


def test_console_sessions_end_on_logout_removal_and_expiry(store):
    store.upgrade()
    store.add_console_session("a" * 64, "nora", START + timedelta(hours=12))
    store.add_console_session("b" * 64, "nora", START + timedelta(hours=12))
    store.add_console_session("c" * 64, "ops", START + timedelta(hours=1))
    assert store.console_session_user("a" * 64) == "nora"
    assert store.end_console_sessions(session_hash="a" * 64) == 1
    assert store.console_session_user("a" * 64) is None and store.console_session_user("b" * 64) == "nora"
    assert store.end_console_sessions(user_name="nora") == 1
    store._clock.advance(timedelta(hours=2))
    assert store.console_session_user("c" * 64) is None


def test_0009_downgrades_and_upgrades_again(store):
    store.upgrade()
    with store.transaction() as conn:
        command.downgrade(alembic_config(conn), "0007")
        assert not {"login_attempts", "console_sessions"} & set(sa.inspect(conn).get_table_names())
    store.upgrade()
    store.add_console_session("a" * 64, "nora", START + timedelta(hours=1))
    assert store.console_session_user("a" * 64) == "nora"


def test_adapter_state_and_cursors(store):
    store.upgrade()
    state = store.shop_state("test")
    assert state.get("order:1") is None
    state.set("order:1", {"status": "processing", "refunds": [1]})
    state.set("order:1", {"status": "completed", "refunds": [1, 2]})
    assert state.get("order:1") == {"status": "completed", "refunds": [1, 2]}
    assert store.shop_state("other").get("order:1") is None
    store.set_cursor("test", "2026-01-05T09:00:00Z")
    store.set_cursor("test", "2026-01-06T09:00:00Z")
    assert store.get_cursor("test") == "2026-01-06T09:00:00Z"


def test_two_transactions_take_turns_on_a_remembered_order_state(store):
    """Two receivers storing deliveries of one order: the second reads the state once the first
    committed what it derived from it (SQLite: one writer at a time; PostgreSQL: FOR UPDATE)."""
    import threading

    store.upgrade()
    store.shop_state("test").set("order:1", {"status": "processing"})
    other = Store(store.url, ManualClock(START))
    first_read = threading.Event()
    seen = {}

    def second():
        first_read.wait(10)
        with other.transaction():
            state = other.shop_state("test")
            seen["second"] = state.get("order:1")
            state.set("order:1", {"status": "refunded"})

    thread = threading.Thread(target=second)
    thread.start()
    try:
        with store.transaction():
            state = store.shop_state("test")
            seen["first"] = state.get("order:1")
            first_read.set()
            time.sleep(0.3)  # the second transaction tries meanwhile, and waits
            state.set("order:1", {"status": "completed"})
    finally:
        thread.join(15)
        other.close()
    assert seen == {"first": {"status": "processing"}, "second": {"status": "completed"}}
    assert store.shop_state("test").get("order:1") == {"status": "refunded"}


def test_sqlite_runs_in_wal_mode(tmp_path):
    s = Store(f"sqlite:///{tmp_path / 'wal.db'}", ManualClock(START))
    with s.engine.connect() as conn:
        assert conn.execute(sa.text("PRAGMA journal_mode")).scalar() == "wal"
    s.close()


def test_upgrade_from_an_empty_database_to_head_with_alembic(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'm.db'}")
    with engine.begin() as conn:
        upgrade(conn)
        head = ScriptDirectory.from_config(alembic_config(conn)).get_current_head()
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == head
    engine.dispose()


def test_data_survives_an_upgrade_from_the_first_revision(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    with engine.begin() as conn:
        upgrade(conn, "0001")
        conn.execute(
            sa.text(
                "INSERT INTO consent (shop_id, email, state, source, recorded_at) "
                "VALUES ('test', 'ana@example.com', 'subscribed', 'opt-in', '2026-01-05 09:00:00')"
            )
        )
    engine.dispose()
    store = Store(f"sqlite:///{tmp_path / 'old.db'}", ManualClock(START))
    store.upgrade()
    assert store.current_consent("test", "ana@example.com") is ConsentState.SUBSCRIBED
    store.close()


def test_0006_rekeys_shopify_webhook_events_by_transition_as_polling_does(store):
    with store.transaction() as conn:
        upgrade(conn, "0005")
    order = make_order(platform="shopify", platform_id="7")
    shipment_id = order.shipments[0].platform_id
    old = [
        replace(make_event("shipped", order, key="event-id-1"), source="webhook"),
        replace(make_event("delivered", order, key="event-id-2"), source="webhook"),
        replace(make_event("delivered", order, key="webhook-id-3"), source="webhook"),  # the other topic
        replace(make_event("order_paid", order, key="event-id-4"), source="webhook"),
        replace(make_event("order_paid", order, key="order:7:paid"), source="poll"),  # sync saw it first
        replace(make_event("order_paid", make_order(), key="memory-1"), source="webhook"),  # not Shopify
    ]
    with store.transaction() as conn:
        store.add_events(conn, old)
    store.upgrade()

    keys = [e.event.dedupe_key for e in sorted(store.list_events(), key=lambda e: e.id)]
    assert keys == [
        f"fulfillment:{shipment_id}:shipped",
        f"fulfillment:{shipment_id}:delivered",
        "webhook-id-3",  # its transition is stored already: the duplicate keeps its key
        "event-id-4",
        "order:7:paid",
        "memory-1",
    ]
    # A retry of a delivery stored before the upgrade now finds its event.
    retry = replace(make_event("shipped", order, key=f"fulfillment:{shipment_id}:shipped"), source="webhook")
    with store.transaction() as conn:
        [(_id, new)] = store.add_events(conn, [retry])
    assert not new


def test_an_action_running_when_0007_is_applied_keeps_its_claim_for_the_default_lease(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    with engine.begin() as conn:
        upgrade(conn, "0005")
        conn.execute(
            sa.text(
                "INSERT INTO actions (idempotency_key, kind, shop_id, plugin, order_id, key, payload, due_at, state,"
                " created_at, updated_at) VALUES ('k', 'add_order_note', 'test', 'p', 'o', 'k', '{}',"
                " '2026-01-05 09:00:00', 'running', '2026-01-05 09:00:00', '2026-01-05 09:00:00')"
            )
        )
    engine.dispose()
    store = Store(f"sqlite:///{tmp_path / 'old.db'}", ManualClock(START))
    store.upgrade()
    with store.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT claimed_until FROM actions")).scalar() == "2026-01-05 09:10:00.000000"
    assert store.release_stale_actions() == 1  # long past: its worker is gone
    store.close()
