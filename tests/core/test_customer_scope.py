"""A customer's later orders, read from the customer history: ``ctx.cancel(..., scope="customer")``
withdraws the actions of the orders paid before the event, and ``Store.order_paid_after`` (the
``ordered_again`` fire-time check) names a later paid order; on SQLite and PostgreSQL."""

from datetime import timedelta

from aftercare.actions import ActionState, ReasonCode
from aftercare.context import ActionSink, Context, ShopProfile
from aftercare.settings import PluginSettings
from aftercare.testing import START, make_event, make_order

from .test_store import store  # noqa: F401  (the fixture: SQLite and PostgreSQL)

DAY = timedelta(days=1)


def dispatch(store, event, *, cancel=False):  # noqa: F811  (the fixture's name)
    """What a plugin "p" does on a paid order: withdraw the customer's earlier "k", ask for its own."""
    sink = ActionSink()
    ctx = Context(event=event, plugin="p", hook=event.kind.hook, shop=ShopProfile("test", "memory"),
                  settings=PluginSettings(), clock=lambda: START, sink=sink)  # fmt: skip
    if cancel:
        ctx.cancel("k", scope="customer", reason="ordered again")
    ctx.later(days=90).add_order_note("later", key="k")
    with store.transaction() as conn:
        store.add_events(conn, [event])
        store.record_customer_events(conn, [event])
        store.add_actions(conn, sink.requests)
        store.apply_cancellations(conn, sink.cancellations)


def states(store):  # noqa: F811
    return {a.order_id: (a.state, a.reason_code) for a in store.list_actions()}


def test_a_customer_scoped_cancel_withdraws_only_the_customers_earlier_orders(store):  # noqa: F811
    store.upgrade()
    first, other, second = make_order("1"), make_order("2", email="bo@example.com"), make_order("3")
    dispatch(store, make_event("order_paid", first, occurred_at=START))
    dispatch(store, make_event("order_paid", other, occurred_at=START + DAY), cancel=True)
    dispatch(store, make_event("order_paid", second, occurred_at=START + 2 * DAY), cancel=True)
    assert states(store) == {
        "order-1": (ActionState.DROPPED, ReasonCode.WITHDRAWN),
        "order-2": (ActionState.DUE, ReasonCode.NONE),  # another customer's
        "order-3": (ActionState.DUE, ReasonCode.NONE),  # the event's own
    }


def test_an_older_order_dispatched_late_withdraws_nothing_newer(store):  # noqa: F811
    store.upgrade()
    newer, older = make_order("2"), make_order("1")
    dispatch(store, make_event("order_paid", newer, occurred_at=START + 5 * DAY), cancel=True)
    dispatch(store, make_event("order_paid", older, occurred_at=START), cancel=True)
    assert states(store) == {
        "order-1": (ActionState.DUE, ReasonCode.NONE),
        "order-2": (ActionState.DUE, ReasonCode.NONE),
    }
    assert store.order_paid_after("test", " Ana@Example.com", "order-1") == "order-2"
    assert store.order_paid_after("test", "ana@example.com", "order-2") == ""


def test_a_later_order_cancelled_is_not_ordering_again(store):  # noqa: F811
    store.upgrade()
    older, newer = make_order("1"), make_order("2")
    dispatch(store, make_event("order_paid", older, occurred_at=START))
    dispatch(store, make_event("order_paid", newer, occurred_at=START + DAY))
    with store.transaction() as conn:
        store.record_customer_events(conn, [make_event("order_cancelled", newer, occurred_at=START + 2 * DAY)])
    assert store.order_paid_after("test", "ana@example.com", "order-1") == ""
