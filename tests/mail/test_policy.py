"""Quiet hours in the shop's time zone, the frequency cap, the minimum gap, and the outbox transport."""

import email
from datetime import UTC, datetime, time, timedelta
from email import policy

import pytest

from aftercare import hookimpl
from aftercare.actions import ActionState, ReasonCode
from aftercare.dispatch import Dispatcher, execute_due
from aftercare.mail.policy import quiet_until
from aftercare.testing import make_event, make_order

from .conftest import SENDER, Shopmail

EVENING_UTC = datetime(2026, 1, 5, 19, 30, tzinfo=UTC)  # 21:30 in Sofia (UTC+2), still evening in UTC


def send_state(app, key="thank_you"):
    return next((a.state, a.reason, a.due_at) for a in app.store.list_actions() if a.key == key)


def test_marketing_mail_waits_for_the_morning_in_the_shops_time_zone(mail_app, smtp_server):
    _controller, handler = smtp_server
    sofia = mail_app(timezone="Europe/Sofia")
    sofia.clock.set(EVENING_UTC)
    order = make_order()
    Dispatcher(sofia).dispatch(make_event("order_paid", order))
    Dispatcher(sofia).dispatch(make_event("shipped", order))
    execute_due(sofia)
    state, reason, due_at = send_state(sofia)
    assert state is ActionState.DUE and reason.startswith("quiet hours 21:00-08:00 Europe/Sofia")
    assert due_at == datetime(2026, 1, 6, 6, 0, tzinfo=UTC)  # 08:00 in Sofia
    assert send_state(sofia, "shipped")[0] is ActionState.DONE  # transactional mail is not held
    assert len(handler.received) == 1

    sofia.clock.set(datetime(2026, 1, 6, 5, 59, tzinfo=UTC))
    execute_due(sofia)
    assert len(handler.received) == 1
    sofia.clock.set(datetime(2026, 1, 6, 6, 0, tzinfo=UTC))
    execute_due(sofia)
    assert send_state(sofia)[0] is ActionState.DONE and len(handler.received) == 2


def test_the_same_instant_is_not_quiet_for_a_shop_in_utc(mail_app, smtp_server):
    _controller, handler = smtp_server
    utc_shop = mail_app(timezone="UTC")
    utc_shop.clock.set(EVENING_UTC)
    Dispatcher(utc_shop).dispatch(make_event("order_paid", make_order()))
    execute_due(utc_shop)
    assert send_state(utc_shop)[0] is ActionState.DONE and len(handler.received) == 1


def test_quiet_hours_across_midnight_and_within_a_day():
    night, morning = time(21, 0), time(8, 0)
    at = datetime(2026, 3, 1, 23, 30, tzinfo=UTC)  # 00:30 in Madrid: quiet until 08:00 the same day
    assert quiet_until(at, "Europe/Madrid", night, morning) == datetime(2026, 3, 2, 7, 0, tzinfo=UTC)
    assert quiet_until(at.replace(hour=12), "Europe/Madrid", night, morning) is None
    assert quiet_until(at, "Europe/Madrid", time(1, 0), time(6, 0)) is None  # 00:30 is before 01:00
    assert quiet_until(at, "UTC", time(0, 0), time(0, 0)) is None  # equal times: no quiet hours


def test_frequency_cap_drops_the_fourth_marketing_mail_in_the_window(mail_app, smtp_server):
    _controller, handler = smtp_server
    app = mail_app(mail={"frequency_cap": 3, "frequency_days": 7, "min_gap_hours": 0})
    dispatcher = Dispatcher(app)
    for n in range(4):
        order = make_order(f"50{n}")
        dispatcher.dispatch(make_event("order_paid", order))
        dispatcher.dispatch(make_event("shipped", order))
        execute_due(app)
        app.clock.advance(timedelta(hours=1))
    marketing = sorted((a for a in app.store.list_actions() if a.key == "thank_you"), key=lambda a: a.id)
    assert [a.state for a in marketing] == [ActionState.DONE] * 3 + [ActionState.DROPPED]
    assert marketing[3].reason == (
        "frequency cap: 3 marketing messages to this customer in the last 7 days (at most 3)"
    )
    shipped = [a for a in app.store.list_actions() if a.key == "shipped"]
    assert all(a.state is ActionState.DONE for a in shipped)  # transactional mail is neither capped nor counted
    assert len(handler.received) == 7

    app.clock.advance(timedelta(days=7))  # the window has moved on
    dispatcher.dispatch(make_event("order_paid", make_order("600")))
    execute_due(app)
    assert next(a for a in app.store.list_actions(order_id="order-600")).state is ActionState.DONE


def test_outbox_writes_readable_eml_files(aftercare_app, tmp_path):
    app = aftercare_app(Shopmail(), shop={"sender": SENDER, "mail": {"transport": "outbox"}})
    Dispatcher(app).dispatch(make_event("order_paid", make_order()))
    execute_due(app)
    (action,) = app.store.list_actions()
    assert action.state is ActionState.DONE, action.reason
    (path,) = (tmp_path / "outbox").glob("*.eml")
    assert action.result["path"] == str(path) and path.name.endswith("-test-000001-thank_you.eml")
    message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
    assert message["Subject"] == "Gracias por tu pedido 1001 en test"
    assert message["X-Aftercare-Key"] == action.idempotency_key
    assert "GRACIAS-7Q2XM" in message.get_body(("plain",)).get_content()
    assert not list((tmp_path / "outbox").glob("*.part"))


class Moments:
    """Three marketing mails that fall due together, as a survey, an opt-in invitation and a reward
    coupon can after one delivery; two tips mails for two product groups; one transactional notice."""

    name = "moments"

    @hookimpl
    def on_delivered(self, event, ctx):
        for key in ("survey", "optin_invite", "reward_coupon"):
            ctx.send_email("how_was_it", key=key)
        ctx.send_email("how_was_it", key="parcel", transactional=True)

    @hookimpl
    def on_shipped(self, event, ctx):
        for key in ("tips:coffee", "tips:cups"):
            ctx.send_email("how_was_it", key=key)


def test_marketing_mails_due_together_go_out_hours_apart_not_dropped(aftercare_app, smtp_server):
    controller, handler = smtp_server
    smtp = {"host": "127.0.0.1", "port": controller.port, "security": "none", "timeout": 5}
    app = aftercare_app(Moments(), shop={"sender": SENDER, "timezone": "UTC",
                                         "mail": {"transport": "smtp", "smtp": smtp, "frequency_cap": 0}})  # fmt: skip
    assert app.mail_settings("test").min_gap_hours == 4  # the default
    app.clock.set(datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
    order = make_order()
    Dispatcher(app).dispatch(make_event("delivered", order))
    execute_due(app)
    by_key = {a.key: a for a in app.store.list_actions()}
    assert by_key["parcel"].state is ActionState.DONE  # transactional: no gap, and it does not count
    sent = [k for k in ("survey", "optin_invite", "reward_coupon") if by_key[k].state is ActionState.DONE]
    assert len(sent) == 1
    waiting = [by_key[k] for k in ("survey", "optin_invite", "reward_coupon") if k not in sent]
    for action in waiting:
        assert action.state is ActionState.DUE and action.reason_code is ReasonCode.MIN_GAP
        assert action.due_at == datetime(2026, 1, 5, 13, 0, tzinfo=UTC)
        assert action.reason.startswith("minimum gap: the last marketing message to this customer went at")

    sent_at = []
    for _hour in range(12):
        before = len(handler.received)
        execute_due(app)
        if len(handler.received) > before:
            sent_at.extend([app.now()] * (len(handler.received) - before))
        app.clock.advance(timedelta(hours=1))
    marketing = [a for a in app.store.list_actions() if not a.payload.get("transactional")]
    assert all(a.state is ActionState.DONE for a in marketing)  # deferred, never dropped
    assert sent_at == [datetime(2026, 1, 5, 13, 0, tzinfo=UTC), datetime(2026, 1, 5, 17, 0, tzinfo=UTC)]


def test_two_tips_mails_never_go_in_the_same_minute(aftercare_app, smtp_server):
    controller, handler = smtp_server
    smtp = {"host": "127.0.0.1", "port": controller.port, "security": "none", "timeout": 5}
    mail = {"transport": "smtp", "smtp": smtp, "min_gap_hours": 0.5}
    app = aftercare_app(Moments(), shop={"sender": SENDER, "timezone": "UTC", "mail": mail})
    app.clock.set(datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
    Dispatcher(app).dispatch(make_event("shipped", make_order()))
    for _minute in range(40):
        execute_due(app)
        app.clock.advance(timedelta(minutes=1))
    tips = sorted((a for a in app.store.list_actions() if a.key.startswith("tips:")), key=lambda a: a.updated_at)
    assert [a.state for a in tips] == [ActionState.DONE, ActionState.DONE]
    assert tips[1].updated_at - tips[0].updated_at >= timedelta(minutes=30)
    assert len(handler.received) == 2


def test_of_two_marketing_mails_running_at_once_the_older_goes_and_the_newer_waits(aftercare_app, smtp_server):
    """Two workers claim two mails to one customer at the same instant: each sees the other running,
    and only the one with the lower id may go, so they neither both go nor both wait."""
    from aftercare.actions import ActionDeferred
    from aftercare.mail.policy import check_send

    controller, _handler = smtp_server
    smtp = {"host": "127.0.0.1", "port": controller.port, "security": "none", "timeout": 5}
    app = aftercare_app(Moments(), shop={"sender": SENDER, "mail": {"transport": "smtp", "smtp": smtp}})
    app.clock.set(datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
    Dispatcher(app).dispatch(make_event("shipped", make_order()))
    older, newer = sorted((a for a in app.store.list_actions() if a.key.startswith("tips:")), key=lambda a: a.id)
    assert app.store.claim_action(older.id) and app.store.claim_action(newer.id)
    settings = app.mail_settings("test")
    check_send(app, app.store.actions_by_keys([older.idempotency_key])[0], settings)  # goes
    with pytest.raises(ActionDeferred) as waiting:
        check_send(app, app.store.actions_by_keys([newer.idempotency_key])[0], settings)
    assert waiting.value.until == datetime(2026, 1, 5, 13, 0, tzinfo=UTC)
