"""One shop flooded with slow, partly failing due actions must not delay another shop's events.

Two worker threads, as `aftercare serve` runs by default. Shop "flooded" gets 200 events
(dispatched before the measurement starts) whose actions take 50 ms each and fail transiently
one time in four; shop "calm" gets one event at a time. Its event-to-action latency (from the
queue message, as the receiver sends it, to its action running) is measured before and during
the flood; p99 under load must stay within 2x of the unloaded figure. The unloaded figure is
floored at 500 ms (so the bound is at least 1 s): below that, what is measured is the machine's
noise (scheduling on two cores shared with other test processes, an fsync of the virtual disk
stalling for 300 ms), not the worker's fairness. An unfair worker puts the calm shop behind the
flood's 10 s of slow actions: seconds, well beyond the bound.
"""

import threading
import time

import pytest

from aftercare import hookimpl
from aftercare.clock import SystemClock
from aftercare.platform import PlatformError
from aftercare.testing import make_event, make_order
from aftercare.worker import Worker

CONFIG = """
[server]
workers = 2

[[shops]]
id = "flooded"
platform = "memory"
webhook_secret = "s-flooded"
production = true

[[shops]]
id = "calm"
platform = "memory"
webhook_secret = "s-calm"
production = true
"""

SLOW = 0.05
FLOOR = 0.5


class Notes:
    """on_order_paid asks for a note; the note channel is slow and flaky for the flooded shop."""

    name = "notes"

    def __init__(self):
        self.done = {}
        self.flooded_calls = 0
        self.cond = threading.Condition()

    @hookimpl
    def on_order_paid(self, event, ctx):
        ctx.add_order_note(f"paid {event.order.number}")

    @hookimpl
    def register_channels(self, register):
        register("add_order_note", self.note)

    def note(self, action, app):
        if action.shop_id == "flooded":
            time.sleep(SLOW)
            self.flooded_calls += 1
            if self.flooded_calls % 4 == 0:
                raise PlatformError("429 Too Many Requests", transient=True, retry_after=1)
            return {}
        with self.cond:
            self.done[action.order_id] = time.perf_counter()
            self.cond.notify_all()
        return {}

    def wait_for(self, order_id, timeout=10):
        with self.cond:
            assert self.cond.wait_for(lambda: order_id in self.done, timeout), f"order {order_id} never ran"
            return self.done[order_id]


def store_events(app, shop_id, numbers):
    events = [make_event("order_paid", make_order(n, shop_id=shop_id), key=f"paid-{n}") for n in numbers]
    with app.store.transaction() as conn:
        return [i for i, _new in app.store.add_events(conn, events)]


def p99(values):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


@pytest.fixture
def running(tmp_path, apps):
    (tmp_path / "aftercare.toml").write_text(CONFIG)
    notes = Notes()
    app = apps(tmp_path / "aftercare.toml", (notes.name, notes), clock=SystemClock())
    worker = Worker(app)
    consumer = worker.queue.consumer(2, max_delay=0.01)
    consumer.start()
    worker.start_sweeper(0.2)  # keeps bringing the flooded shop's due actions, as in production
    try:
        yield app, worker, notes
    finally:
        worker.stop_sweeper()
        consumer.stop(graceful=True)


def calm_latencies(app, worker, notes, first, count=20):
    latencies = []
    for n in range(first, first + count):
        (event_id,) = store_events(app, "calm", [str(n)])
        started = time.perf_counter()
        worker.queue.dispatch_events([event_id])
        latencies.append(notes.wait_for(f"order-{n}") - started)
        time.sleep(0.02)
    return latencies


def test_a_flooded_shop_does_not_delay_another_shops_events(running):
    app, worker, notes = running
    calm_latencies(app, worker, notes, 1, count=3)  # warm up: imports, first connections
    # Wall-clock latency on two shared cores: a measurement spoiled by the machine (another
    # process's burst) is taken again, up to three times; an unfair worker fails all three
    # (the calm shop then waits seconds behind the flood, not milliseconds).
    figures = []
    for attempt in range(3):
        base = 1000 * (attempt + 1)
        unloaded = calm_latencies(app, worker, notes, base)
        flood = store_events(app, "flooded", [str(n) for n in range(base + 100, base + 300)])
        for start in range(0, len(flood), 10):  # as the receiver's group commits would send them
            worker.queue.dispatch_events(flood[start : start + 10])
        deadline = time.monotonic() + 10  # the flood is due actions: wait until its events are dispatched
        while (notes.flooded_calls < 3 or app.store.count_events_by_state().get("pending")) and (
            time.monotonic() < deadline
        ):
            time.sleep(0.01)
        loaded = calm_latencies(app, worker, notes, base + 500)

        still_due = app.store.count_actions_by_state("flooded").get("due", 0)
        assert still_due > 20, "the flood ended before the measurement did; it measured nothing"
        assert worker.lanes.busy("flooded") <= 1
        figures.append(f"{p99(loaded) * 1000:.0f} ms under load vs {p99(unloaded) * 1000:.0f} ms unloaded")
        if p99(loaded) <= 2 * max(p99(unloaded), FLOOR):
            return
    pytest.fail("calm shop p99: " + "; ".join(figures))
