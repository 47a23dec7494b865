"""greetings: a birthday mail and dated greetings, once a year each, to customers with marketing consent."""

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from aftercare.actions import ActionState, ReasonCode
from aftercare.dispatch import Dispatcher, execute_due
from aftercare.mail.templates import check_templates
from aftercare.models import ConsentState, FinancialStatus
from aftercare.plugins import greetings
from aftercare.testing import START, make_event, make_order

from .conftest import inbox

DAY = timedelta(days=1)
BIRTHDAY = date(1990, 3, 15)


def order_of(number="1001", *, birthday=BIRTHDAY, consent=ConsentState.SUBSCRIBED, **changes):
    order = make_order(number, **changes)
    return replace(order, customer=replace(order.customer, birthday=birthday, marketing_consent=consent))


def paid(app, order, at=None):
    app.adapter("test").put_order(order)
    Dispatcher(app).dispatch(make_event("order_paid", order, occurred_at=at or app.now()))


def scheduled(app):
    records = sorted(app.store.list_actions(), key=lambda a: a.id)
    return [(a.payload["template"], a.idempotency_key.rsplit("/", 1)[1], a.due_at, a.state) for a in records]


def test_a_birthday_mail_on_the_day_at_the_hour_in_the_shops_time_zone(plugin_app):
    app = plugin_app(greetings, timezone="Europe/Madrid")
    paid(app, order_of())
    due = datetime(2026, 3, 15, 8, 0, tzinfo=UTC)  # 09:00 in Madrid (CET, UTC+1)
    assert scheduled(app) == [("birthday", "birthday:2026", due, ActionState.DUE)]
    app.clock.advance(due - START - timedelta(minutes=1))
    execute_due(app)
    assert inbox(app) == []
    app.clock.advance(timedelta(minutes=1))
    execute_due(app)
    (mail,) = inbox(app)
    assert mail.subject == "¡Feliz cumpleaños, Ana!" and mail.language == "es"
    assert "te desea un muy feliz cumpleaños" in mail.text and "Tienda Ñandú" in mail.html
    assert not mail.transactional and mail.message["List-Unsubscribe"]  # marketing mail


def test_one_birthday_mail_a_year_however_many_orders_and_the_next_after_it(plugin_app):
    app = plugin_app(greetings)
    paid(app, order_of("1001"))
    app.clock.advance(10 * DAY)
    paid(app, order_of("1002"))  # the same customer again: the same customer-scoped key
    assert [key for _t, key, _d, _s in scheduled(app)] == ["birthday:2026"]
    app.clock.advance(datetime(2026, 3, 15, 9, tzinfo=UTC) - app.now())
    execute_due(app)
    assert len(inbox(app)) == 1
    paid(app, order_of("1002"))  # the platform repeats an order it sent before: nothing new
    app.clock.advance(30 * DAY)
    paid(app, order_of("1003"))  # an order after this year's birthday: next year's
    assert [(key, state) for _t, key, _d, state in scheduled(app)] == [
        ("birthday:2026", ActionState.DONE),
        ("birthday:2027", ActionState.DUE),
    ]


@pytest.mark.parametrize(
    "consent", [ConsentState.UNKNOWN, ConsentState.NOT_SUBSCRIBED, ConsentState.UNSUBSCRIBED, ConsentState.PENDING]
)
def test_nothing_without_marketing_consent(plugin_app, consent):
    app = plugin_app(greetings, settings={"greetings": {"greetings": [{"date": "12-24", "template": "xmas"}]}})
    paid(app, order_of(consent=consent))
    assert scheduled(app) == []


def test_nothing_without_a_birthday_or_with_the_birthday_mail_off(plugin_app):
    app = plugin_app(greetings)
    paid(app, order_of(birthday=None))  # no birthday setting on the adapter, or none on the customer
    assert scheduled(app) == []
    app = plugin_app(greetings, settings={"greetings": {"birthday": False}})
    paid(app, order_of())
    assert scheduled(app) == []


def test_nothing_for_a_cancelled_order_or_an_order_more_than_a_year_old(plugin_app):
    app = plugin_app(greetings)
    paid(app, order_of(cancelled_at=START))
    assert scheduled(app) == []
    # A first sync brings an order paid 300 days ago: the next birthday (in 69 days) is past its year.
    paid(app, order_of("900"), at=START - 300 * DAY)
    assert scheduled(app) == []
    paid(app, order_of("901"), at=START - 200 * DAY)  # within the year of that order: greeted
    assert [key for _t, key, _d, _s in scheduled(app)] == ["birthday:2026"]


def test_a_refund_or_cancel_of_the_order_since_does_not_stop_the_greeting(plugin_app):
    app = plugin_app(greetings)
    order = order_of()
    paid(app, order)
    app.adapter("test").put_order(replace(order, financial_status=FinancialStatus.REFUNDED, cancelled_at=START))
    app.clock.advance(datetime(2026, 3, 15, 9, tzinfo=UTC) - START)
    execute_due(app)
    assert len(inbox(app)) == 1  # the greeting is the customer's, not the order's


def test_the_mail_is_dropped_when_due_if_the_customer_unsubscribed(plugin_app):
    app = plugin_app(greetings)
    order = order_of()
    paid(app, order)
    unsubscribed = replace(order.customer, marketing_consent=ConsentState.UNSUBSCRIBED)
    app.adapter("test").put_order(replace(order, customer=unsubscribed))
    app.clock.advance(datetime(2026, 3, 15, 9, tzinfo=UTC) - START)
    execute_due(app)
    (action,) = app.store.list_actions()
    assert (action.state, action.reason_code) == (ActionState.DROPPED, ReasonCode.FIRE_TIME_CHECK)
    assert action.reason == "fire-time check: the customer unsubscribed (the platform says so)"
    assert inbox(app) == []


def test_the_day_is_the_shops_local_day(plugin_app):
    # START is 2026-01-05 09:00 UTC: already 22:00 in Auckland, still 01:00 in Los Angeles.
    jan_5, jan_6 = date(1990, 1, 5), date(1990, 1, 6)
    app = plugin_app(greetings, timezone="America/Los_Angeles")
    paid(app, order_of(birthday=jan_5))
    assert scheduled(app)[0][1:3] == ("birthday:2026", datetime(2026, 1, 5, 17, tzinfo=UTC))  # 09:00 PST today
    app = plugin_app(greetings, timezone="UTC")
    paid(app, order_of(birthday=jan_5))
    assert scheduled(app)[0][1:3] == ("birthday:2027", datetime(2027, 1, 5, 9, tzinfo=UTC))  # 09:00 is now: next year
    app = plugin_app(greetings, timezone="Pacific/Auckland")
    paid(app, order_of(birthday=jan_6))
    assert scheduled(app)[0][1:3] == ("birthday:2026", datetime(2026, 1, 5, 20, tzinfo=UTC))  # 09:00 NZDT on the 6th


def test_a_29_february_birthday_is_greeted_on_the_28th_in_other_years(plugin_app):
    app = plugin_app(greetings)
    paid(app, order_of(birthday=date(2000, 2, 29)))
    assert scheduled(app)[0][1:3] == ("birthday:2026", datetime(2026, 2, 28, 9, tzinfo=UTC))
    zone = ZoneInfo("UTC")
    leap = greetings.next_day(2, 29, datetime(2027, 3, 1, tzinfo=UTC), zone, 9)
    assert leap == (datetime(2028, 2, 29, 9, tzinfo=UTC), 2028)


def test_dated_greetings_once_a_year_each(plugin_app):
    app = plugin_app(
        greetings,
        settings={"greetings": {"birthday": False, "send_hour": 10, "greetings": [
            {"date": "12-24", "template": "xmas"},
            {"date": "01-01", "template": "new_year"},
        ]}},
    )  # fmt: skip
    paid(app, order_of())
    paid(app, order_of("1002"))
    assert scheduled(app) == [
        ("xmas", "greeting:xmas:2026", datetime(2026, 12, 24, 10, tzinfo=UTC), ActionState.DUE),
        ("new_year", "greeting:new_year:2027", datetime(2027, 1, 1, 10, tzinfo=UTC), ActionState.DUE),
    ]
    app.clock.advance(datetime(2026, 12, 24, 10, tzinfo=UTC) - START)
    execute_due(app)
    (mail,) = inbox(app)
    assert mail.subject == "Feliz Navidad de parte de Tienda Ñandú"
    assert "feliz Navidad y felices fiestas" in mail.text


def test_a_corrected_birthday_moves_the_pending_mail(plugin_app):
    app = plugin_app(greetings)
    paid(app, order_of("1001", birthday=date(1990, 1, 2)))  # this year's is past: 2027-01-02
    app.clock.advance(DAY)
    paid(app, order_of("1002", birthday=date(1990, 3, 15)))  # the shop corrected it
    app.clock.advance(DAY)
    paid(app, order_of("1003", birthday=date(1990, 4, 20)))  # and once more, the same year
    assert scheduled(app) == [
        ("birthday", "birthday:2027", datetime(2027, 1, 2, 9, tzinfo=UTC), ActionState.DROPPED),
        ("birthday", "birthday:2026", datetime(2026, 4, 20, 9, tzinfo=UTC), ActionState.DUE),
    ]
    assert min(app.store.list_actions(), key=lambda a: a.id).reason == "birthday changed on the customer"


def test_a_greeting_in_quiet_hours_waits_for_their_end(plugin_app):
    app = plugin_app(greetings, settings={"greetings": {"send_hour": 22}})
    paid(app, order_of())
    app.clock.advance(datetime(2026, 3, 15, 22, tzinfo=UTC) - START)
    execute_due(app)
    (action,) = app.store.list_actions()
    assert action.state is ActionState.DUE and action.due_at == datetime(2026, 3, 16, 8, tzinfo=UTC)
    assert inbox(app) == []


def test_settings_are_checked_and_templates_render_in_every_locale(aftercare_app):
    with pytest.raises(ValidationError, match="expected month-day like '12-24'"):
        greetings.Settings(greetings=[{"date": "24/12", "template": "xmas"}])
    with pytest.raises(ValidationError, match="'02-30' is no day of the year"):
        greetings.Settings(greetings=[{"date": "02-30", "template": "xmas"}])
    with pytest.raises(ValidationError, match="template 'xmas' is given twice"):
        greetings.Settings(greetings=[{"date": "12-24", "template": "xmas"}, {"date": "12-25", "template": "xmas"}])
    assert greetings.Settings(greetings=[{"date": "02-29", "template": "leap"}]).greetings[0].month_day == (2, 29)
    assert greetings.Settings().longest_delay() == 365 * DAY  # check --live asks Shopify for read_all_orders
    assert check_templates(aftercare_app(greetings)) == []
