"""win_back: a mail N days after the customer's last paid order, withdrawn by a new order."""

from dataclasses import replace
from datetime import timedelta

import pytest
from pydantic import ValidationError

from aftercare.actions import ActionKind, ActionState, ReasonCode
from aftercare.dispatch import Dispatcher, execute_due
from aftercare.mail.templates import check_templates
from aftercare.models import ConsentState, FinancialStatus
from aftercare.plugins import win_back
from aftercare.testing import START, make_event, make_order

from .conftest import inbox

DAY = timedelta(days=1)


def actions(app):
    records = sorted(app.store.list_actions(), key=lambda a: a.id)
    return [(a.kind, a.order_id, a.due_at, a.state, a.reason_code) for a in records]


def paid(app, order, at=None):
    app.adapter("test").put_order(order)
    Dispatcher(app).dispatch(make_event("order_paid", order, occurred_at=at or app.now()))


def test_the_mail_goes_days_after_the_last_order_with_a_coupon_made_only_then(plugin_app):
    app = plugin_app(win_back, settings={"win_back": {"days": 60, "coupon": True, "coupon_value": "15"}})
    order = make_order("1001")
    paid(app, order)
    assert [(kind, due, state) for kind, _o, due, state, _c in actions(app)] == [
        (ActionKind.CREATE_COUPON, START + 60 * DAY, ActionState.DUE),
        (ActionKind.SEND_EMAIL, START + 60 * DAY, ActionState.DUE),
    ]
    app.clock.advance(59 * DAY)
    execute_due(app)
    assert app.adapter("test").coupons == {} and inbox(app) == []  # nothing is made before its time

    app.clock.advance(DAY)
    execute_due(app)
    ((code, spec),) = app.adapter("test").coupons.items()
    assert spec.value == 15 and spec.expires_at == START + 90 * DAY  # 30 days from the mail
    (mail,) = inbox(app)
    assert mail.subject == "Te echamos de menos: 15 % de descuento en tu próximo pedido"
    assert "Hola, Ana:" in mail.text and "tu pedido 1001" in mail.text and code in mail.text
    assert not mail.transactional and mail.message["List-Unsubscribe"]  # marketing mail


def test_a_new_order_withdraws_the_pending_mail_at_once_and_schedules_its_own(plugin_app):
    app = plugin_app(win_back, settings={"win_back": {"days": 90}})
    first, second = make_order("1001"), make_order("1002")
    paid(app, first)
    app.clock.advance(30 * DAY)
    paid(app, second)
    assert actions(app) == [
        (ActionKind.SEND_EMAIL, "order-1001", START + 90 * DAY, ActionState.DROPPED, ReasonCode.WITHDRAWN),
        (ActionKind.SEND_EMAIL, "order-1002", START + 120 * DAY, ActionState.DUE, ReasonCode.NONE),
    ]
    assert min(app.store.list_actions(), key=lambda a: a.id).reason == "win-back withdrawn: the customer ordered again"
    app.clock.advance(90 * DAY)
    execute_due(app)
    (mail,) = inbox(app)
    assert mail.subject == "Ha pasado un tiempo: descubre las novedades de Tienda Ñandú"
    assert "tu pedido 1002" in mail.text


def test_another_customers_order_withdraws_nothing(plugin_app):
    app = plugin_app(win_back, settings={"win_back": {"days": 90}})
    paid(app, make_order("1001"))
    paid(app, make_order("1002", email="other@example.com"))
    assert [state for _k, _o, _d, state, _c in actions(app)] == [ActionState.DUE, ActionState.DUE]


def test_a_later_order_dispatched_first_still_stops_the_mail_when_due(plugin_app):
    """A backfill may dispatch the newer order first: the customer history in the store decides."""
    app = plugin_app(win_back, settings={"win_back": {"days": 90}})
    older, newer = make_order("1001"), make_order("1002")
    app.clock.advance(10 * DAY)
    paid(app, newer, at=START + 10 * DAY)
    paid(app, older, at=START + DAY)
    app.clock.advance(85 * DAY)  # the older order's moment (START + 91 days)
    execute_due(app)
    mails = {a.order_id: a for a in app.store.list_actions()}
    assert mails["order-1001"].state is ActionState.DROPPED
    assert mails["order-1001"].reason == "fire-time check: the customer ordered again (order order-1002)"
    assert mails["order-1001"].reason_code is ReasonCode.FIRE_TIME_CHECK
    assert mails["order-1002"].state is ActionState.DUE and inbox(app) == []


def test_a_later_order_that_was_cancelled_does_not_count_as_ordering_again(plugin_app):
    app = plugin_app(win_back, settings={"win_back": {"days": 90}})
    older, newer = make_order("1001"), make_order("1002")
    app.clock.advance(10 * DAY)
    paid(app, newer)
    cancelled = replace(newer, cancelled_at=app.now())
    app.adapter("test").put_order(cancelled)
    Dispatcher(app).dispatch(make_event("order_cancelled", cancelled, occurred_at=app.now()))
    paid(app, older, at=START + DAY)
    app.clock.advance(85 * DAY)
    execute_due(app)
    assert [m.text.count("tu pedido 1001") for m in inbox(app)] == [1]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"cancelled_at": START + DAY}, "fire-time check: the order was cancelled"),
        ({"financial_status": FinancialStatus.REFUNDED}, "fire-time check: the order was refunded"),
    ],
)
def test_the_mail_is_dropped_when_due_if_the_order_was_cancelled_or_refunded(plugin_app, change, reason):
    app = plugin_app(win_back, settings={"win_back": {"days": 60, "coupon": True}})
    order = make_order("1001")
    paid(app, order)
    app.adapter("test").put_order(replace(order, **change))
    app.clock.advance(60 * DAY)
    execute_due(app)
    coupon, mail = sorted(app.store.list_actions(), key=lambda a: a.id)
    assert (coupon.state, coupon.reason) == (ActionState.DROPPED, reason)
    assert mail.state is ActionState.DROPPED and mail.reason.endswith(f"which did not happen: {reason}")
    assert app.adapter("test").coupons == {} and inbox(app) == []


def test_no_mail_without_marketing_consent(plugin_app):
    app = plugin_app(win_back, settings={"win_back": {"days": 60}})
    order = make_order("1001")
    paid(app, order)
    customer = replace(order.customer, marketing_consent=ConsentState.UNSUBSCRIBED)
    app.adapter("test").put_order(replace(order, customer=customer))
    app.clock.advance(60 * DAY)
    execute_due(app)
    assert [a.state for a in app.store.list_actions()] == [ActionState.DROPPED] and inbox(app) == []


def test_nothing_for_small_orders_and_nothing_twice_for_one_order(plugin_app):
    app = plugin_app(win_back, settings={"win_back": {"days": 60, "minimum_order": "1000"}})
    paid(app, make_order("1001"))
    assert actions(app) == []
    app = plugin_app(win_back, settings={"win_back": {"days": 60}})
    order = make_order("1001")
    paid(app, order)
    paid(app, order)  # the platform's retry of the same webhook, or a second topic
    assert len(actions(app)) == 1


def test_an_old_order_reaching_aftercare_after_its_moment_gets_nothing(plugin_app):
    app = plugin_app(win_back, settings={"win_back": {"days": 30}})
    app.clock.advance(45 * DAY)
    paid(app, make_order("1001"), at=START)  # a first sync of last month's history
    assert actions(app) == []


def test_settings_are_checked_and_templates_render_in_every_locale(aftercare_app):
    with pytest.raises(ValidationError, match="percent coupon takes up to 100"):
        win_back.Settings(coupon=True, coupon_value="150")
    assert win_back.Settings(days=120).longest_delay() == 120 * DAY  # check --live asks for read_all_orders
    assert check_templates(aftercare_app(win_back)) == []
