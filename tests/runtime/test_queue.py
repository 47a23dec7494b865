"""The queue's two sides: the producer (Enqueuer) the receiver, pages and console hold, and the Worker's."""

import pytest

from aftercare.queue import Enqueuer, TaskQueue
from aftercare.testing import make_event, make_order
from aftercare.worker import Worker

from ..core.plugins_for_tests import Mailbox, ThankYou


class Recording(Enqueuer):
    """A producer that also notes what it was given (tests of its callers)."""

    def __init__(self, huey):
        super().__init__(huey)
        self.events, self.actions = [], []

    def dispatch_events(self, event_ids):
        self.events.append(list(event_ids))
        super().dispatch_events(event_ids)

    def execute_actions(self, action_ids):
        self.actions.append(list(action_ids))
        super().execute_actions(action_ids)


def test_what_a_producer_enqueues_a_workers_queue_consumes(aftercare_app):
    app = aftercare_app(ThankYou(), Mailbox())
    producer, worker = Enqueuer.for_app(app), Worker(app)
    assert isinstance(worker.queue, TaskQueue) and not isinstance(producer, TaskQueue)
    with app.store.transaction() as conn:
        [(event_id, _new)] = app.store.add_events(conn, [make_event("order_paid", make_order())])
    producer.ping()
    producer.dispatch_events([])  # nothing to say: no message
    assert producer.backlog() == 0
    producer.dispatch_events([event_id])
    assert producer.backlog() == worker.queue.backlog() == 1

    worker.queue.huey.execute(worker.queue.huey.dequeue())  # the worker's consumer runs the message
    assert app.store.get_event(event_id).state == "dispatched"


def test_a_producer_never_runs_the_work_itself(aftercare_app):
    producer = Enqueuer.for_app(aftercare_app())
    with pytest.raises(RuntimeError, match="only enqueues"):
        producer._dispatch_task([1])
    with pytest.raises(RuntimeError, match="only enqueues"):
        producer._execute_task([1])
