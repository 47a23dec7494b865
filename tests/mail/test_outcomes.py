"""An action's outcome survives the store's blips, and a mail the relay took is never sent again.

Real PostgreSQL (connections terminated with ``pg_terminate_backend``, or
made unreachable by shutting a TCP door the app's connections go through),
real SQLite ("database is locked" from a second connection), a real aiosmtpd
sink on 127.0.0.1 that drops the app's connections right after it accepted a
message, and a raw asyncio relay that closes (or falls silent) after DATA.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from alembic import command

from aftercare import hookimpl
from aftercare.actions import ActionState
from aftercare.app import App
from aftercare.clock import ManualClock
from aftercare.config import Config, ShopConfig
from aftercare.dispatch import Dispatcher, execute_action, execute_due
from aftercare.mail.transports import UNCONFIRMED_CLOSED
from aftercare.migrations import alembic_config
from aftercare.plugin_manager import PluginManager
from aftercare.store import sent_marks, transient_database_error
from aftercare.testing import START, TEST_SHOP, TcpProxy, make_event, make_order, memory_platform
from aftercare.worker import Worker
from tests.core.test_store import POSTGRES, postgres_or_skip, store  # noqa: F401  (store: a fixture)
from tests.mail.conftest import SENDER, Shopmail, SinkHandler, free_port


def sent_keys(handler) -> Counter:
    return Counter(r.message["X-Aftercare-Key"] for r in handler.received)


def mails(app):
    return [a for a in app.store.list_actions(limit=1000) if a.kind.value == "send_email"]


def pay(app, *numbers):
    """An order paid for each number: one marketing mail each (Shopmail)."""
    for n in numbers:
        order = make_order(str(n), email=f"buyer{n}@example.com")
        Dispatcher(app).dispatch(make_event("order_paid", order))


@dataclass
class DroppingSink(SinkHandler):
    """Keeps every message, then (the message accepted, its 250 not yet sent) runs ``after_accept``."""

    after_accept: Callable[[], None] = field(default=lambda: None)

    async def handle_DATA(self, server, session, envelope):
        reply = await super().handle_DATA(server, session, envelope)
        self.after_accept()
        return reply


@pytest.fixture
def sink():
    handler = DroppingSink()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller.port, handler
    finally:
        controller.stop()


@dataclass
class Postgres:
    """One test's schema, the application_name that marks the app's connections, and the door."""

    schema: str
    name: str
    admin: sa.Engine
    gate: TcpProxy

    def url(self, *, through_gate: bool = True) -> str:
        url = sa.make_url(POSTGRES)
        if through_gate:
            url = url.set(host="127.0.0.1", port=self.gate.port)
        url = url.update_query_dict({"application_name": self.name, "options": f"-csearch_path={self.schema}"})
        return url.render_as_string(hide_password=False)

    def drop_app_connections(self) -> int:
        """Terminate every connection of the app's (what a PostgreSQL restart or a failover does)."""
        query = sa.text(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE application_name = :name AND pid <> pg_backend_pid()"
        )
        with self.admin.connect() as conn:
            return conn.execute(query, {"name": self.name}).scalar_one()

    def action_row(self, action_id: int):
        """The action as the database holds it, read past the app (and its door)."""
        with self.admin.connect() as conn:
            conn.execute(sa.text(f"SET search_path = {self.schema}"))
            return conn.execute(sa.text("SELECT * FROM actions WHERE id = :id"), {"id": action_id}).one()


@pytest.fixture
def postgres():
    postgres_or_skip()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES)
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    target = sa.make_url(POSTGRES)
    gate = TcpProxy((target.host or "127.0.0.1", target.port or 5432)).start()
    try:
        yield Postgres(schema, f"aftercare-{schema}", admin, gate)
    finally:
        gate.stop_accepting()
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.fixture
def make_app(tmp_path):
    """``make_app(database, smtp_port, *plugins)``: an App on that database, mailing that relay."""
    apps: list[App] = []

    def make(database: str, smtp_port: int, *plugins: object, timeout: float = 5) -> App:
        smtp = {"host": "127.0.0.1", "port": smtp_port, "security": "none", "timeout": timeout}
        shop = ShopConfig(id=TEST_SHOP, platform="memory", webhook_secret="test-secret", production=True,
                          sender=SENDER, name="Tienda Ñandú", mail={"transport": "smtp", "smtp": smtp})  # fmt: skip
        config = Config(database=database, queue=f"sqlite:///{tmp_path / f'queue-{len(apps)}.db'}",
                        shops=[shop], base_dir=tmp_path)  # fmt: skip
        extra = [("memory-platform", memory_platform)] + [(p.name, p) for p in plugins or (Shopmail(),)]
        app = App(config, clock=ManualClock(START), plugins=PluginManager.load(entry_points=False, extra=extra))
        app.store.upgrade()
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.plugins.channels()["send_email"].close()
        app.close()


# -- one place decides what is transient ----------------------------------------


def test_sqlite_errors_that_pass_are_transient_and_programming_errors_are_not(tmp_path):
    path = tmp_path / "locked.db"
    engine = sa.create_engine(f"sqlite:///{path}", connect_args={"timeout": 0})
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
        conn.execute(sa.text("INSERT INTO t VALUES (1)"))
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(sa.exc.OperationalError, match="database is locked") as locked, engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO t VALUES (2)"))
    finally:
        holder.rollback()
        holder.close()
    with pytest.raises(sa.exc.OperationalError, match="no such table") as missing, engine.connect() as conn:
        conn.execute(sa.text("SELECT * FROM nowhere"))
    with pytest.raises(sa.exc.IntegrityError) as taken, engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO t VALUES (1)"))
    engine.dispose()
    assert transient_database_error(locked.value)
    assert not transient_database_error(missing.value)  # an OperationalError in sqlite3, a bug in fact
    assert not transient_database_error(taken.value)
    assert not transient_database_error(ValueError("not a database error"))


def test_postgres_disconnects_and_lock_timeouts_are_transient_and_programming_errors_are_not(postgres):
    engine = sa.create_engine(postgres.url(through_gate=False))
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
        conn.execute(sa.text("INSERT INTO t VALUES (1)"))
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT 1"))
        postgres.drop_app_connections()
        with pytest.raises(sa.exc.OperationalError) as dropped:
            conn.execute(sa.text("SELECT 1"))
    with engine.connect() as holder, engine.connect() as waiter:
        holder.execute(sa.text("LOCK TABLE t IN ACCESS EXCLUSIVE MODE"))
        waiter.execute(sa.text("SET lock_timeout = '50ms'"))
        with pytest.raises(sa.exc.OperationalError, match="lock timeout") as lock_timeout:
            waiter.execute(sa.text("SELECT * FROM t"))
    with pytest.raises(sa.exc.ProgrammingError) as missing, engine.connect() as conn:
        conn.execute(sa.text("SELECT * FROM nowhere"))
    with pytest.raises(sa.exc.IntegrityError) as taken, engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO t VALUES (1)"))
    engine.dispose()
    assert dropped.value.connection_invalidated and transient_database_error(dropped.value)
    assert transient_database_error(lock_timeout.value)
    assert not transient_database_error(missing.value)
    assert not transient_database_error(taken.value)


# -- PostgreSQL drops the app's connections, or goes away, after the relay accepted ----------


def test_connections_dropped_right_after_each_acceptance_neither_resend_nor_fail_a_mail(
    postgres, sink, make_app, caplog
):
    port, handler = sink
    app = make_app(postgres.url(), port)
    pay(app, *range(1001, 1007))
    dropped = []
    handler.after_accept = lambda: dropped.append(postgres.drop_app_connections())
    caplog.set_level(logging.INFO, logger="aftercare.store")

    execute_due(app)

    assert all(dropped), "every acceptance dropped the app's connections"
    assert any("trying again" in r.getMessage() for r in caplog.records)  # the drops hit the bookkeeping
    records = mails(app)
    assert len(records) == 6
    assert {(a.state, a.attempts, a.reason) for a in records} == {(ActionState.DONE, 1, "")}
    assert set(sent_keys(handler).values()) == {1} and len(handler.received) == 6
    assert app.store.held_outcomes() == {}
    with app.store.engine.connect() as conn:  # each mark went with its done record
        assert conn.execute(sa.select(sa.func.count()).select_from(sent_marks)).scalar_one() == 0

    handler.after_accept = lambda: None
    app.clock.advance(timedelta(days=1))
    Worker(app).run_now()
    assert len(handler.received) == 6


def test_a_store_away_after_the_acceptance_holds_the_outcome_under_its_claim_until_the_heartbeat_writes_it(
    postgres, sink, make_app
):
    port, handler = sink
    app = make_app(postgres.url(), port)
    app.store.outcome_retry = timedelta(seconds=0.3)  # 10 s in production: a restart of PostgreSQL fits
    pay(app, 1001)
    handler.after_accept = postgres.gate.stop_accepting
    worker = Worker(app)
    (action,) = mails(app)

    assert execute_action(app, action)  # what the worker's threads run

    assert set(app.store.held_outcomes()) == {action.id}
    assert app.store.held("actions") == [action.id]  # its claim is still renewed by the heartbeat
    row = postgres.action_row(action.id)
    assert (row.state, row.claimed_by) == ("running", app.store.claimant)
    with pytest.raises(sa.exc.OperationalError):
        worker.heartbeat()  # the store is still away: the outcome stays held
    assert set(app.store.held_outcomes()) == {action.id}

    postgres.gate.resume()
    worker.heartbeat()

    done = app.store.get_action(action.id)
    assert (done.state, done.attempts, done.reason) == (ActionState.DONE, 1, "")
    assert done.result["message_id"] == handler.received[0].message["Message-ID"]
    assert app.store.held_outcomes() == {} and app.store.held("actions") == []
    app.clock.advance(timedelta(days=1))
    worker.run_now()
    assert len(handler.received) == 1


def test_a_worker_that_lost_its_outcome_after_the_sent_mark_leaves_the_next_one_nothing_to_resend(
    postgres, sink, make_app
):
    port, handler = sink
    first = make_app(postgres.url(), port)
    first.store.outcome_retry = timedelta(seconds=0.3)
    pay(first, 1001)
    (action,) = mails(first)
    write_mark = first.store._write_sent_mark

    def mark_then_lose_the_store(*args):
        write_mark(*args)
        postgres.gate.stop_accepting()

    first.store._write_sent_mark = mark_then_lose_the_store
    assert execute_action(first, action)
    assert set(first.store.held_outcomes()) == {action.id}  # and then this worker dies with it
    postgres.gate.resume()
    with postgres.admin.begin() as conn:  # its claim runs out
        conn.execute(sa.text(f"UPDATE {postgres.schema}.actions SET claimed_until = now() - interval '1 second'"))

    second = make_app(postgres.url(through_gate=False), port)
    Worker(second).run_now()

    again = second.store.get_action(action.id)
    assert (again.state, again.attempts, again.reason) == (ActionState.DONE, 1, "sent earlier, not resent")
    assert again.result["message_id"] == handler.received[0].message["Message-ID"]
    assert len(handler.received) == 1
    assert second.store.sent_mark(action.idempotency_key) is None  # gone with the done record
    assert first.store.write_held_outcomes() == 1  # no longer its to write: let go, nothing changed
    assert second.store.get_action(action.id).reason == "sent earlier, not resent"


class CouponMail:
    """A coupon, and a mail with its code once the coupon is made."""

    name = "couponmail"

    @hookimpl
    def on_order_paid(self, event, ctx):
        coupon = ctx.create_coupon(percent=10, prefix="GRACIAS")
        ctx.send_email("thank_you", context={"code": coupon.payload["code"]}, after=coupon)


def test_a_database_read_error_inside_the_mail_code_puts_the_mail_back_and_never_fails_it(postgres, sink, make_app):
    port, handler = sink
    app = make_app(postgres.url(), port, CouponMail())
    pay(app, 1001, 1002)
    drops, coupons = [], app.adapter(TEST_SHOP).coupons

    @sa.event.listens_for(app.store.engine, "before_cursor_execute")
    def drop_on_the_suppression_read(conn, cursor, statement, parameters, context, executemany):
        # The channel's first read, per mail: once its coupon is made (the coupon's own look at
        # whether its mail would be refused reads the list too, before).
        if "FROM mail_suppressions" in statement and len(drops) < min(len(coupons), 2):
            drops.append(postgres.drop_app_connections())

    execute_due(app)

    assert len(drops) == 2 and handler.received == []
    put_back = mails(app)
    assert {(a.state, a.attempts) for a in put_back} == {(ActionState.DUE, 0)}
    assert all(a.reason.startswith("database error: ") for a in put_back), [a.reason for a in put_back]
    assert len(app.adapter(TEST_SHOP).coupons) == 2

    app.clock.advance(timedelta(minutes=5))
    execute_due(app)

    assert {(a.state, a.attempts) for a in mails(app)} == {(ActionState.DONE, 1)}
    assert set(sent_keys(handler).values()) == {1} and len(handler.received) == 2
    codes = set(app.adapter(TEST_SHOP).coupons)
    for received in handler.received:
        assert any(code in received.message.get_body(("plain",)).get_content() for code in codes)


class Noter:
    name = "noter"

    @hookimpl
    def on_order_paid(self, event, ctx):
        ctx.add_order_note("thanked")


def test_a_platform_action_with_a_sent_mark_is_done_without_calling_the_platform_again(tmp_path, sink, make_app):
    port, _handler = sink
    app = make_app(f"sqlite:///{tmp_path / 'aftercare.db'}", port, Noter())
    pay(app, 1001)
    (note,) = app.store.list_actions()
    with app.store.transaction() as conn:  # a worker that added the note and died before its record
        conn.execute(sent_marks.insert().values(idempotency_key=note.idempotency_key, result={}, sent_at=START))

    execute_due(app)

    done = app.store.get_action(note.id)
    assert (done.state, done.attempts, done.reason) == (ActionState.DONE, 1, "done earlier, not run again")
    assert app.adapter(TEST_SHOP).notes == {}
    assert app.store.sent_mark(note.idempotency_key) is None


# -- SQLite: "database is locked" is a wait, not a failure -----------------------------------


def test_sqlite_locked_while_the_mark_is_written_retries_and_sends_once(tmp_path, sink, make_app, caplog):
    port, handler = sink
    database = tmp_path / "aftercare.db"
    app = make_app(f"sqlite:///{database}", port)
    pay(app, 1001)

    @sa.event.listens_for(app.store.engine, "connect")
    def _short_busy_timeout(dbapi_connection, _record):  # after the store's own 10 s one
        dbapi_connection.execute("PRAGMA busy_timeout = 20")

    app.store.engine.dispose()
    holder = sqlite3.connect(database, isolation_level=None, check_same_thread=False)

    def lock_for_a_moment():
        holder.execute("BEGIN IMMEDIATE")  # another process writing, for longer than the busy timeout
        threading.Timer(0.3, holder.rollback).start()

    handler.after_accept = lock_for_a_moment
    caplog.set_level(logging.INFO, logger="aftercare.store")
    try:
        execute_due(app)
    finally:
        holder.close()

    assert any("database is locked" in r.getMessage() for r in caplog.records)
    (mail,) = mails(app)
    assert (mail.state, mail.attempts, mail.reason) == (ActionState.DONE, 1, "")
    assert len(handler.received) == 1


# -- a relay that closes after the message, or never answers it ------------------------------


class ClosingRelay:
    """Just enough SMTP to take a message; then, instead of answering its final ".", it closes
    the connection (or says nothing until the client gives up)."""

    def __init__(self, *, silent: bool = False) -> None:
        self.silent = silent
        self.messages: list[bytes] = []
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> ClosingRelay:
        self._thread.start()
        self._started.wait(5)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._session, "127.0.0.1", self.port))
        self._started.set()
        self._loop.run_forever()
        server.close()
        for task in asyncio.all_tasks(self._loop):
            task.cancel()
        self._loop.run_until_complete(asyncio.sleep(0))
        self._loop.close()

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 relay.example ESMTP\r\n")
        while line := await reader.readline():
            verb = line[:4].upper()
            if verb == b"DATA":
                writer.write(b"354 end with <CRLF>.<CRLF>\r\n")
                await writer.drain()
                self.messages.append(await reader.readuntil(b"\r\n.\r\n"))
                if self.silent:
                    await reader.read()  # until the client hangs up
                break
            writer.write(b"221 bye\r\n" if verb == b"QUIT" else b"250 relay.example\r\n")
            await writer.drain()
            if verb == b"QUIT":
                break
        writer.close()


@pytest.mark.parametrize("silent", [False, True], ids=["closes", "silent"])
def test_a_relay_that_does_not_answer_the_final_dot_gets_each_mail_once_and_it_is_done_unconfirmed(
    make_app, tmp_path, silent
):
    with ClosingRelay(silent=silent) as relay:
        app = make_app(f"sqlite:///{tmp_path / 'aftercare.db'}", relay.port, timeout=0.3)
        pay(app, 1001, 1002, 1003)

        execute_due(app)
        app.clock.advance(timedelta(days=1))
        Worker(app).run_now()

    assert len(relay.messages) == 3
    keys = Counter(line for m in relay.messages for line in m.split(b"\r\n") if line.startswith(b"X-Aftercare-Key"))
    assert set(keys.values()) == {1} and len(keys) == 3
    expected = (
        "sent, unconfirmed: the relay did not answer within 0.3 s after the message; not resent"
        if silent
        else UNCONFIRMED_CLOSED
    )
    records = mails(app)
    assert {(a.state, a.attempts, a.reason) for a in records} == {(ActionState.DONE, 1, expected)}
    assert all(a.result["confirmed"] is False and a.result["message_id"] for a in records)


# -- the migration ---------------------------------------------------------------------------


def test_0010_adds_the_sent_marks_and_downgrades_to_0009(store):  # noqa: F811  (the fixture)
    store.upgrade()
    assert "sent_marks" in sa.inspect(store.engine).get_table_names()
    with store.transaction() as conn:
        command.downgrade(alembic_config(conn), "0009")
        assert "sent_marks" not in sa.inspect(conn).get_table_names()
        assert "console_sessions" in sa.inspect(conn).get_table_names()
    store.upgrade()
    with store.transaction() as conn:
        conn.execute(sent_marks.insert().values(idempotency_key="k", message_id="<m@x>", result={"a": 1},
                                                sent_at=START))  # fmt: skip
    assert store.sent_mark("k").result == {"a": 1}
