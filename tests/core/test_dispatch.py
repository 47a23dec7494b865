"""Dispatch and execution: idempotency, isolation, dry runs, fire-time checks."""

from dataclasses import replace
from datetime import timedelta

import pytest

from aftercare import hookimpl
from aftercare.actions import ActionDropped, ActionKind, ActionState, ReasonCode
from aftercare.dispatch import Dispatcher, execute_action, execute_due
from aftercare.models import ConsentState
from aftercare.platform import PlatformError
from aftercare.store import SuppressionReason
from aftercare.testing import START, make_event, make_order

from .plugins_for_tests import Broken, Mailbox, ThankYou


def states(app):
    return {(a.plugin, a.kind.value): (a.state.value, a.reason) for a in app.store.list_actions()}


def test_dispatching_the_same_event_twice_executes_its_actions_once(aftercare_app):
    mailbox = Mailbox()
    app = aftercare_app(ThankYou(), mailbox)
    event = make_event("order_paid", make_order())
    first = Dispatcher(app).dispatch(event)
    execute_due(app)
    second = Dispatcher(app).dispatch(event)
    execute_due(app)

    assert first.new_event and not second.new_event
    assert len(first.new_actions) == 3 and second.new_actions == set()
    adapter = app.adapter("test")
    assert len(adapter.coupons) == 1
    assert len(mailbox.sent) == 1
    (code,) = adapter.coupons
    assert mailbox.sent[0]["context"] == {"code": code}  # the mail carries the code that exists
    assert mailbox.sent[0]["locale"] == "es"


def test_a_raising_plugin_does_not_stop_the_others_and_can_be_retried_alone(aftercare_app):
    broken, mailbox = Broken(), Mailbox()
    app = aftercare_app(broken, ThankYou(), mailbox)
    dispatcher = Dispatcher(app)
    outcome = dispatcher.dispatch(make_event("order_paid", make_order()))

    runs = {r.plugin: r for r in app.store.hook_runs_for(outcome.event_id)}
    assert runs["broken"].outcome == "failed" and runs["broken"].error == "RuntimeError: boom"
    assert runs["thank_you"].outcome == "ok" and runs["thank_you"].actions_requested == 3
    assert all(a.plugin == "thank_you" for a in app.store.list_actions())  # half-made request dropped

    broken.fail = False
    retried = dispatcher.retry_failed_hooks(outcome.event_id)
    assert [r.plugin for r in retried.results.runs] == ["broken"]
    assert {a.plugin for a in app.store.list_actions()} == {"thank_you", "broken"}
    assert app.store.failed_hook_runs(outcome.event_id) == []
    assert dispatcher.retry_failed_hooks(outcome.event_id) is None


def test_disabled_plugin_does_not_run(aftercare_app):
    broken = Broken()
    app = aftercare_app(broken, ThankYou(), settings={"broken": {"enabled": False}})
    Dispatcher(app).dispatch(make_event("order_paid", make_order()))
    assert broken.calls == 0


def test_shop_override_beats_global_setting(aftercare_app):
    app = aftercare_app(
        ThankYou(), settings={"thank_you": {"percent": 15}}, shop={"plugins": {"thank_you": {"percent": 20}}}
    )
    requests = Dispatcher(app).dispatch(make_event("order_paid", make_order())).requests
    coupon = next(r for r in requests if r.kind is ActionKind.CREATE_COUPON)
    assert coupon.payload["value"] == "20"


def test_non_production_shop_records_but_never_executes(aftercare_app):
    mailbox = Mailbox()
    app = aftercare_app(ThankYou(), mailbox, shop={"production": False})
    Dispatcher(app).dispatch(make_event("order_paid", make_order()))
    execute_due(app)
    assert mailbox.sent == [] and app.adapter("test").coupons == {}
    reason = states(app)[("thank_you", "create_coupon")]
    assert reason == ("dropped", "dry run: shop 'test' is not marked production = true")


def test_delayed_action_waits_then_fires(aftercare_app):
    app = aftercare_app(ThankYou(), Mailbox())
    order = make_order()
    app.adapter("test").put_order(order)
    Dispatcher(app).dispatch(make_event("order_paid", order))
    execute_due(app)
    assert states(app)[("thank_you", "add_order_note")][0] == "due"
    app.clock.advance(timedelta(days=7))
    execute_due(app)
    assert states(app)[("thank_you", "add_order_note")] == ("done", "")
    assert app.adapter("test").notes == {order.platform_id: ["a week has passed"]}


def test_fire_time_check_drops_action_when_the_platform_says_unsubscribed(aftercare_app):
    """The re-read order's customer consent counts too (WooCommerce reads it from the
    customer record then), not only the consent aftercare recorded itself."""
    app = aftercare_app(ThankYou(), Mailbox())
    order = make_order()
    Dispatcher(app).dispatch(make_event("order_paid", order))
    gone = replace(order.customer, marketing_consent=ConsentState.UNSUBSCRIBED)
    app.adapter("test").put_order(replace(order, customer=gone))
    app.clock.advance(timedelta(days=8))
    execute_due(app)
    assert states(app)[("thank_you", "add_order_note")] == (
        "dropped",
        "fire-time check: the customer unsubscribed (the platform says so)",
    )


def test_fire_time_check_drops_action_for_cancelled_order(aftercare_app):
    app = aftercare_app(ThankYou(), Mailbox())
    order = make_order()
    Dispatcher(app).dispatch(make_event("order_paid", order))
    app.adapter("test").put_order(replace(order, cancelled_at=START + timedelta(days=1)))
    app.clock.advance(timedelta(days=8))
    execute_due(app)
    assert states(app)[("thank_you", "add_order_note")] == ("dropped", "fire-time check: the order was cancelled")
    assert app.adapter("test").notes == {}


def test_cancel_withdraws_due_actions(aftercare_app):
    app = aftercare_app(ThankYou(), Mailbox())
    order = make_order()
    Dispatcher(app).dispatch(make_event("order_paid", order))
    Dispatcher(app).dispatch(make_event("order_cancelled", order))
    assert states(app)[("thank_you", "add_order_note")] == ("dropped", "order cancelled")


def test_transient_failure_is_retried_later_and_permanent_one_kept_with_its_text(aftercare_app):
    mailbox = Mailbox()
    app = aftercare_app(ThankYou(), mailbox)
    adapter = app.adapter("test")
    adapter.fail_next(PlatformError("503 Service Unavailable", transient=True, retry_after=120))
    Dispatcher(app).dispatch(make_event("order_paid", make_order()))
    execute_due(app)
    state, reason = states(app)[("thank_you", "create_coupon")]
    assert state == "due" and "503" in reason
    assert mailbox.sent == []  # the mail waits for its coupon

    app.clock.advance(timedelta(hours=1))
    execute_due(app)  # coupon goes through, mail waits one more round for it
    app.clock.advance(timedelta(minutes=2))
    execute_due(app)
    assert states(app)[("thank_you", "create_coupon")] == ("done", "")
    assert len(mailbox.sent) == 1

    other = aftercare_app(ThankYou(), Mailbox())
    other.adapter("test").fail_next(PlatformError("Code has already been taken", transient=False))
    Dispatcher(other).dispatch(make_event("order_paid", make_order()))
    execute_due(other)
    other.clock.advance(timedelta(minutes=2))
    execute_due(other)
    assert states(other)[("thank_you", "create_coupon")] == ("failed", "Code has already been taken")
    state, reason = states(other)[("thank_you", "send_email")]
    assert state == "dropped" and "Code has already been taken" in reason


def test_actions_of_one_worker_are_not_run_by_another(aftercare_app):
    app = aftercare_app(ThankYou(), Mailbox())
    Dispatcher(app).dispatch(make_event("order_paid", make_order()))
    (coupon,) = [a for a in app.store.due_actions(app.now()) if a.kind is ActionKind.CREATE_COUPON]
    assert app.store.claim_action(coupon.id)
    assert not app.store.claim_action(coupon.id)
    assert app.store.get_action(coupon.id).state is ActionState.RUNNING


def test_a_later_channel_registration_replaces_the_built_in_one(aftercare_app):
    class NoteKeeper:
        name = "note_keeper"
        notes = []

        @hookimpl
        def register_channels(self, register):
            register("add_order_note", lambda action, app: self.notes.append(action.payload["text"]) or {})

    keeper = NoteKeeper()
    app = aftercare_app(ThankYou(), Mailbox(), keeper)
    order = make_order()
    app.adapter("test").put_order(order)
    Dispatcher(app).dispatch(make_event("order_paid", order))
    app.clock.advance(timedelta(days=7))
    execute_due(app)
    assert keeper.notes == ["a week has passed"] and app.adapter("test").notes == {}


def test_action_log_lines_never_carry_the_customers_address(aftercare_app, caplog):
    class Refuses:
        name = "refuses"

        @hookimpl
        def register_channels(self, register):
            def refuse(action, app):
                raise ActionDropped(f"suppressed: unsubscribed {action.payload['to']}")

            register("send_email", refuse)

    app = aftercare_app(ThankYou(), Refuses())
    Dispatcher(app).dispatch(make_event("order_paid", make_order(email="ana.garcia@example.com")))
    caplog.set_level("INFO", logger="aftercare.dispatch")
    execute_due(app)
    app.clock.advance(timedelta(minutes=2))
    execute_due(app)
    assert states(app)[("thank_you", "send_email")] == ("dropped", "suppressed: unsubscribed ana.garcia@example.com")
    lines = [r.getMessage() for r in caplog.records if "action=send_email" in r.getMessage()]
    assert lines and all("ana.garcia" not in line and "<address>" in line for line in lines)


def test_a_mail_waiting_for_its_coupon_goes_as_soon_as_the_coupon_is_done(aftercare_app):
    mailbox = Mailbox()
    app = aftercare_app(ThankYou(), mailbox)
    Dispatcher(app).dispatch(make_event("order_paid", make_order()))
    due = {a.kind: a for a in app.store.due_actions(app.now())}
    execute_action(app, due[ActionKind.SEND_EMAIL])  # another worker got to the mail first
    assert states(app)[("thank_you", "send_email")][1].startswith("waiting for test/thank_you/create_coupon/")
    execute_action(app, due[ActionKind.CREATE_COUPON])  # no clock moved: the mail follows its coupon
    assert states(app)[("thank_you", "send_email")] == ("done", "")
    assert len(mailbox.sent) == 1
    mail = next(a for a in app.store.list_actions() if a.kind is ActionKind.SEND_EMAIL)
    assert mail.attempts == 1  # waiting for the coupon was not an attempt


def test_a_coupon_done_while_its_mail_looks_is_not_missed(aftercare_app, monkeypatch):
    """The mail's worker reads the coupon as running; another worker finishes it (and releases
    what waits: nothing yet) before the mail is put back. The mail must go now, not in a minute."""
    mailbox = Mailbox()
    app = aftercare_app(ThankYou(), mailbox)
    Dispatcher(app).dispatch(make_event("order_paid", make_order()))
    due = {a.kind: a for a in app.store.due_actions(app.now())}
    coupon = due[ActionKind.CREATE_COUPON]
    execute_action(app, coupon)
    read_before_it_finished = replace(coupon, state=ActionState.RUNNING)
    monkeypatch.setattr(app.store, "actions_by_keys", lambda keys: [read_before_it_finished])
    execute_action(app, due[ActionKind.SEND_EMAIL])
    assert states(app)[("thank_you", "send_email")] == ("done", "")
    assert len(mailbox.sent) == 1


class ReviewAsk:
    """14 days after shipping, or 7 after delivery when it is reported: one key."""

    name = "review_ask"

    @hookimpl
    def on_shipped(self, event, ctx):
        ctx.later(days=14).add_order_note("how was it?", key="review")

    @hookimpl
    def on_delivered(self, event, ctx):
        ctx.later(days=7, reschedule=True).add_order_note("how was it?", key="review")


def test_reschedule_moves_a_due_action_and_leaves_one_that_ran(aftercare_app):
    app = aftercare_app(ReviewAsk())
    order = make_order()
    app.adapter("test").put_order(order)
    dispatcher = Dispatcher(app)
    dispatcher.dispatch(make_event("shipped", order))
    app.clock.advance(timedelta(days=2))
    dispatcher.dispatch(make_event("delivered", order))
    (review,) = app.store.list_actions()
    assert review.due_at == START + timedelta(days=9) and review.reason == "rescheduled by on_delivered"
    app.clock.advance(timedelta(days=7))
    execute_due(app)
    assert app.adapter("test").notes == {order.platform_id: ["how was it?"]}

    late = make_order("2002")  # delivery reported after the fallback already went out
    app.adapter("test").put_order(late)
    dispatcher.dispatch(make_event("shipped", late))
    app.clock.advance(timedelta(days=15))
    execute_due(app)
    dispatcher.dispatch(make_event("delivered", late))
    execute_due(app)
    assert app.adapter("test").notes[late.platform_id] == ["how was it?"]  # once, not twice
    assert [a.state.value for a in app.store.list_actions(order_id=late.platform_id)] == ["done"]


def test_dispatch_and_the_what_if_judge_a_due_action_by_the_same_fire_time_rule(aftercare_app):
    from aftercare.console.simulate import _would_go
    from aftercare.dispatch import fire_time_check
    from aftercare.models import FinancialStatus, ReturnRequest

    app = aftercare_app(ThankYou(), Mailbox())
    order = make_order()
    Dispatcher(app).dispatch(make_event("order_paid", order))
    (note,) = [a for a in app.store.list_actions() if a.kind is ActionKind.ADD_ORDER_NOTE]
    unsubscribed = replace(order.customer, marketing_consent=ConsentState.UNSUBSCRIBED)
    now = app.now() + timedelta(days=30)
    for changed, reason in [
        (order, ""),
        (replace(order, cancelled_at=START), "fire-time check: the order was cancelled"),
        (replace(order, financial_status=FinancialStatus.REFUNDED), "fire-time check: the order was refunded"),
        (replace(order, returns=(ReturnRequest("r-1", START),)), "fire-time check: a return was requested"),
        (replace(order, customer=unsubscribed), "fire-time check: the customer unsubscribed (the platform says so)"),
    ]:
        app.adapter("test").put_order(changed)
        assert fire_time_check(app, note) == reason
        assert _would_go(note, changed, now) is (reason == "")


class OrderReader:
    """A ``send_email`` channel of the current kind: ``executor(job)``, reading the order twice."""

    def __init__(self):
        self.orders = []

    @hookimpl
    def register_channels(self, register):
        register("send_email", self.send)

    def send(self, job):
        self.orders += [job.order, job.order]
        return {"message_id": f"<{job.action.id}@test>", "sender": job.mail_settings.sender}


def test_a_channel_gets_the_order_from_the_dispatcher_loaded_once(aftercare_app, monkeypatch):
    import aftercare.dispatch

    reader = OrderReader()
    app = aftercare_app(ThankYou(), reader, shop={"mail": {"sender": "Shop <shop@example.com>"}})
    loads = []
    order_of = aftercare.dispatch.order_of
    monkeypatch.setattr(aftercare.dispatch, "order_of", lambda *args: loads.append(args) or order_of(*args))
    order = make_order()
    Dispatcher(app).dispatch(make_event("order_paid", order))
    app.clock.advance(timedelta(days=8))
    execute_due(app)

    (mail,) = [a for a in app.store.list_actions() if a.kind is ActionKind.SEND_EMAIL]
    assert mail.state is ActionState.DONE and reader.orders == [order, order]  # as the event carried it
    assert len(loads) == 1  # for the mail only: the coupon and the note never asked for it
    assert mail.result["sender"] == "Shop <shop@example.com>"  # the shop's merged [mail]


def test_a_channel_written_as_executor_action_app_still_works(aftercare_app):
    mailbox = Mailbox()  # its send(action, app): the way channels were written before ActionJob
    app = aftercare_app(ThankYou(), mailbox)
    Dispatcher(app).dispatch(make_event("order_paid", make_order()))
    execute_due(app)
    (mail,) = [a for a in app.store.list_actions() if a.kind is ActionKind.SEND_EMAIL]
    assert mail.state is ActionState.DONE and mail.result == {"message_id": f"<{mail.id}@test>"}
    assert len(mailbox.sent) == 1


class TwoMailCoupon:
    """A coupon and two mails that carry its code."""

    name = "two_mail_coupon"

    @hookimpl
    def on_order_paid(self, event, ctx):
        coupon = ctx.create_coupon(percent=10)
        for template in ("first", "second"):
            ctx.send_email(template, context={"code": coupon.payload["code"]}, after=coupon)


class CheckedMailbox(Mailbox):
    """A send_email channel with a ``refuses`` check that refuses the templates it is told to."""

    name = "checked_mailbox"

    def __init__(self, refused):
        super().__init__()
        self.refused = refused

    @hookimpl
    def register_channels(self, register):
        register("send_email", self.send, refuses=self.refuses)

    def refuses(self, job):
        template = job.action.payload["template"]
        return ActionDropped(f"{template} is refused", ReasonCode.FREQUENCY_CAP) if template in self.refused else None


@pytest.mark.parametrize("refused", [("first",), ("first", "second")])
def test_a_coupon_is_made_unless_every_mail_waiting_for_it_would_be_refused(aftercare_app, refused):
    mailbox = CheckedMailbox(refused)
    app = aftercare_app(TwoMailCoupon(), mailbox)
    Dispatcher(app).dispatch(make_event("order_paid", make_order()))
    execute_due(app)

    (coupon,) = [a for a in app.store.list_actions() if a.kind is ActionKind.CREATE_COUPON]
    mails = {a.payload["template"]: a for a in app.store.list_actions() if a.kind is ActionKind.SEND_EMAIL}
    if len(refused) == 1:  # the second mail would go: the coupon is made, and the mailbox gets both
        assert coupon.state is ActionState.DONE and len(app.adapter("test").coupons) == 1
        assert len(mailbox.sent) == 2
        return
    assert (coupon.state, coupon.reason_code) == (ActionState.DROPPED, ReasonCode.MESSAGE_REFUSED)
    assert coupon.reason == (
        "not run: every message waiting for it would be refused now: "
        f"{mails['first'].idempotency_key} (first is refused); {mails['second'].idempotency_key} (second is refused)"
    )
    assert app.adapter("test").coupons == {} and mailbox.sent == []
    assert {(m.state, m.reason_code) for m in mails.values()} == {(ActionState.DROPPED, ReasonCode.DEPENDENCY_FAILED)}


def test_a_mail_channel_replaced_without_a_check_is_not_asked_and_the_coupon_is_made(aftercare_app):
    mailbox = Mailbox()  # replaces the core's send_email, and its check with it
    app = aftercare_app(ThankYou(), mailbox)
    app.store.suppress("test", "ana@example.com", SuppressionReason.BOUNCED, "550 no such user")
    Dispatcher(app).dispatch(make_event("order_paid", make_order()))
    execute_due(app)
    assert "send_email" not in app.plugins.refusal_checks()
    assert states(app)[("thank_you", "create_coupon")] == ("done", "") and len(app.adapter("test").coupons) == 1
    assert len(mailbox.sent) == 1  # the mailbox decides for itself


def test_a_coupon_nothing_waits_for_is_made_whatever_the_customers_mail_would_meet(aftercare_app):
    class CouponOnly:
        name = "coupon_only"

        @hookimpl
        def on_order_paid(self, event, ctx):
            ctx.create_coupon(percent=10)

    app = aftercare_app(CouponOnly())
    app.store.suppress("test", "ana@example.com", SuppressionReason.BOUNCED, "550 no such user")
    Dispatcher(app).dispatch(make_event("order_paid", make_order()))
    execute_due(app)
    assert "send_email" in app.plugins.refusal_checks()  # the core's mail channel, with its check
    assert states(app)[("coupon_only", "create_coupon")] == ("done", "") and len(app.adapter("test").coupons) == 1
