"""The consent executor writes the store's history through record_consent_change: changes, not repeats."""

import threading

from aftercare import executors
from aftercare.actions import ActionJob, ActionKind
from aftercare.dispatch import Dispatcher, execute_due
from aftercare.models import ConsentState
from aftercare.plugins import newsletter_optin
from aftercare.testing import START, make_event, sample_order


def test_two_runs_of_one_consent_action_that_both_read_first_write_one_history_row(plugin_app):
    app = plugin_app(newsletter_optin)
    Dispatcher(app).dispatch(make_event("optin_confirmed", sample_order("shopify_order_paid_fulfilled")))
    execute_due(app)
    (action,) = [a for a in app.store.list_actions() if a.kind is ActionKind.SET_MARKETING_CONSENT]
    store = app.store
    store.record_consent("test", "foo@example.com", ConsentState.UNSUBSCRIBED, "unsubscribe link")

    # The worst interleaving of a read-then-write: both retries read the old state before either
    # writes. A single locked read-and-write (record_consent_change) never reads this way.
    both_read = threading.Barrier(2, timeout=2)
    read_current = store.current_consent

    def current_consent_after_the_other_read(*args):
        state = read_current(*args)
        both_read.wait()
        return state

    store.current_consent = current_consent_after_the_other_read
    job = ActionJob(action, app, lambda: None)  # the consent executor reads no order
    threads = [threading.Thread(target=executors.set_marketing_consent, args=(job,)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    assert [row[0] for row in store.consent_history("test", "foo@example.com")] == [
        ConsentState.SUBSCRIBED, ConsentState.UNSUBSCRIBED, ConsentState.SUBSCRIBED,
    ]  # fmt: skip
    assert store.consent_history("test", "foo@example.com")[-1][1:] == ("double opt-in", START)
