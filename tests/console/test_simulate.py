"""`aftercare simulate`: a hand-counted history replayed through a raised coupon minimum."""

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import aftercare.plugins.coupon as coupon
from aftercare import hookimpl
from aftercare.console.simulate import simulate
from aftercare.dispatch import Dispatcher
from aftercare.models import Money
from aftercare.testing import make_event, make_order

# Four customers' paid orders in the last 30 days, and one older (outside the window).
TOTALS = {"1": "20.00", "2": "45.00", "3": "60.00", "4": "130.00"}


def history(app):
    dispatcher = Dispatcher(app)
    old = make_order("0", email="old@example.com", total=Money(Decimal("10.00"), "EUR"))
    dispatcher.dispatch(make_event("order_paid", old, occurred_at=app.now(), key="paid-0"))
    app.clock.advance(timedelta(days=40))
    for number, total in TOTALS.items():
        order = make_order(number, email=f"c{number}@example.com", created_at=app.now(),
                           total=Money(Decimal(total), "EUR"))  # fmt: skip
        dispatcher.dispatch(make_event("order_paid", order, occurred_at=app.now(), key=f"paid-{number}"))
        app.clock.advance(timedelta(days=1))


def test_raising_the_coupon_minimum_shows_exactly_the_coupons_no_longer_sent(aftercare_app):
    app = aftercare_app(coupon, settings={"coupon": {"enabled": True, "minimum_order": 0}})
    history(app)
    recorded_before = app.store.list_actions(limit=1000)

    same = simulate(app, "test", 30, plugins=app.plugins)
    (diff,) = same.plugins
    assert (same.events, diff.plugin, diff.recorded, diff.simulated) == (4, "coupon", 8, 8)  # a coupon + its mail each
    assert diff.gone == [] and diff.added == []

    raised = app.config.model_copy(update={"plugins": {"coupon": {"enabled": True, "minimum_order": "50"}}})
    result = simulate(app, "test", 30, raised, plugins=app.plugins)
    (diff,) = result.plugins
    assert (diff.recorded, diff.simulated) == (8, 4)
    assert sorted((line.order_id, line.kind) for line in diff.gone) == [
        ("order-1", "create_coupon"), ("order-1", "send_email"),
        ("order-2", "create_coupon"), ("order-2", "send_email"),
    ]  # fmt: skip
    assert diff.added == []
    assert app.store.list_actions(limit=1000) == recorded_before  # the real store was only read


def test_lowering_it_shows_the_new_ones(aftercare_app):
    app = aftercare_app(coupon, settings={"coupon": {"enabled": True, "minimum_order": 50}})
    history(app)
    lowered = app.config.model_copy(update={"plugins": {"coupon": {"enabled": True, "minimum_order": "40"}}})
    (diff,) = simulate(app, "test", 30, lowered, plugins=app.plugins).plugins
    assert sorted(line.order_id for line in diff.added) == ["order-2", "order-2"]
    assert diff.gone == []


def test_a_refund_after_the_fact_drops_the_delayed_action_in_the_replay(aftercare_app):
    from ..console.conftest import Notes

    app = aftercare_app(Notes())
    order = make_order("5", created_at=app.now())
    Dispatcher(app).dispatch(make_event("order_paid", order, occurred_at=app.now(), key="paid-5"))
    refunded = replace(order, financial_status=order.financial_status.REFUNDED)
    app.clock.advance(timedelta(days=1))
    Dispatcher(app).dispatch(make_event("order_paid", refunded, occurred_at=app.now(), key="paid-5-again"))
    app.clock.advance(timedelta(days=10))
    (diff,) = simulate(app, "test", 30, plugins=app.plugins).plugins
    # "paid" note twice-keyed once; the delayed "later" note would be dropped by the fire-time check (refunded).
    assert [line.key.rsplit("/", 1)[1] for line in diff.gone] == ["later"]


class _FeedPlatform:
    """A platform whose poll returns the orders below: the store has none of them yet."""

    @staticmethod
    def events(now):
        orders = [make_order(n, email=f"p{n}@example.com", created_at=now, total=Money(Decimal(t), "EUR"))
                  for n, t in (("7", "20.00"), ("8", "90.00"))]  # fmt: skip
        return [make_event("order_paid", o, occurred_at=now, key=f"order:{o.platform_id}:paid") for o in orders]

    @hookimpl
    def register_adapters(self, register):
        from aftercare.platform import PollBatch
        from aftercare.testing import MemoryAdapter

        class FeedAdapter(MemoryAdapter):
            platform = "feed"

            def poll(self, cursor, since=None):
                yield PollBatch(_FeedPlatform.events(self.now() - timedelta(days=1)), cursor="end", orders_seen=2)

        register(FeedAdapter)


def test_a_store_without_the_period_replays_what_a_poll_of_the_platform_returns(aftercare_app):
    feed = _FeedPlatform()
    feed.name = "feed-platform"
    app = aftercare_app(coupon, feed, settings={"coupon": {"enabled": True}}, shop={"platform": "feed"})
    raised = app.config.model_copy(update={"plugins": {"coupon": {"enabled": True, "minimum_order": 50}}})
    result = simulate(app, "test", 30, raised, plugins=app.plugins)
    assert result.events == 2
    (diff,) = [d for d in result.plugins if d.plugin == "coupon"]
    assert (diff.recorded, diff.simulated) == (0, 2)  # the mail and coupon of the 90.00 order
    assert {line.order_id for line in diff.added} == {"order-8"}
    assert app.store.list_events() == [] and app.store.get_cursor("test") is None  # the store was only read
