"""What the mail channel reads and writes in the store: the suppression list, an unsubscribe, the
marketing mails counted by the frequency cap, the order a mail is about; on SQLite and PostgreSQL."""

from datetime import timedelta

from aftercare.actions import ActionState
from aftercare.context import ActionSink, Context, ShopProfile
from aftercare.models import ConsentState
from aftercare.settings import PluginSettings
from aftercare.store import SuppressionReason
from aftercare.testing import START, make_event, make_order

from .test_store import store  # noqa: F401  (the fixture: SQLite and PostgreSQL)


def mails(event, *templates, transactional=False):
    sink = ActionSink()
    ctx = Context(event=event, plugin="p", hook=event.kind.hook, shop=ShopProfile("test", "memory"),
                  settings=PluginSettings(), clock=lambda: START, sink=sink)  # fmt: skip
    for template in templates:
        ctx.send_email(template, transactional=transactional)
    return sink.requests


def test_suppress_keeps_one_entry_per_shop_address_and_reason(store):  # noqa: F811
    store.upgrade()
    assert store.suppress("test", " Ana@Example.com ", SuppressionReason.BOUNCED, "550 no such user")
    assert not store.suppress("test", "ana@example.com", SuppressionReason.BOUNCED, "again")
    assert store.suppress("test", "ana@example.com", SuppressionReason.UNSUBSCRIBED)
    assert [(s.email, s.reason, s.detail) for s in store.suppressions("test", "ANA@example.com")] == [
        ("ana@example.com", SuppressionReason.BOUNCED, "550 no such user"),
        ("ana@example.com", SuppressionReason.UNSUBSCRIBED, ""),
    ]
    assert store.suppressions("other", "ana@example.com") == []  # another shop's list says nothing


def test_an_unsubscribe_is_the_consent_and_the_suppression_once(store):  # noqa: F811
    store.upgrade()
    store.record_unsubscribe("test", "Ana@example.com", "unsubscribe link")
    store.record_unsubscribe("test", "ana@example.com", "one-click unsubscribe (RFC 8058)")  # posted twice
    assert [(s.reason, s.detail) for s in store.suppressions("test", "ana@example.com")] == [
        (SuppressionReason.UNSUBSCRIBED, "unsubscribe link")
    ]
    assert [(state, source) for state, source, _at in store.consent_history("test", "ana@example.com")] == [
        (ConsentState.UNSUBSCRIBED, "unsubscribe link")
    ]


def test_marketing_mails_sent_counts_done_marketing_mails_to_the_customer_since_a_time(store):  # noqa: F811
    store.upgrade()
    event = make_event("order_paid", make_order("1"))
    with store.transaction() as conn:
        store.add_actions(conn, mails(event, "tips", "survey", "spare"))
        store.add_actions(conn, mails(event, "tracking", transactional=True))
    tips, survey, spare, tracking = sorted(store.list_actions(), key=lambda a: a.id)
    for action in (tips, survey, tracking):
        assert store.claim_action(action.id)
        store.finish_action(action.id, ActionState.DONE, attempted=True)
    email = tips.customer_email.upper()
    assert store.marketing_mails_sent("test", email, START - timedelta(days=1)) == 2  # the spare one is still due
    assert store.marketing_mails_sent("test", email, START - timedelta(days=1), exclude=tips.id) == 1
    assert store.marketing_mails_sent("test", email, START + timedelta(days=1)) == 0
    assert store.marketing_mails_sent("other", email, START - timedelta(days=1)) == 0
    assert spare.state is ActionState.DUE


def test_event_order_is_the_order_the_stored_event_carried(store):  # noqa: F811
    store.upgrade()
    event = make_event("shipped", make_order("7"))
    with store.transaction() as conn:
        store.add_events(conn, [event])
    assert store.event_order("test", event.dedupe_key) == event.order
    assert store.event_order("other", event.dedupe_key) is None
    assert store.event_order("test", "order:7:nothing") is None
