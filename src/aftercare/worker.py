"""The worker: dispatch stored events, execute actions, and sweep the store.

The same :class:`Worker` runs inside ``aftercare serve`` (the embedded
default, one process) and as ``aftercare worker`` (consumers only, for
scale-out; several may share one Redis and one PostgreSQL). Work reaches it
two ways: a queue message (fast path) and :meth:`Worker.sweep`, a periodic
look at the store for events not yet dispatched, actions that fell due
(delayed ones included) and actions whose worker died mid-run (slow path,
the one that guarantees nothing is forgotten).

Fairness across shops (one deployment serves many clients): no shop's
trouble may delay another's events.

- Messages carry one shop's work. A mixed batch (the receiver commits
  deliveries of several shops together) is split into one message per shop,
  so a shop whose platform is slow to re-read an order holds one thread only.
- The sweep and :meth:`Worker.run_now` pick up due actions shop by shop,
  round-robin, at most ``PICKUP_PER_SHOP`` per shop per round: a backlog of
  thousands in one shop does not fill the page and push the others back.
- :class:`ShopLanes` bounds the threads one shop's actions may occupy in a
  process (``[server] shop_concurrency``). A message for a shop whose lane is
  full hands its actions to the lane's runners and frees the thread at once,
  so a slow SMTP relay or platform of one shop always leaves threads for the
  others. Transient failures (429, 5xx, timeouts) are rescheduled with
  backoff per action (:func:`aftercare.dispatch.execute_action`) and never
  hold a thread while waiting.

Once each: an event is claimed (``pending`` -> ``dispatching``, one UPDATE ...
RETURNING) before its hooks run, and an action (``due`` -> ``running``) before
its channel is called, so threads, sweeps and processes never do the same
work twice. A claim names this process and lasts ``claim_lease_seconds``; the
heartbeat thread renews the claims of work still running, so only a worker
that died (or froze) loses them, and the sweep then takes them back. An event
whose dispatch fails (its order cannot be re-read, a database error) backs
off like an action and ends ``failed`` with the reason after ``MAX_ATTEMPTS``.

An action's outcome survives the store's blips: retried on fresh connections
for a few seconds, then held in memory under its renewed claim until the
heartbeat writes it; a sent mark written the moment the channel returns keeps
a run that finds it from calling the channel again (docs/runtime.md).
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta

from aftercare import metrics
from aftercare.actions import ActionRecord, ActionState
from aftercare.app import App
from aftercare.dispatch import MAX_ATTEMPTS, Dispatcher, backoff, execute_action
from aftercare.models import Event
from aftercare.platform import PlatformError
from aftercare.privacy import apply_retention, run_privacy_requests
from aftercare.queue import TaskQueue, make_huey
from aftercare.store import StoredEvent, wall_clock

log = logging.getLogger("aftercare.worker")

#: An event stored this long ago and still pending lost its queue message (the default of
#: ``[server] pending_grace_seconds``, and what ``/healthz`` counts as backlog).
PENDING_GRACE = timedelta(seconds=30)
#: Due actions one shop contributes to one round of a pickup.
PICKUP_PER_SHOP = 100
#: The heartbeat's period at most (shorter when the claim lease is short: a third of it).
HEARTBEAT_SECONDS = 5.0
#: No heartbeat for this long: the worker is not running (``/healthz``; the default of
#: ``[server] heartbeat_limit_seconds``).
SILENT_AFTER = timedelta(seconds=3 * HEARTBEAT_SECONDS)
#: Work overdue this long while no worker finished anything: the worker is stuck (``/healthz``).
STUCK_AFTER = timedelta(minutes=2)
#: ``/healthz`` counts as backlog what has waited longer than this.
BACKLOG_AFTER = PENDING_GRACE


class ShopLanes:
    """At most ``limit`` threads run one shop's actions at a time; nobody waits for a lane.

    A thread that finds its shop's lane full leaves the action ids in the
    lane's queue and returns: a runner of that lane takes them before it
    leaves. So a shop with a slow relay holds ``limit`` threads, never more,
    and no thread sleeps waiting for a slow shop.
    """

    def __init__(self, limit: int) -> None:
        self.limit = max(1, limit)
        self._lock = threading.Lock()
        self._waiting: dict[str, dict[int, None]] = {}  # an ordered set per shop: a repeated id is queued once
        self._running: Counter[str] = Counter()

    def run(
        self,
        shop_id: str,
        action_ids: Iterable[int],
        execute: Callable[[int], object],
        stopping: Callable[[], bool] = lambda: False,
    ) -> None:
        """Queue ``action_ids`` on the shop's lane and, if it has room, run it until it is empty
        (or ``stopping()``: what is left is still due in the store for the next start)."""
        with self._lock:
            waiting = self._waiting.setdefault(shop_id, {})
            waiting.update(dict.fromkeys(action_ids))
            if self._running[shop_id] >= self.limit:
                return  # the lane's runners will take them
            self._running[shop_id] += 1
        try:
            while True:
                with self._lock:
                    if not waiting or stopping():
                        return
                    action_id = next(iter(waiting))
                    del waiting[action_id]
                execute(action_id)
        finally:
            with self._lock:
                self._running[shop_id] -= 1

    def busy(self, shop_id: str) -> int:
        """Threads running this shop's actions now."""
        with self._lock:
            return self._running[shop_id]


def round_robin(per_shop: Iterable[Sequence[ActionRecord]]) -> list[ActionRecord]:
    """``[a1, a2], [b1]`` -> ``[a1, b1, a2]``: every shop's oldest first, then the next ones."""
    return [a for group in itertools.zip_longest(*per_shop) for a in group if a is not None]


class Worker:
    def __init__(self, app: App, *, shop_concurrency: int | None = None) -> None:
        self.app = app
        self.claim_lease = timedelta(seconds=app.config.server.claim_lease_seconds)
        self.pending_grace = timedelta(seconds=app.config.server.pending_grace_seconds)
        server = app.config.server
        self.lanes = ShopLanes(shop_concurrency or server.shop_concurrency or max(1, server.workers // 2))
        self.dispatcher = Dispatcher(app)
        self.queue = TaskQueue(
            make_huey(app.config.queue_url, app.config.queue_name),
            dispatch_events=self.dispatch_events,
            execute_actions=self.execute_actions,
        )
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        #: When this worker last finished an event or an action (wall clock), for the heartbeat.
        self.progress_at: datetime | None = None

    # -- tasks --------------------------------------------------------------
    def dispatch_events(self, event_ids: Sequence[int]) -> None:
        """The queue task: one shop's events here; a mixed batch goes back as one message per shop."""
        by_shop: dict[str, list[StoredEvent]] = {}
        for stored in self.app.store.get_events(event_ids):
            if stored.state == "pending":  # else a repeated message, or the sweep and the queue both brought it
                by_shop.setdefault(stored.event.shop_id, []).append(stored)
        if len(by_shop) > 1:
            for events in by_shop.values():
                self.queue.dispatch_events([stored.id for stored in events])
            return
        for events in by_shop.values():
            self.queue.execute_actions(self._claim_and_dispatch(events))

    def _claim_and_dispatch(self, stored_events: Sequence[StoredEvent]) -> list[int]:
        """Dispatch the events this worker manages to claim (others have them, or had them)."""
        claimed = set(self.app.store.claim_events([stored.id for stored in stored_events]))
        mine = [stored for stored in stored_events if stored.id in claimed]
        try:
            return self._dispatch(mine)
        finally:  # dispatched, put back or crashed: the heartbeat stops renewing their claims
            self.app.store.let_go("events", claimed)

    def _dispatch(self, stored_events: Sequence[StoredEvent]) -> list[int]:
        """Run the hooks of claimed events (one transaction for all); return their actions due now."""
        batch = []
        for stored in stored_events:
            event = self._whole(stored)
            if event is not None:
                batch.append((stored.id, event))
        if not batch:
            return []
        started = time.perf_counter()
        try:
            outcomes = self.dispatcher.dispatch_stored(batch)
        except Exception as exc:  # a database error, a bug: each event backs off (or its claim runs out)
            log.exception("dispatch of %d event(s) failed", len(batch))
            tried = {event_id for event_id, _event in batch}
            for stored in stored_events:
                if stored.id in tried:
                    self._dispatch_failed(stored, f"dispatch failed: {type(exc).__name__}", None, transient=True)
            return []
        self.progress_at = wall_clock()
        elapsed = (time.perf_counter() - started) * 1000 / len(batch)
        for outcome in outcomes:
            event = outcome.results.event
            failed = [r.plugin for r in outcome.results.runs if r.outcome == "failed"]
            metrics.event_dispatched(event.shop_id, event.kind.value, failed)
            log.info(
                "event shop=%s order=%s kind=%s key=%s plugins=%d actions=%d failed=%s duration_ms=%.1f",
                event.shop_id, event.order.platform_id, event.kind.value, event.dedupe_key,
                len(outcome.results.runs), len(outcome.new_actions), ",".join(failed) or "-", elapsed,
                extra={"shop": event.shop_id, "order": event.order.platform_id, "kind": event.kind.value,
                       "outcome": "failed" if failed else "ok", "duration_ms": round(elapsed, 1)},
            )  # fmt: skip
        new_keys = [key for outcome in outcomes for key in outcome.new_actions]
        now = self.app.now()
        return [a.id for a in self.app.store.actions_by_keys(new_keys) if a.due_at <= now]

    def _whole(self, stored: StoredEvent) -> Event | None:
        """The event with its whole order: fulfillment/refund/return payloads carry only part.
        None if the order cannot be re-read now (the event backs off, or fails for good)."""
        event = stored.event
        if not event.order.partial:
            return event
        try:
            order = self.app.adapter(event.shop_id).fetch_order(event.order.platform_id)
        except PlatformError as exc:
            reason = f"could not re-read order {event.order.platform_id}: {exc.message}"
            self._dispatch_failed(stored, reason, exc.retry_after, transient=exc.transient)
            return None
        whole = event.with_whole_order(order)
        # Kept, so what reads the stored event later (the mail, the console) sees the whole order.
        self.app.store.replace_event(stored.id, whole)
        return whole

    def _dispatch_failed(self, stored: StoredEvent, reason: str, retry_after: float | None, *, transient: bool) -> None:
        """Back off a claimed event whose dispatch failed; after MAX_ATTEMPTS (or a permanent error) it fails."""
        attempts = stored.attempts + 1
        retry_at = self.app.now() + backoff(attempts, retry_after) if transient and attempts < MAX_ATTEMPTS else None
        then = f"next try at {retry_at:%Y-%m-%d %H:%M:%S}" if retry_at else "failed"
        log.warning("event=%s shop=%s attempt %d: %s; %s", stored.id, stored.event.shop_id, attempts, reason, then,
                    extra={"event": stored.id, "shop": stored.event.shop_id, "order": stored.event.order.platform_id,
                           "outcome": "retry" if retry_at else "failed"})  # fmt: skip
        try:
            self.app.store.event_dispatch_failed(stored.id, f"attempt {attempts}: {reason}", retry_at)
        except Exception:  # the store is down too: the claim runs out and the sweep brings it back
            log.exception("could not record the failed dispatch of event %s", stored.id)

    def execute_actions(self, action_ids: Sequence[int]) -> None:
        """The queue task: run one shop's actions in its lane (a mixed message is split per shop)."""
        by_shop: dict[str, list[int]] = {}
        for action_id in action_ids:
            action = self.app.store.get_action(action_id)
            by_shop.setdefault(action.shop_id, []).append(action_id)
        if len(by_shop) > 1:
            for ids in by_shop.values():
                self.queue.execute_actions(ids)
            return
        for shop_id, ids in by_shop.items():
            self.lanes.run(shop_id, ids, self._execute_one, self.queue.stopping)

    def _execute_one(self, action_id: int) -> None:
        action = self.app.store.get_action(action_id)
        if action.state is ActionState.DUE and action.due_at <= self.app.now() and execute_action(self.app, action):
            self.progress_at = wall_clock()

    # -- the sweep ----------------------------------------------------------
    def due_by_shop(self, now: datetime, per_shop: int = PICKUP_PER_SHOP) -> dict[str, list[ActionRecord]]:
        """Each shop's oldest due actions, at most ``per_shop`` each (the fair pickup)."""
        found = {
            shop_id: self.app.store.due_actions(now, limit=per_shop, shop_id=shop_id) for shop_id in self.app.shops
        }
        return {shop_id: due for shop_id, due in found.items() if due}

    def sweep(self) -> None:
        """Find work the queue did not bring: stale claims, pending events, due actions (per shop)."""
        store, now = self.app.store, self.app.now()
        released = store.release_stale_actions()
        if released:
            log.warning("released %d action(s) claimed by a worker that stopped", released)
        released = store.release_stale_events()
        if released:
            log.warning("released %d event(s) claimed by a worker that stopped", released)
        self.queue.dispatch_events(store.pending_events(now - self.pending_grace))
        for due in self.due_by_shop(now).values():
            self.queue.execute_actions([a.id for a in due])
        run_privacy_requests(self.app)
        apply_retention(self.app)

    def run_now(self) -> None:
        """Do all waiting work in this thread (tests, ``--once``, the demo's moved clock), shops interleaved."""
        store, now = self.app.store, self.app.now()
        store.write_held_outcomes()
        store.release_stale_actions()
        store.release_stale_events()
        self._claim_and_dispatch(store.get_events(store.pending_events(now)))
        run_privacy_requests(self.app)
        while due := round_robin(self.due_by_shop(self.app.now()).values()):
            before = [a.id for a in due]
            for action_id in before:
                self._execute_one(action_id)
            if [a.id for a in round_robin(self.due_by_shop(self.app.now()).values())] == before:
                break  # what is left waits for something else (a dependency, a deferral)

    def heartbeat(self) -> None:
        """Renew the claims of the work running here, say this worker is alive (``/healthz``), and
        write the outcomes the store refused when their actions ended (their claims are renewed
        with the others meanwhile, so no sweep gives those actions to another worker)."""
        self.app.store.heartbeat(self.progress_at)
        if self.app.store.write_held_outcomes():
            self.progress_at = wall_clock()

    def start_sweeper(self, interval: float = 5.0) -> None:
        """Start the sweep (every ``interval`` s) and the heartbeat (a third of the claim lease, at most 5 s)."""
        beat_every = min(HEARTBEAT_SECONDS, self.claim_lease.total_seconds() / 3)
        for name, job, every in (("sweeper", self.sweep, interval), ("heartbeat", self.heartbeat, beat_every)):
            thread = threading.Thread(
                target=self._every, args=(name, job, every), name=f"aftercare-{name}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def _every(self, name: str, job: Callable[[], None], interval: float) -> None:
        if name == "heartbeat":
            self._run_logged(name, job, interval)  # say "alive" at once, not a period later
        while not self._stop.wait(interval):
            self._run_logged(name, job, interval)

    @staticmethod
    def _run_logged(name: str, job: Callable[[], None], interval: float) -> None:
        try:
            job()
        except Exception:  # the sweep and the heartbeat must outlive a database hiccup
            log.exception("%s failed; trying again in %.1fs", name, interval)

    def stop_sweeper(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)
        self._threads.clear()
        self.app.store.write_held_outcomes()  # a last try; an action whose outcome is lost here runs again


@dataclasses.dataclass(frozen=True)
class Health:
    """What ``/healthz`` says of the workers: ``worker`` is "ok" or why not; ``backlog`` what waits."""

    ok: bool
    worker: str
    backlog: dict[str, int]
    #: The freshest heartbeat of any worker (wall clock), None if none has started.
    beat_at: datetime | None = None
    #: When the oldest work counted in ``backlog`` fell due or arrived (app clock).
    oldest: datetime | None = None


def worker_health(app: App) -> Health:
    """Is some worker alive and getting work done? Read from the heartbeats in the store.

    Dead: no heartbeat for ``[server] heartbeat_limit_seconds``. Stuck: work overdue for
    ``STUCK_AFTER`` while no worker finished anything for as long. The backlog
    is work in the store waiting longer than ``BACKLOG_AFTER``, not queue messages.
    """
    store = app.store
    beat, backlog = store.worker_beat(), store.backlog(BACKLOG_AFTER)
    counts = {"pending_events": backlog.pending_events, "overdue_actions": backlog.overdue_actions}
    now = wall_clock()

    def health(ok: bool, worker: str) -> Health:
        return Health(ok, worker, counts, beat.beat_at, backlog.oldest)

    if beat.beat_at is None:
        return health(False, "not running: no worker has started")
    if beat.beat_at < now - timedelta(seconds=app.config.server.heartbeat_limit_seconds):
        return health(False, f"not running since {beat.beat_at:%Y-%m-%d %H:%M:%S} UTC")
    overdue_since = backlog.oldest is not None and backlog.oldest < app.now() - STUCK_AFTER
    if overdue_since and beat.progress_at < now - STUCK_AFTER:
        return health(
            False, f"stuck: work is overdue and nothing was done since {beat.progress_at:%Y-%m-%d %H:%M:%S} UTC"
        )
    return health(True, "ok")
