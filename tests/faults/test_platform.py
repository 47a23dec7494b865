"""Platform faults on the shared serve (SQLite): the Shopify sandbox answering 429 with
Retry-After, a 5xx, never answering, and GraphQL ``userErrors`` to the coupon mutation."""

import time

import pytest

from aftercare.sandbox.shopify import ApiFault

from .conftest import wait_for

pytestmark = [pytest.mark.faults, pytest.mark.xdist_group("faults")]  # one test process runs them in turn


def test_a_short_retry_after_is_waited_out_in_the_call_and_the_coupon_made_once(shared):
    shared.shop.fail_next(ApiFault(status=429, retry_after=0.5))
    orders = shared.place_orders(3)
    shared.done(orders)
    assert [f.status for f in shared.shop.faults_given[-1:]] == [429]
    shared.assert_promises(orders)


def test_a_long_retry_after_goes_back_to_the_schedule_and_holds_up_no_other_order(shared):
    shared.shop.fail_next(ApiFault(status=429, retry_after=30))
    throttled = shared.place_orders(1)

    def rescheduled():
        [coupon] = shared.coupons_of(throttled) or [None]
        return coupon is not None and coupon.state == "due" and coupon.attempts == 1

    wait_for(rescheduled, what="the throttled coupon back on the schedule")
    started = time.monotonic()
    others = shared.place_orders(2)
    shared.done(others)  # while the throttled coupon waits its 30 s, no thread waits with it
    assert time.monotonic() - started < 10
    [coupon] = shared.coupons_of(throttled)
    assert coupon.state == "due" and ("429" in coupon.reason or "throttl" in coupon.reason.lower()), coupon.reason
    shared.done(throttled, retries_due=True)
    shared.assert_promises(throttled + others)


@pytest.mark.parametrize("status", [502, 503])
def test_a_server_error_is_retried_and_the_coupon_made_once(shared, status):
    shared.shop.fail_next(ApiFault(status=status), ApiFault(status=status))
    orders = shared.place_orders(2)
    shared.done(orders, retries_due=True)
    assert status in [f.status for f in shared.shop.faults_given]
    shared.assert_promises(orders)


def test_a_platform_that_never_answers_times_out_and_the_coupon_is_still_made_once(shared):
    # The mutation is done, but its answer comes after the adapter's 1 s read timeout: the
    # retry must find the coupon, not make a second one.
    shared.shop.fail_next(ApiFault(delay=2.5))
    orders = shared.place_orders(2)
    shared.done(orders, timeout=30, retries_due=True)
    assert [f.delay for f in shared.shop.faults_given[-1:]] == [2.5]
    shared.assert_promises(orders)


def test_user_errors_fail_the_coupon_for_good_and_its_mail_is_not_sent(shared):
    shared.shop.fail_next(ApiFault(user_errors="Ends at needs to be after starts_at"))
    orders = shared.place_orders(1)

    def failed():
        coupons = shared.coupons_of(orders)
        return coupons and coupons[0].state == "failed"

    wait_for(failed, what="the coupon failed")
    [coupon] = shared.coupons_of(orders)
    assert "Ends at needs to be after starts_at" in coupon.reason and coupon.attempts == 1, coupon.reason
    wait_for(lambda: all(m.state in ("failed", "dropped") for m in shared.mails_of(orders)), what="its mail given up")
    assert not {m.idempotency_key for m in shared.mails_of(orders)} & set(shared.smtp.keys())
    shared.assert_promises(orders)
