"""Action reasons are stored as a code plus text: each kind of reason with its code, and
migration 0012 giving rows written at 0011 their code from the text."""

import sqlite3
from dataclasses import replace
from datetime import timedelta

import pytest
import sqlalchemy as sa
from alembic import command

from aftercare import hookimpl
from aftercare.actions import ActionDeferred, ActionDropped, ActionKind, ActionState, ReasonCode
from aftercare.dispatch import Dispatcher, execute_action, execute_due
from aftercare.mail.transports import UNCONFIRMED_CLOSED
from aftercare.migrations import alembic_config, upgrade
from aftercare.platform import PlatformError
from aftercare.store import actions
from aftercare.testing import START, make_event, make_order

from .plugins_for_tests import Mailbox, ThankYou
from .test_dispatch import ReviewAsk
from .test_store import requests_for, store  # noqa: F401  (the fixture)


def codes(app):
    return {(a.plugin, a.kind.value): (a.state, a.reason_code) for a in app.store.list_actions()}


def mail_channel(send):
    """A plugin whose send_email channel is ``send(action, app)``."""

    class Channel:
        name = "channel"

        @hookimpl
        def register_channels(self, register):
            register("send_email", send)

    return Channel()


def test_new_actions_have_no_reason_and_no_code(aftercare_app):
    app = aftercare_app(ThankYou(), Mailbox())
    Dispatcher(app).dispatch(make_event("order_paid", make_order()))
    assert {(a.reason, a.reason_code) for a in app.store.list_actions()} == {("", ReasonCode.NONE)}
    execute_due(app)
    assert codes(app)[("thank_you", "send_email")] == (ActionState.DONE, ReasonCode.NONE)


def test_a_dry_run_drop_has_the_dry_run_code(aftercare_app):
    app = aftercare_app(ThankYou(), Mailbox(), shop={"production": False})
    Dispatcher(app).dispatch(make_event("order_paid", make_order()))
    execute_due(app)
    assert codes(app)[("thank_you", "create_coupon")] == (ActionState.DROPPED, ReasonCode.DRY_RUN)


def test_a_mail_waiting_for_its_coupon_has_the_waiting_for_code_until_released(aftercare_app):
    app = aftercare_app(ThankYou(), Mailbox())
    Dispatcher(app).dispatch(make_event("order_paid", make_order()))
    due = {a.kind: a for a in app.store.due_actions(app.now())}
    execute_action(app, due[ActionKind.SEND_EMAIL])
    assert codes(app)[("thank_you", "send_email")] == (ActionState.DUE, ReasonCode.WAITING_FOR)
    execute_action(app, due[ActionKind.CREATE_COUPON])
    assert codes(app)[("thank_you", "send_email")] == (ActionState.DONE, ReasonCode.NONE)


def test_only_the_waiting_for_code_is_released_whatever_the_text_says(store):  # noqa: F811
    """The release reads the code: an action put back for another reason whose text happens to
    start like a dependency wait stays where it was put."""
    store.upgrade()
    coupon, mail, other = requests_for(make_event("order_paid", make_order()), "coupon", "mail", "other")
    mail = replace(mail, depends_on=coupon.idempotency_key)
    other = replace(other, depends_on=coupon.idempotency_key)
    with store.transaction() as conn:
        store.add_actions(conn, [coupon, mail, other])
    ids = {a.key: a.id for a in store.due_actions(START)}
    for key in ids:
        assert store.claim_action(ids[key])
    an_hour = START + timedelta(hours=1)
    store.wait_for_dependency(ids["mail"], coupon.idempotency_key, an_hour)
    store.reschedule_action(ids["other"], an_hour, f"waiting for {coupon.idempotency_key}", code=ReasonCode.OTHER)
    assert store.get_action(ids["mail"]).reason == f"waiting for {coupon.idempotency_key}"
    assert store.finish_action(ids["coupon"], ActionState.DONE) == [ids["mail"]]
    assert store.get_action(ids["other"]).due_at == an_hour


def test_a_permanent_platform_error_and_what_depended_on_it(aftercare_app):
    app = aftercare_app(ThankYou(), Mailbox())
    app.adapter("test").fail_next(PlatformError("Code has already been taken", transient=False))
    Dispatcher(app).dispatch(make_event("order_paid", make_order()))
    execute_due(app)
    app.clock.advance(timedelta(minutes=2))
    execute_due(app)
    found = codes(app)
    assert found[("thank_you", "create_coupon")] == (ActionState.FAILED, ReasonCode.PLATFORM_ERROR)
    assert found[("thank_you", "send_email")] == (ActionState.DROPPED, ReasonCode.DEPENDENCY_FAILED)


def test_a_transient_platform_error_is_a_retry(aftercare_app):
    app = aftercare_app(ThankYou(), Mailbox())
    app.adapter("test").fail_next(PlatformError("503 Service Unavailable", transient=True))
    Dispatcher(app).dispatch(make_event("order_paid", make_order()))
    execute_due(app)
    assert codes(app)[("thank_you", "create_coupon")] == (ActionState.DUE, ReasonCode.RETRY)


def test_a_fire_time_check_drop(aftercare_app):
    app = aftercare_app(ThankYou(), Mailbox())
    order = make_order()
    Dispatcher(app).dispatch(make_event("order_paid", order))
    app.adapter("test").put_order(replace(order, cancelled_at=START + timedelta(days=1)))
    app.clock.advance(timedelta(days=8))
    execute_due(app)
    assert codes(app)[("thank_you", "add_order_note")] == (ActionState.DROPPED, ReasonCode.FIRE_TIME_CHECK)


def test_a_plugins_cancel_is_withdrawn(aftercare_app):
    app = aftercare_app(ThankYou(), Mailbox())
    order = make_order()
    Dispatcher(app).dispatch(make_event("order_paid", order))
    Dispatcher(app).dispatch(make_event("order_cancelled", order))
    assert codes(app)[("thank_you", "add_order_note")] == (ActionState.DROPPED, ReasonCode.WITHDRAWN)


def test_a_plugins_reschedule(aftercare_app):
    app = aftercare_app(ReviewAsk())
    order = make_order()
    Dispatcher(app).dispatch(make_event("shipped", order))
    Dispatcher(app).dispatch(make_event("delivered", order))
    (review,) = app.store.list_actions()
    assert (review.state, review.reason_code) == (ActionState.DUE, ReasonCode.RESCHEDULED)


def test_cancelled_and_retried_by_hand(aftercare_app):
    app = aftercare_app(ThankYou(), Mailbox())
    Dispatcher(app).dispatch(make_event("order_paid", make_order()))
    note, coupon = (next(a for a in app.store.list_actions() if a.kind is kind)
                    for kind in (ActionKind.ADD_ORDER_NOTE, ActionKind.CREATE_COUPON))  # fmt: skip
    assert app.store.cancel_action(note.id, "cancelled by nora: not wanted")
    assert app.store.get_action(note.id).reason_code is ReasonCode.CANCELLED
    assert app.store.retry_action(note.id, "retried by nora in the console")
    assert app.store.get_action(note.id).reason_code is ReasonCode.RETRIED
    assert app.store.cancel_action(coupon.id, "cancelled by nora")
    assert app.store.retry_action(coupon.id)  # no reason, no code
    assert (app.store.get_action(coupon.id).reason, app.store.get_action(coupon.id).reason_code) == ("", "")


def test_an_action_whose_worker_stopped_is_released(aftercare_app):
    app = aftercare_app(ThankYou(), Mailbox())
    Dispatcher(app).dispatch(make_event("order_paid", make_order()))
    (coupon,) = [a for a in app.store.due_actions(app.now()) if a.kind is ActionKind.CREATE_COUPON]
    app.store.claim_lease = timedelta(0)  # its claim runs out at once
    assert app.store.claim_action(coupon.id)
    app.store.let_go("actions", [coupon.id])
    assert app.store.release_stale_actions() == 1
    assert app.store.get_action(coupon.id).reason_code is ReasonCode.RELEASED


def test_an_erased_customers_actions(aftercare_app):
    app = aftercare_app(ThankYou(), Mailbox())
    Dispatcher(app).dispatch(make_event("order_paid", make_order(email="ana@example.com")))
    app.store.forget_customer("test", "ana@example.com", b"k" * 32)
    assert {a.reason_code for a in app.store.list_actions()} == {ReasonCode.ERASED}


@pytest.mark.parametrize(
    ("raised", "state", "code"),
    [
        (ActionDropped("suppressed: bounced", ReasonCode.SUPPRESSED), ActionState.DROPPED, ReasonCode.SUPPRESSED),
        (ActionDropped("a channel's own reason"), ActionState.DROPPED, ReasonCode.OTHER),
        (ActionDeferred(START + timedelta(hours=9), "quiet hours", ReasonCode.QUIET_HOURS), ActionState.DUE,
         ReasonCode.QUIET_HOURS),
        (ActionDeferred(START + timedelta(hours=9), "later"), ActionState.DUE, ReasonCode.OTHER),
        (RuntimeError("boom"), ActionState.FAILED, ReasonCode.CHANNEL_ERROR),
        (sa.exc.OperationalError("SELECT 1", {}, sqlite3.OperationalError("database is locked")), ActionState.DUE,
         ReasonCode.DATABASE_ERROR),
    ],
)  # fmt: skip
def test_what_a_channel_raises_keeps_its_code(aftercare_app, raised, state, code):
    def send(action, app):
        raise raised

    app = aftercare_app(ThankYou(), mail_channel(send))
    Dispatcher(app).dispatch(make_event("order_paid", make_order()))
    execute_due(app)
    app.clock.advance(timedelta(minutes=2))
    execute_due(app)
    assert codes(app)[("thank_you", "send_email")] == (state, code)


def test_a_done_action_with_a_note_from_its_channel(aftercare_app):
    def unconfirmed(action, app):
        return {"confirmed": False, "reason": UNCONFIRMED_CLOSED}

    app = aftercare_app(ThankYou(), mail_channel(unconfirmed))
    Dispatcher(app).dispatch(make_event("order_paid", make_order()))
    execute_due(app)
    app.clock.advance(timedelta(minutes=2))
    execute_due(app)
    mail = next(a for a in app.store.list_actions() if a.kind is ActionKind.SEND_EMAIL)
    assert (mail.state, mail.reason, mail.reason_code) == (ActionState.DONE, UNCONFIRMED_CLOSED,
                                                           ReasonCode.UNCONFIRMED)  # fmt: skip


def test_no_channel_and_done_earlier(aftercare_app, monkeypatch):
    app = aftercare_app(ThankYou(), Mailbox())
    order = make_order()
    app.adapter("test").put_order(order)  # the note's fire-time check reads it
    Dispatcher(app).dispatch(make_event("order_paid", order))
    coupon, note = (next(a for a in app.store.list_actions() if a.kind is kind)
                    for kind in (ActionKind.CREATE_COUPON, ActionKind.ADD_ORDER_NOTE))  # fmt: skip
    app.store._write_sent_mark(coupon, {"code": "X"})  # its channel did its work, its record did not say so
    execute_action(app, coupon)
    assert app.store.get_action(coupon.id).reason_code is ReasonCode.DONE_EARLIER
    monkeypatch.setattr(app.plugins, "channels", lambda: {})
    app.clock.advance(timedelta(days=8))
    execute_action(app, app.store.get_action(note.id))
    assert codes(app)[("thank_you", "add_order_note")] == (ActionState.FAILED, ReasonCode.NO_CHANNEL)


#: Reasons as the code at 0011 wrote them, the state they were written with, and the code 0012 gives them.
AT_0011 = [
    ("", "done", ""),
    ("", "due", ""),
    ("dry run: shop 'test' is not marked production = true", "dropped", "dry_run"),
    ("dry run: the config says dry_run = true", "dropped", "dry_run"),
    ("waiting for test/p/create_coupon/order:1/coupon", "due", "waiting_for"),
    ("waiting for test/p/create_coupon/order:1/coupon", "running", "waiting_for"),
    ("depends on test/p/create_coupon/order:1/coupon, which did not happen: taken", "dropped", "dependency_failed"),
    ("fire-time check: the order was cancelled", "dropped", "fire_time_check"),
    ("suppressed: bounced ana@example.com (550 no such user)", "dropped", "suppressed"),
    ("suppressed: unsubscribed ana@example.com (one-click)", "dropped", "suppressed"),
    ("suppressed: unsubscribed ana@example.com (marketing consent withdrawn)", "dropped", "no_consent"),
    ("frequency cap: 3 marketing emails to this customer in the last 7 days (at most 3)", "dropped", "frequency_cap"),
    ("quiet hours 21:00-08:00 Europe/Sofia: waiting until 08:00 local time", "due", "quiet_hours"),
    ("rescheduled by on_delivered", "due", "rescheduled"),
    ("attempt 1 failed: 503 Service Unavailable; next try in 30s", "due", "retry"),
    ("database error: database is locked; next try in 30s", "due", "database_error"),
    ("503 Service Unavailable", "failed", "platform_error"),
    ("RuntimeError: boom", "failed", "channel_error"),
    ("no channel is registered for tag_order", "failed", "no_channel"),
    ("sent earlier, not resent", "done", "done_earlier"),
    ("done earlier, not run again", "done", "done_earlier"),
    (UNCONFIRMED_CLOSED, "done", "unconfirmed"),
    ("released: its worker stopped mid-run", "due", "released"),
    ("retried by nora in the console", "due", "retried"),
    ("customer erased", "dropped", "erased"),
    ("cancelled by nora", "dropped", "cancelled"),
    ("cancelled by nora: not wanted", "dropped", "cancelled"),
    ("cancelled by nora in the console: not wanted", "dropped", "cancelled"),
    ("cancelled by review_request in on_order_cancelled", "dropped", "withdrawn"),
    ("review request withdrawn: order cancelled", "dropped", "withdrawn"),
    ("order cancelled", "dropped", "withdrawn"),
    ("a third-party channel's deferral", "due", "other"),
]


def test_0012_gives_rows_written_at_0011_their_code_and_downgrades(store):  # noqa: F811
    with store.transaction() as conn:
        upgrade(conn, "0011")
    rows = [
        {"idempotency_key": f"test/p/add_order_note/order:1/k{n}", "kind": "add_order_note", "shop_id": "test",
         "plugin": "p", "order_id": "1", "key": f"k{n}", "payload": {}, "due_at": START, "state": state,
         "reason": reason, "created_at": START, "updated_at": START}
        for n, (reason, state, _code) in enumerate(AT_0011)
    ]  # fmt: skip
    with store.transaction() as conn:
        conn.execute(sa.insert(actions), rows)  # the columns 0011 has: no reason_code
    store.upgrade()
    found = sorted(store.list_actions(), key=lambda a: a.id)
    assert [(a.reason, a.state.value, a.reason_code.value) for a in found] == AT_0011

    with store.transaction() as conn:
        command.downgrade(alembic_config(conn), "0011")
        assert "reason_code" not in {c["name"] for c in sa.inspect(conn).get_columns("actions")}
        assert conn.execute(sa.select(sa.func.count()).select_from(sa.table("actions"))).scalar() == len(AT_0011)
    store.upgrade()
    assert store.get_action(found[2].id).reason_code is ReasonCode.DRY_RUN
