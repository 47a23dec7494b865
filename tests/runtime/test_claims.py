"""Each event dispatched once and each action run once, across threads, the sweep and processes;
claims taken back only from a worker that stopped; failed dispatches back off and end failed;
a platform's Retry-After goes back to the schedule."""

import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from aftercare import hookimpl
from aftercare.actions import ActionState
from aftercare.app import App
from aftercare.clock import ManualClock
from aftercare.config import Config, ShopConfig
from aftercare.dispatch import MAX_ATTEMPTS, RETRY_BASE, Dispatcher, backoff
from aftercare.platform import PlatformError
from aftercare.plugin_manager import PluginManager
from aftercare.store import Store, hook_runs
from aftercare.testing import START, make_event, make_order, memory_platform
from aftercare.worker import Worker

from ..core.test_store import postgres_schema

ROOT = Path(__file__).resolve().parents[2]


class Counting:
    """Counts the calls of its hook (every thread), and asks for one note per event."""

    name = "counting"

    def __init__(self, slow: float = 0.0):
        self.calls: Counter[str] = Counter()
        self.slow = slow
        self._lock = threading.Lock()

    @hookimpl
    def on_order_paid(self, event, ctx):
        with self._lock:
            self.calls[event.dedupe_key] += 1
        time.sleep(self.slow)
        ctx.add_order_note(f"paid {event.order.number}", key="paid")


class SlowNotes:
    """An order-note channel that takes ``seconds`` and counts its calls."""

    name = "slow_notes"

    def __init__(self, seconds: float):
        self.seconds, self.calls = seconds, 0

    @hookimpl
    def register_channels(self, register):
        register("add_order_note", self.note)

    def note(self, action, app):
        self.calls += 1
        time.sleep(self.seconds)
        return {}


class Throttled:
    """An order-note channel the platform answers 429 with Retry-After: 60."""

    name = "throttled"

    @hookimpl
    def register_channels(self, register):
        register("add_order_note", self.note)

    def note(self, action, app):
        raise PlatformError("throttled by Shopify (HTTP 429)", transient=True, retry_after=60.0)


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    with postgres_schema("c") as (_, url):
        yield url


def make_app(tmp_path, database, *plugins, clock=None, lease=600.0):
    manager = PluginManager.load(entry_points=False, extra=[("memory-platform", memory_platform),
                                                             *[(p.name, p) for p in plugins]])  # fmt: skip
    config = Config(
        database=database,
        queue=f"sqlite:///{tmp_path / 'queue.db'}",
        shops=[ShopConfig(id="test", platform="memory", webhook_secret="s", production=True)],
        server={"claim_lease_seconds": lease},
        base_dir=tmp_path,
    )
    app = App(config, clock=clock, plugins=manager)
    app.store.upgrade()
    return app


def store_events(app, count, kind="order_paid"):
    events = [make_event(kind, make_order(str(n)), key=f"{kind}-{n}") for n in range(count)]
    with app.store.transaction() as conn:
        return [i for i, _new in app.store.add_events(conn, events)]


def hook_runs_per_triple(app):
    query = sa.select(hook_runs.c.event_id, hook_runs.c.plugin, hook_runs.c.hook, sa.func.count()).group_by(
        hook_runs.c.event_id, hook_runs.c.plugin, hook_runs.c.hook
    )
    with app.store.engine.connect() as conn:
        return {(e, p, h): n for e, p, h, n in conn.execute(query)}


def test_threads_and_sweeps_dispatching_the_same_events_run_each_hook_once(tmp_path, database):
    counting = Counting(slow=0.002)
    app = make_app(tmp_path, database, counting)
    ids = store_events(app, 40)
    worker = Worker(app)
    start = threading.Barrier(8)

    def race(n):
        start.wait()
        if n % 2:
            worker.dispatch_events(ids)  # the queue's message, brought to every thread
        else:
            worker.run_now()  # the sweep's way: everything pending

    threads = [threading.Thread(target=race, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    runs = hook_runs_per_triple(app)
    assert len(runs) == 40 and set(runs.values()) == {1}
    assert len(counting.calls) == 40 and set(counting.calls.values()) == {1}  # the hook itself, once
    assert {s.state for s in app.store.get_events(ids)} == {"dispatched"}
    assert len(app.store.list_actions(limit=100)) == 40
    app.close()


def test_two_processes_dispatching_the_same_events_run_each_hook_once(tmp_path, database):
    app = make_app(tmp_path, database, Counting())
    ids = store_events(app, 60)
    script = textwrap.dedent(f"""
        import sys, threading
        from pathlib import Path
        sys.path.insert(0, {str(ROOT)!r})
        from tests.runtime.test_claims import Counting, make_app
        from aftercare.worker import Worker
        worker = Worker(make_app(Path({str(tmp_path)!r}), {database!r}, Counting(slow=0.002)))
        ids = {ids!r}
        sys.stdin.readline()  # both processes go together
        threads = [threading.Thread(target=worker.dispatch_events, args=(ids[n::3] + ids,)) for n in range(3)]
        [t.start() for t in threads]
        [t.join() for t in threads]
    """)
    processes = [subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, text=True) for _ in range(2)]
    time.sleep(2.0)  # both imported and waiting
    for process in processes:
        process.stdin.write("go\n")
        process.stdin.flush()
    for process in processes:
        assert process.wait(60) == 0

    runs = hook_runs_per_triple(app)
    assert len(runs) == 60 and set(runs.values()) == {1}, Counter(runs.values())
    assert {s.state for s in app.store.get_events(ids)} == {"dispatched"}
    app.close()


def test_a_claim_left_by_a_dead_worker_is_taken_back_after_its_lease(tmp_path):
    database = f"sqlite:///{tmp_path / 'store.db'}"
    app = make_app(tmp_path, database, Counting(), lease=0.3)
    ids = store_events(app, 3)
    dead = Store(database, app.clock, claim_lease=timedelta(seconds=0.3))  # claims, then never renews
    assert dead.claim_events(ids) == ids
    worker = Worker(app)
    worker.run_now()
    assert {s.state for s in app.store.get_events(ids)} == {"dispatching"}  # another worker's, for now
    time.sleep(0.4)
    worker.run_now()
    assert {s.state for s in app.store.get_events(ids)} == {"dispatched"}
    assert set(hook_runs_per_triple(app).values()) == {1}
    dead.close()
    app.close()


def test_a_dispatch_recorded_after_its_claim_was_taken_back_is_not_recorded_twice(tmp_path):
    database = f"sqlite:///{tmp_path / 'store.db'}"
    app = make_app(tmp_path, database, Counting())
    [event_id] = store_events(app, 1)
    frozen = Store(database, app.clock)
    assert frozen.claim_events([event_id]) == [event_id]
    with app.store.transaction() as conn:  # its lease ran out while it was frozen, and the sweep took it back
        conn.execute(sa.text("UPDATE events SET state = 'pending', claimed_until = NULL"))
    Worker(app).run_now()
    app.store, mine = frozen, app.store
    try:  # the frozen worker wakes up and records the dispatch it had started
        Dispatcher(app).dispatch_stored([(event_id, mine.get_event(event_id).event)])
    finally:
        app.store = mine
    assert set(hook_runs_per_triple(app).values()) == {1}
    frozen.close()
    app.close()


def test_a_sweep_cannot_release_an_action_that_is_still_running(tmp_path):
    slow = SlowNotes(seconds=1.5)  # three leases long
    app = make_app(tmp_path, f"sqlite:///{tmp_path / 'store.db'}", Counting(), slow, lease=0.5)
    store_events(app, 1)
    worker = Worker(app)
    worker.start_sweeper(interval=60)  # what matters is the heartbeat, every third of the lease
    running = threading.Thread(target=worker.run_now)
    try:
        running.start()
        released = 0
        deadline = time.monotonic() + 1.4
        while time.monotonic() < deadline:
            released += app.store.release_stale_actions()  # another worker's sweep, again and again
            time.sleep(0.05)
        running.join(10)
    finally:
        worker.stop_sweeper()
    assert released == 0 and slow.calls == 1
    assert [a.state for a in app.store.list_actions()] == [ActionState.DONE]
    app.close()


def test_without_the_heartbeat_the_same_sweep_would_release_it(tmp_path):
    """The control of the test above: the lease alone is shorter than the call."""
    slow = SlowNotes(seconds=1.0)
    app = make_app(tmp_path, f"sqlite:///{tmp_path / 'store.db'}", Counting(), slow, lease=0.3)
    store_events(app, 1)
    running = threading.Thread(target=Worker(app).run_now)
    running.start()
    time.sleep(0.6)
    assert app.store.release_stale_actions() == 1
    running.join(10)
    app.close()


def test_an_event_whose_order_cannot_be_reread_backs_off_and_fails_after_the_limit(tmp_path):
    clock = ManualClock(START)
    counting = Counting()
    app = make_app(tmp_path, f"sqlite:///{tmp_path / 'store.db'}", counting, clock=clock)
    adapter = app.adapter("test")
    partial = make_event("order_paid", make_order("7", partial=True), key="partial-7")
    with app.store.transaction() as conn:
        [(event_id, _new)] = app.store.add_events(conn, [partial])
    worker = Worker(app)
    waits = []
    for attempt in range(1, MAX_ATTEMPTS + 1):
        adapter.fail_next(PlatformError("Shopify answered HTTP 503", transient=True))
        calls = len(adapter.calls)
        worker.run_now()
        worker.run_now()  # not due yet: the platform is not asked again
        assert len(adapter.calls) == calls + 1
        stored = app.store.get_event(event_id)
        assert stored.attempts == attempt
        assert stored.reason == f"attempt {attempt}: could not re-read order order-7: Shopify answered HTTP 503"
        if stored.retry_at is None:
            break
        waits.append((stored.retry_at - clock.now()).total_seconds())
        clock.set(stored.retry_at)
    assert stored.state == "failed" and attempt == MAX_ATTEMPTS
    base = RETRY_BASE.total_seconds()
    assert base / 2 <= waits[0] <= base and waits == sorted(waits)  # each step's range lies above the last
    assert counting.calls == Counter()  # the hooks never saw a partial order
    assert app.store.pending_events(clock.now() + timedelta(days=1)) == []

    assert app.store.retry_event(event_id)  # by hand, once the platform answers again
    adapter.put_order(make_order("7"))
    worker.run_now()
    assert app.store.get_event(event_id).state == "dispatched" and counting.calls == Counter({"partial-7": 1})
    app.close()


def test_an_order_that_is_gone_fails_its_event_at_once_with_the_reason(tmp_path):
    app = make_app(tmp_path, f"sqlite:///{tmp_path / 'store.db'}", Counting(), clock=ManualClock(START))
    with app.store.transaction() as conn:
        [(event_id, _)] = app.store.add_events(conn, [make_event("order_paid", make_order("8", partial=True))])
    Worker(app).run_now()  # the platform no longer has it
    stored = app.store.get_event(event_id)
    assert stored.state == "failed"
    assert stored.reason == "attempt 1: could not re-read order order-8: order order-8 not found"
    app.close()


def test_a_platforms_retry_after_puts_the_action_back_on_the_schedule(tmp_path):
    clock = ManualClock(START)
    app = make_app(tmp_path, f"sqlite:///{tmp_path / 'store.db'}", Counting(), Throttled(), clock=clock)
    store_events(app, 1)
    Worker(app).run_now()  # dispatch, then the note: 429, Retry-After 60
    [note] = app.store.list_actions()
    assert note.state is ActionState.DUE and note.attempts == 1
    wait = (note.due_at - clock.now()).total_seconds()
    assert 60 <= wait <= RETRY_BASE.total_seconds() * 2 + 60
    assert "throttled by Shopify (HTTP 429)" in note.reason and "next try in" in note.reason
    Worker(app).run_now()  # not due for a minute: the thread does not wait for it, nothing runs
    assert app.store.get_action(note.id).attempts == 1


def test_retries_are_spread_by_jitter_and_never_sooner_than_retry_after():
    firsts = {backoff(1).total_seconds() for _ in range(50)}
    assert len(firsts) > 40 and min(firsts) >= 15 and max(firsts) <= 30
    later = [backoff(4).total_seconds() for _ in range(50)]
    assert min(later) >= 120 and max(later) <= 240
    assert all(backoff(1, retry_after=90).total_seconds() >= 90 for _ in range(20))


def test_sync_waits_out_a_pause_the_client_gave_back_and_resumes_after_the_last_page(tmp_path, monkeypatch):
    from aftercare.platform import PollBatch
    from aftercare.sync import sync_shop

    app = make_app(tmp_path, f"sqlite:///{tmp_path / 'store.db'}", Counting())
    pages = [[make_event("order_paid", make_order(str(n)), key=f"poll-{n}")] for n in range(3)]
    asked = []

    def poll(cursor, since=None):
        asked.append(cursor)
        start = int(cursor or 0)
        for n in range(start, len(pages)):
            if n == 1 and asked.count("1") < 2:  # the bucket is empty: a 0.05 s wait the client gives back
                raise PlatformError("the query cost bucket needs 0.1s", transient=True, retry_after=0.05)
            yield PollBatch(pages[n], cursor=str(n + 1), orders_seen=1)

    monkeypatch.setattr(app.adapter("test"), "poll", poll)
    report = sync_shop(app, Worker(app).queue, "test")
    assert (report.orders, report.new_events) == (3, 3)
    assert asked == [None, "1", "1"]  # resumed after the committed page, not from the start
    assert app.store.get_cursor("test") == "3"
    app.close()
