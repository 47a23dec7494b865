"""warranty_reminder: exactly days_before the end of a warranty that starts at delivery (or shipping)."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from aftercare.actions import ActionKind, ActionState, Recheck
from aftercare.context import ActionSink, Context
from aftercare.dispatch import Dispatcher, execute_due
from aftercare.mail.templates import check_templates
from aftercare.models import FinancialStatus, LineItem, Money, Refund, ReturnRequest, ShipmentStatus
from aftercare.plugins import warranty_reminder
from aftercare.plugins.warranty_reminder import add_months
from aftercare.testing import START, make_event, sample_order

from .conftest import inbox

DAY = timedelta(days=1)
GROUPS = {
    "grinders": {"skus": ["GRIND-1"], "months": 24, "days_before": 30},
    "shirts": {"title_keywords": ["ship your idea"], "months": 6, "days_before": 7},
    "ipods": {"product_ids": ["632910392"], "months": 12, "days_before": 10},
}
GRINDER = LineItem("318", "Molinillo de café", 1, Money(Decimal("89.00"), "USD"), "prod-9", "var-9", "GRIND-1")


def actions(app):
    records = sorted(app.store.list_actions(), key=lambda a: a.id)
    return [(a.kind, a.key, a.due_at, a.state, a.reason) for a in records]


def woo_order_with_a_grinder():
    base = sample_order("woocommerce_order_completed")
    parcel = replace(base.shipments[0], carrier="Correos", shipped_at=START)
    customer = replace(base.customer, first_name="Lucía", locale="es")
    return replace(base, customer=customer, lines=(*base.lines, GRINDER), shipments=(parcel,))


def deliver(app, order, at):
    arrived = replace(order, shipments=(replace(order.shipments[0], status=ShipmentStatus.DELIVERED, delivered_at=at),))
    app.adapter("test").put_order(arrived)
    dispatcher = Dispatcher(app)
    dispatcher.dispatch(make_event("order_paid", order))
    dispatcher.dispatch(make_event("shipped", order))
    app.clock.advance(at - app.now())
    dispatcher.dispatch(make_event("delivered", arrived, occurred_at=at))
    return arrived


def test_the_reminder_falls_due_exactly_days_before_the_end_of_a_warranty_from_delivery_in_spanish(plugin_app):
    settings = {"warranty_reminder": {"groups": GROUPS, "claim_url": "https://tienda.example/garantia"}}
    app = plugin_app(warranty_reminder, settings=settings)
    deliver(app, woo_order_with_a_grinder(), START + 2 * DAY)

    delivered_at = datetime(2026, 1, 7, 9, 0, tzinfo=UTC)
    grinder_due = datetime(2028, 1, 7, 9, 0, tzinfo=UTC) - timedelta(days=30)
    shirt_due = datetime(2026, 7, 7, 9, 0, tzinfo=UTC) - timedelta(days=7)
    moved = "rescheduled by on_delivered"  # one reminder per group: the one from shipping, moved
    assert actions(app) == [
        (ActionKind.SEND_EMAIL, "warranty:grinders", grinder_due, ActionState.DUE, moved),
        (ActionKind.SEND_EMAIL, "warranty:shirts", shirt_due, ActionState.DUE, moved),
    ]
    assert grinder_due == datetime(2027, 12, 8, 9, 0, tzinfo=UTC)
    assert {a.rechecks for a in app.store.list_actions()} == {
        (Recheck.CANCELLED, Recheck.UNSUBSCRIBED, Recheck.LINES_REFUNDED)
    }

    app.clock.advance(shirt_due - app.now())
    execute_due(app)
    app.clock.advance(grinder_due - app.now() - timedelta(minutes=1))
    execute_due(app)
    assert len(inbox(app)) == 1  # the grinder's is not a minute early
    app.clock.advance(timedelta(minutes=1))
    execute_due(app)

    shirt, grinder = inbox(app)
    assert shirt.subject == "La garantía de Ship Your Idea – Color: Black, Size: M Test termina el 7 de julio de 2026"
    assert grinder.key == "test/warranty_reminder/send_email/order:727/warranty:grinders"
    assert grinder.subject == "La garantía de Molinillo de café termina el 7 de enero de 2028"
    assert "Hola, Lucía:" in grinder.text
    assert (
        "La garantía de 24 meses de lo que compraste en el pedido 727 termina el 7 de enero de 2028:\n"
        "- 1 × Molinillo de café" in grinder.text
    )
    assert "Solicitar la garantía: https://tienda.example/garantia" in grinder.text
    assert 'href="https://tienda.example/garantia"' in grinder.html
    (record,) = [a for a in app.store.list_actions() if a.key == "warranty:grinders"]
    assert record.payload["context"]["starts_at"] == delivered_at.isoformat()
    assert record.payload["context"]["ends_at"] == "2028-01-07T09:00:00+00:00"


def test_without_a_delivery_the_warranty_starts_at_shipping_in_bulgarian(plugin_app):
    app = plugin_app(warranty_reminder, settings={"warranty_reminder": {"groups": GROUPS}})
    base = sample_order("shopify_order_paid_fulfilled")
    order = replace(
        base,
        customer=replace(base.customer, first_name="Мария", locale="bg"),
        shipments=(replace(base.shipments[0], shipped_at=START),),
    )
    app.adapter("test").put_order(order)
    Dispatcher(app).dispatch(make_event("shipped", order))
    due = datetime(2027, 1, 5, 9, 0, tzinfo=UTC) - timedelta(days=10)
    assert actions(app) == [(ActionKind.SEND_EMAIL, "warranty:ipods", due, ActionState.DUE, "")]

    app.clock.advance(due - app.now())
    execute_due(app)
    (mail,) = inbox(app)
    assert mail.subject == "Гаранцията на IPod Nano - 8GB изтича на 5 януари 2027 г."
    assert "Здравейте, Мария," in mail.text
    assert "Гаранцията от 12 месеца на това, което купихте с поръчка #1002, изтича на 5 януари 2027 г." in mail.text
    assert "За рекламация отговорете на този имейл" in mail.text  # no claim_url set


def test_returning_one_product_withdraws_its_reminder_only(plugin_app):
    app = plugin_app(warranty_reminder, settings={"warranty_reminder": {"groups": GROUPS}})
    arrived = deliver(app, woo_order_with_a_grinder(), START + 2 * DAY)
    returning = replace(arrived, returns=(ReturnRequest("ret-1", START + 5 * DAY, line_item_ids=("318",)),))
    app.clock.advance(3 * DAY)
    Dispatcher(app).dispatch(make_event("return_requested", returning))

    states = {key: (state, reason) for _kind, key, _due, state, reason in actions(app)}
    assert states["warranty:grinders"] == (
        ActionState.DROPPED,
        "its products are being returned: no warranty reminder for grinders",
    )
    assert states["warranty:shirts"] == (ActionState.DUE, "rescheduled by on_delivered")

    app.adapter("test").put_order(returning)  # a return of another product does not void this warranty
    app.clock.advance(datetime(2026, 6, 30, 9, 0, tzinfo=UTC) - app.now())
    execute_due(app)
    assert [mail.subject for mail in inbox(app)] == [
        "La garantía de Ship Your Idea – Color: Black, Size: M Test termina el 7 de julio de 2026"
    ]


def grinder_refunded(order, at, *, lines_known=True):
    refund = Refund("27", at, Money(Decimal("89.00"), "USD"), "defective", ("318",) if lines_known else (),
                    lines_known=lines_known)  # fmt: skip
    return replace(order, refunds=(refund,), financial_status=FinancialStatus.PARTIALLY_REFUNDED)


def test_refunding_one_product_withdraws_its_reminder_only(plugin_app):
    app = plugin_app(warranty_reminder, settings={"warranty_reminder": {"groups": GROUPS}})
    arrived = deliver(app, woo_order_with_a_grinder(), START + 2 * DAY)
    refunded = grinder_refunded(arrived, START + 5 * DAY)
    app.clock.advance(3 * DAY)
    Dispatcher(app).dispatch(make_event("refunded", refunded))
    states = {key: (state, reason) for _kind, key, _due, state, reason in actions(app)}
    assert states["warranty:grinders"] == (
        ActionState.DROPPED,
        "its products were refunded: no warranty reminder for grinders",
    )
    assert states["warranty:shirts"] == (ActionState.DUE, "rescheduled by on_delivered")


def test_a_product_refunded_unseen_is_caught_when_its_reminder_falls_due(plugin_app):
    """The refund's event said nothing of its lines (WooCommerce's order summary), or
    was never seen: the order re-read at fire time has them, and the reminder is dropped."""
    app = plugin_app(warranty_reminder, settings={"warranty_reminder": {"groups": GROUPS}})
    arrived = deliver(app, woo_order_with_a_grinder(), START + 2 * DAY)
    unknown = grinder_refunded(arrived, START + 5 * DAY, lines_known=False)
    Dispatcher(app).dispatch(make_event("refunded", unknown))
    assert {state for _kind, _key, _due, state, _reason in actions(app)} == {ActionState.DUE}

    app.adapter("test").put_order(grinder_refunded(arrived, START + 5 * DAY))  # what the shop says when re-read
    for due in (datetime(2026, 6, 30, 9, 0, tzinfo=UTC), datetime(2027, 12, 8, 9, 0, tzinfo=UTC)):
        app.clock.advance(due - app.now())
        execute_due(app)
    states = {key: (state, reason) for _kind, key, _due, state, reason in actions(app)}
    assert states["warranty:grinders"] == (
        ActionState.DROPPED,
        "fire-time check: the products it is about were refunded",
    )
    assert states["warranty:shirts"][0] is ActionState.DONE
    assert [mail.subject for mail in inbox(app)] == [
        "La garantía de Ship Your Idea – Color: Black, Size: M Test termina el 7 de julio de 2026"
    ]


def test_a_product_refunded_before_it_shipped_gets_no_reminder(plugin_app):
    app = plugin_app(warranty_reminder, settings={"warranty_reminder": {"groups": GROUPS}})
    order = grinder_refunded(woo_order_with_a_grinder(), START)
    app.adapter("test").put_order(order)
    requests = Dispatcher(app).dispatch(make_event("shipped", order)).requests
    assert [request.key for request in requests] == ["warranty:shirts"]
    shirt = next(line for line in order.lines if "Ship Your Idea" in line.title)
    assert requests[0].payload["line_item_ids"] == [shirt.platform_id]


def test_a_delivery_reported_after_the_reminder_from_shipping_fell_due_changes_nothing(plugin_app):
    app = plugin_app(warranty_reminder, settings={"warranty_reminder": {"groups": GROUPS}})
    order = woo_order_with_a_grinder()
    app.adapter("test").put_order(order)
    Dispatcher(app).dispatch(make_event("shipped", order))
    shirt_due = datetime(2026, 7, 5, 9, 0, tzinfo=UTC) - timedelta(days=7)  # six months from shipping
    app.clock.advance(shirt_due - app.now())
    execute_due(app)
    arrived = replace(order, shipments=(replace(order.shipments[0], status=ShipmentStatus.DELIVERED,
                                                delivered_at=app.now()),))  # fmt: skip
    Dispatcher(app).dispatch(make_event("delivered", arrived, occurred_at=app.now()))
    execute_due(app)
    assert [mail.subject for mail in inbox(app)] == [
        "La garantía de Ship Your Idea – Color: Black, Size: M Test termina el 5 de julio de 2026"
    ]
    states = {key: state for _kind, key, _due, state, _reason in actions(app)}
    assert states == {"warranty:shirts": ActionState.DONE, "warranty:grinders": ActionState.DUE}


def test_a_reminder_recorded_under_the_old_fallback_key_is_withdrawn_at_delivery(plugin_app):
    """Before one key per group, the reminder from shipping had its own key: an order
    shipped before an upgrade and delivered after it must still get one reminder."""
    app = plugin_app(warranty_reminder, settings={"warranty_reminder": {"groups": GROUPS}})
    order = woo_order_with_a_grinder()
    shipped = make_event("shipped", order)
    sink = ActionSink()
    ctx = Context(event=shipped, plugin="warranty_reminder", hook="on_shipped", shop=app.shop("test").profile,
                  settings=app.shop("test").plugin_settings["warranty_reminder"], clock=app.now, sink=sink)  # fmt: skip
    ctx.later(days=600).send_email("warranty_reminder", key="warranty-fallback:grinders")
    with app.store.transaction() as conn:
        app.store.add_actions(conn, sink.requests)
    deliver(app, order, START + 2 * DAY)
    states = {key: state for _kind, key, _due, state, _reason in actions(app)}
    assert states["warranty-fallback:grinders"] is ActionState.DROPPED
    assert states["warranty:grinders"] is ActionState.DUE


def test_a_warranty_that_has_already_ended_gets_no_reminder(plugin_app):
    app = plugin_app(warranty_reminder, settings={"warranty_reminder": {"groups": GROUPS}})
    order = sample_order("shopify_order_paid_fulfilled")  # shipped in April 2025: 12 months ended in April 2026
    app.clock.advance(datetime(2026, 5, 1, tzinfo=UTC) - app.now())
    assert Dispatcher(app).dispatch(make_event("shipped", order)).requests == []


def test_add_months_keeps_the_time_and_clamps_the_day():
    moment = datetime(2024, 1, 31, 14, 30, tzinfo=UTC)
    assert add_months(moment, 1) == datetime(2024, 2, 29, 14, 30, tzinfo=UTC)
    assert add_months(moment, 13) == datetime(2025, 2, 28, 14, 30, tzinfo=UTC)
    assert add_months(moment, 24) == datetime(2026, 1, 31, 14, 30, tzinfo=UTC)
    assert add_months(datetime(2025, 11, 15, tzinfo=UTC), 2) == datetime(2026, 1, 15, tzinfo=UTC)


def test_off_until_enabled_and_templates_check_clean(aftercare_app):
    app = aftercare_app(warranty_reminder, settings={"warranty_reminder": {"groups": GROUPS}})
    assert Dispatcher(app).dispatch(make_event("shipped", woo_order_with_a_grinder())).requests == []
    assert check_templates(app) == []
