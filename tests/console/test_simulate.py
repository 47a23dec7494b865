"""`aftercare simulate`: a hand-counted history replayed through a raised coupon minimum."""

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import aftercare.plugins.coupon as coupon
from aftercare import hookimpl
from aftercare.actions import ActionState
from aftercare.console.simulate import simulate
from aftercare.dispatch import Dispatcher, execute_due
from aftercare.models import Money, ReturnRequest
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


# -- the replay decides as the worker did, at each action's time (issue #20) -------------------


class Busy:
    """A thank-you mail at once and another two days later; a return withdraws the later one."""

    name = "busy"

    @hookimpl
    def on_order_paid(self, event, ctx):
        ctx.send_email("thank_you", key="thanks")
        ctx.later(days=2).send_email("thank_you", key="later")

    @hookimpl
    def on_return_requested(self, event, ctx):
        ctx.cancel("later", reason="a return was requested")


def lived(app, hours):
    """Let ``hours`` pass an hour at a time with the worker running due actions, as a real deployment."""
    for _ in range(hours):
        app.clock.advance(timedelta(hours=1))
        execute_due(app)


def busy_week(tmp_path, password_hash=None):
    from ..console.conftest import make_app

    app = make_app(tmp_path, plugins=[("busy", Busy())])  # north: frequency cap 3 in 7 days, quiet 21:00-08:00 UTC
    dispatcher = Dispatcher(app)

    def paid(number, email):
        order = make_order(number, shop_id="north", email=email, created_at=app.now())
        app.adapter("north").put_order(order)
        dispatcher.dispatch(make_event("order_paid", order, occurred_at=app.now(), key=f"paid-{number}"))
        execute_due(app)
        return order

    for n in range(5):  # ana: five orders in five hours; her fourth and later mails hit the cap
        paid(f"a{n}", "ana@example.com")
        lived(app, 1)
    bobs = paid("b1", "bob@example.com")  # bob's later mail goes out on day 2...
    lived(app, 60)
    returning = replace(bobs, returns=(ReturnRequest("r-1", app.now(), reason="unwanted"),))
    app.adapter("north").put_order(returning)  # ...and on day 3 he returns the order: too late to matter
    dispatcher.dispatch(make_event("return_requested", returning, occurred_at=app.now(), key="return-b1"))
    lived(app, 12 - app.now().hour + 10)  # to 22:00, in quiet hours
    paid("c1", "cy@example.com")  # cy's mail waits for 08:00
    lived(app, 24 * 3)
    return app


def test_with_the_config_unchanged_the_replay_reports_no_difference(tmp_path):
    from aftercare.actions import ReasonCode

    app = busy_week(tmp_path)
    mails = [a for a in app.store.list_actions(shop_id="north", limit=1000) if a.plugin == "busy"]
    assert sum(1 for a in mails if a.reason_code is ReasonCode.FREQUENCY_CAP) >= 2  # the cap did bite
    cy = next(a for a in mails if a.order_id == "order-c1" and a.key == "thanks")
    assert cy.state is ActionState.DONE and cy.updated_at.hour == 8  # quiet hours did defer it
    bob = next(a for a in mails if a.order_id == "order-b1" and a.key == "later")
    assert bob.state is ActionState.DONE  # sent before the return
    result = simulate(app, "north", 30, plugins=app.plugins)
    assert {d.plugin for d in result.plugins} == {"busy", "notes"}
    for diff in result.plugins:
        assert (diff.plugin, diff.gone, diff.added) == (diff.plugin, [], [])
        assert diff.recorded == diff.simulated > 0
    app.close()


def test_a_raised_frequency_cap_shows_exactly_the_mails_it_would_no_longer_drop(tmp_path):
    app = busy_week(tmp_path)
    capped = sorted(a.idempotency_key for a in app.store.list_actions(shop_id="north", limit=1000)
                    if a.reason.startswith("frequency cap"))  # fmt: skip
    raised = app.config.model_copy(update={"mail": app.config.mail.model_copy(update={"frequency_cap": 50})})
    diffs = {d.plugin: d for d in simulate(app, "north", 30, raised, plugins=app.plugins).plugins}
    assert sorted(line.key for line in diffs["busy"].added) == capped and diffs["busy"].gone == []
    assert (diffs["notes"].added, diffs["notes"].gone) == ([], [])
    app.close()


def test_the_what_if_page_is_a_plain_table(tmp_path, password_hash):
    from starlette.testclient import TestClient

    from aftercare.asgi import create_asgi_app
    from aftercare.queue import Enqueuer

    from ..console.conftest import add_user, login

    app = busy_week(tmp_path)
    add_user(app, "nora", ["north"], password_hash)
    with TestClient(create_asgi_app(app, Enqueuer.for_app(app)), base_url="http://127.0.0.1") as client:
        login(client, "nora")
        page = client.get("/console/shops/north/simulate").text
    app.close()
    assert "No difference: this config would do exactly what was recorded." in page
    assert "Line(" not in page and "datetime.datetime" not in page and "<td>busy</td>" in page
