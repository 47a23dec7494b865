"""SMTP faults on one shared serve (SQLite): the relay refusing (421, 451, 550), closing the
connection after DATA, and down. Each scenario places its own orders, sets one fault, checks
what became of those orders' mails, and puts the relay right again (the ``shared`` fixture)."""

import pytest
import sqlalchemy as sa

from aftercare.store import actions

from .conftest import wait_for

pytestmark = [pytest.mark.faults, pytest.mark.xdist_group("faults")]  # one test process runs them in turn


def test_a_healthy_relay_gets_each_mail_once(shared):
    orders = shared.place_orders(5)
    shared.done(orders)
    assert len(shared.smtp.keys()) >= 5
    shared.assert_promises(orders)


def mails_retried_later(stack, orders, why):
    """Each order's mail tried once and back on the schedule, its reason naming ``why``."""

    def retried():
        mails = stack.mails_of(orders)
        return len(mails) == len(orders) and all(m.state == "due" and m.attempts >= 1 for m in mails)

    wait_for(retried, what=f"the mails back on the schedule after {why}")
    assert all(why in m.reason for m in stack.mails_of(orders)), [m.reason for m in stack.mails_of(orders)]


@pytest.mark.parametrize("reply", ["421 4.3.2 service shutting down", "451 4.3.0 try again later"])
def test_a_relay_refusing_for_now_gets_each_mail_once_when_it_takes_them_again(shared, reply):
    shared.smtp.reply = reply
    orders = shared.place_orders(3)
    mails_retried_later(shared, orders, reply.split()[0])
    assert all(c.state == "done" for c in shared.coupons_of(orders))  # the coupons did not wait for the relay
    shared.smtp.reply = None
    shared.done(orders, retries_due=True)
    shared.assert_promises(orders)


def test_a_relay_refusing_for_good_fails_each_mail_once_with_its_reply(shared):
    shared.smtp.reply = "550 5.1.1 mailbox unavailable"
    orders = shared.place_orders(3)

    def failed():
        mails = shared.mails_of(orders)
        return len(mails) == 3 and all(m.state == "failed" for m in mails)

    wait_for(failed, what="the mails failed")
    mails = shared.mails_of(orders)
    assert all("550" in m.reason and m.attempts == 1 for m in mails), [(m.reason, m.attempts) for m in mails]
    assert not {m.idempotency_key for m in mails} & set(shared.smtp.keys())
    shared.assert_promises(orders)


def test_a_relay_closing_the_connection_after_data_never_gets_a_mail_twice(shared):
    shared.smtp.close_after_data = True
    orders = shared.place_orders(3)
    keys = lambda: {m.idempotency_key for m in shared.mails_of(orders)} & set(shared.smtp.keys())  # noqa: E731
    wait_for(lambda: len(keys()) == 3, what="the mails read by the relay")
    shared.smtp.close_after_data = False

    def settled():
        shared.let_retries_fall_due()
        return all(m.state in ("done", "failed") for m in shared.mails_of(orders))

    wait_for(settled, what="the mails' outcomes recorded")
    assert {m.state for m in shared.mails_of(orders)} == {"done"}  # sent, unconfirmed: not resent, not failed
    shared.assert_promises(orders)


def test_a_relay_that_is_down_gets_each_mail_once_when_it_is_back(shared):
    shared.smtp.stop()
    orders = shared.place_orders(3)
    mails_retried_later(shared, orders, "SMTP")
    shared.smtp.start(shared.smtp.last_port)
    shared.done(orders, retries_due=True)
    shared.assert_promises(orders)
    with shared.engine.connect() as conn:  # the refused attempts were counted, not lost
        attempts = conn.execute(sa.select(actions.c.attempts).where(actions.c.kind == "send_email",
                                actions.c.order_id.in_([str(o) for o in orders]))).scalars().all()  # fmt: skip
    assert all(a >= 2 for a in attempts), attempts
