"""The worker: dispatch stored events, execute actions, and sweep the store.

The same :class:`Worker` runs inside ``aftercare serve`` (the embedded
default, one process) and as ``aftercare worker`` (consumers only, for
scale-out; several may share one Redis and one PostgreSQL). Work reaches it
two ways: a queue message (fast path) and :meth:`Worker.sweep`, a periodic
look at the store for events not yet dispatched, actions that fell due
(delayed ones included) and actions whose worker died mid-run (slow path,
the one that guarantees nothing is forgotten).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Sequence
from datetime import timedelta

from aftercare.actions import ActionState
from aftercare.app import App
from aftercare.dispatch import Dispatcher, execute_action
from aftercare.models import Event
from aftercare.platform import PlatformError
from aftercare.queue import TaskQueue, make_huey

log = logging.getLogger("aftercare.worker")

#: An event stored this long ago and still pending lost its queue message.
PENDING_GRACE = timedelta(seconds=30)


class Worker:
    def __init__(self, app: App) -> None:
        self.app = app
        self.claim_lease = timedelta(seconds=app.config.server.claim_lease_seconds)
        self.dispatcher = Dispatcher(app)
        self.queue = TaskQueue(
            make_huey(app.config.queue_url, app.config.queue_name),
            dispatch_events=self.dispatch_events,
            execute_actions=self.execute_actions,
        )
        self._stop = threading.Event()
        self._sweeper: threading.Thread | None = None

    # -- tasks --------------------------------------------------------------
    def dispatch_events(self, event_ids: Sequence[int]) -> None:
        """Run the hooks of stored events (one transaction for all) and send on their due actions."""
        batch = []
        for stored in self.app.store.get_events(event_ids):
            if stored.state != "pending":
                continue  # a repeated message, or the sweep and the queue both brought it
            event = self._whole(stored.id, stored.event)
            if event is not None:
                batch.append((stored.id, event))
        if not batch:
            return
        started = time.perf_counter()
        outcomes = self.dispatcher.dispatch_stored(batch)
        elapsed = (time.perf_counter() - started) * 1000 / len(batch)
        for outcome in outcomes:
            event = outcome.results.event
            failed = [r.plugin for r in outcome.results.runs if r.outcome == "failed"]
            log.info(
                "event shop=%s order=%s kind=%s key=%s plugins=%d actions=%d failed=%s duration_ms=%.1f",
                event.shop_id, event.order.platform_id, event.kind.value, event.dedupe_key,
                len(outcome.results.runs), len(outcome.new_actions), ",".join(failed) or "-", elapsed,
            )  # fmt: skip
        new_keys = [key for outcome in outcomes for key in outcome.new_actions]
        now = self.app.now()
        self.queue.execute_actions([a.id for a in self.app.store.actions_by_keys(new_keys) if a.due_at <= now])

    def _whole(self, event_id: int, event: Event) -> Event | None:
        """The event with its whole order: fulfillment/refund/return payloads carry only part."""
        if not event.order.partial:
            return event
        try:
            order = self.app.adapter(event.shop_id).fetch_order(event.order.platform_id)
        except PlatformError as exc:
            log.warning("event=%s order=%s refetch failed, left pending: %s", event_id,
                        event.order.platform_id, exc.message)  # fmt: skip
            return None
        return dataclasses.replace(event, order=order)

    def execute_actions(self, action_ids: Sequence[int]) -> None:
        now = self.app.now()
        for action_id in action_ids:
            action = self.app.store.get_action(action_id)
            if action.state is ActionState.DUE and action.due_at <= now:
                execute_action(self.app, action)

    # -- the sweep ----------------------------------------------------------
    def sweep(self) -> None:
        """Find work the queue did not bring: stale claims, pending events, due actions."""
        store, now = self.app.store, self.app.now()
        released = store.release_stale_actions(now - self.claim_lease)
        if released:
            log.warning("released %d action(s) claimed by a worker that stopped", released)
        self.queue.dispatch_events(store.pending_events(now - PENDING_GRACE))
        self.queue.execute_actions([a.id for a in store.due_actions(now, limit=500)])

    def run_now(self) -> None:
        """Do all waiting work in this thread (tests, ``--once``, the demo's moved clock)."""
        store, now = self.app.store, self.app.now()
        store.release_stale_actions(now - self.claim_lease)
        self.dispatch_events(store.pending_events(now))
        while due := store.due_actions(self.app.now(), limit=500):
            before = [a.id for a in due]
            self.execute_actions(before)
            if [a.id for a in store.due_actions(self.app.now(), limit=500)] == before:
                break  # what is left waits for something else (a dependency, a deferral)

    def start_sweeper(self, interval: float = 5.0) -> None:
        def loop() -> None:
            while not self._stop.wait(interval):
                try:
                    self.sweep()
                except Exception:  # the sweep must outlive a database hiccup
                    log.exception("sweep failed; trying again in %ss", interval)

        self._sweeper = threading.Thread(target=loop, name="aftercare-sweeper", daemon=True)
        self._sweeper.start()

    def stop_sweeper(self) -> None:
        self._stop.set()
        if self._sweeper is not None:
            self._sweeper.join(timeout=10)
