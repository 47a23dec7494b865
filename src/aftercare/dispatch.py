"""Dispatch: events through the hooks into the outbox, and actions out of it.

:class:`Dispatcher` stores events in the inbox, runs each enabled plugin's
hook with its own ``ctx``, and records what the hooks asked for, all in one
transaction per batch. A plugin that raises is recorded as failed for that
event, its half-made requests are discarded, and the other plugins go on;
``dispatch(event, only=[plugin])`` runs it again alone.

:func:`execute_action` runs one stored action: claim it, apply the dry-run,
dependency and fire-time checks (DESIGN rule 3), drop a coupon whose messages
would all be refused (:func:`refused_dependents`), call the channel, and record
the outcome with its reason. The record survives the store's blips: a sent
mark the moment the channel returns, the outcome retried and, if need be,
held for the heartbeat (:meth:`aftercare.store.Store.record_outcome`); a run
that finds its action's sent mark does not call the channel again.
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from aftercare import metrics
from aftercare.actions import (
    CARRIED_KINDS,
    MESSAGE_KINDS,
    ActionDeferred,
    ActionDropped,
    ActionJob,
    ActionRecord,
    ActionRequest,
    ActionState,
    ReasonCode,
    Recheck,
    fire_time_reason,
)
from aftercare.app import App
from aftercare.context import ActionSink, Context
from aftercare.links import Links
from aftercare.models import ConsentState, Event, Order
from aftercare.platform import PlatformError
from aftercare.store import HookRun, Outcome, describe_database_error, transient_database_error

log = logging.getLogger("aftercare.dispatch")

MAX_ATTEMPTS = 8
RETRY_BASE = timedelta(seconds=30)
RETRY_CAP = timedelta(hours=6)
DEPENDENCY_WAIT = timedelta(minutes=1)
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")


@dataclass
class HookResults:
    """What the hooks of one event did, before anything is stored."""

    event: Event
    runs: list[HookRun] = field(default_factory=list)
    sink: ActionSink = field(default_factory=ActionSink)


@dataclass
class Dispatched:
    """One event after dispatch: was it new, what ran, which actions are new."""

    event_id: int
    new_event: bool
    results: HookResults
    new_actions: set[str]

    @property
    def requests(self) -> list[ActionRequest]:
        return self.results.sink.requests


class Dispatcher:
    def __init__(self, app: App) -> None:
        self.app = app
        self.links = Links(app)

    def run_hooks(self, event: Event, only: Sequence[str] = ()) -> HookResults:
        """Call every enabled plugin's hook for ``event``; store nothing."""
        shop = self.app.shop(event.shop_id)
        hook = event.kind.hook
        results = HookResults(event)
        for call in self.app.plugins.hook_calls(hook):
            settings = shop.plugin_settings.get(call.plugin)
            if settings is None or not settings.enabled or (only and call.plugin not in only):
                continue
            sink = ActionSink()
            ctx = Context(
                event=event,
                plugin=call.plugin,
                hook=hook,
                shop=shop.profile,
                settings=settings,
                clock=self.app.now,
                sink=sink,
                links=self.links,
            )
            arguments = {"event": event, "ctx": ctx}
            started = time.perf_counter()
            try:
                call.function(*[arguments[name] for name in call.argnames])
            except Exception as exc:  # one plugin's bug must not cost the others their turn
                elapsed = (time.perf_counter() - started) * 1000
                log.warning("plugin %s failed in %s for %s: %r", call.plugin, hook, event.dedupe_key, exc,
                            extra={"shop": event.shop_id, "order": event.order.platform_id, "plugin": call.plugin,
                                   "outcome": "failed"})  # fmt: skip
                results.runs.append(HookRun(call.plugin, hook, "failed", f"{type(exc).__name__}: {exc}", 0, elapsed))
                continue
            elapsed = (time.perf_counter() - started) * 1000
            results.runs.append(HookRun(call.plugin, hook, "ok", "", len(sink.requests), elapsed))
            results.sink.requests.extend(sink.requests)
            results.sink.cancellations.extend(sink.cancellations)
        return results

    def dispatch(self, event: Event, *, only: Sequence[str] = ()) -> Dispatched:
        return self.dispatch_many([event], only=only)[0]

    def dispatch_many(self, batch: Sequence[Event], *, only: Sequence[str] = ()) -> list[Dispatched]:
        """Store the events, run their hooks, record the actions: one transaction for the batch."""
        return self._dispatch(batch, only, stored_ids=None)

    def dispatch_stored(self, stored: Sequence[tuple[int, Event]]) -> list[Dispatched]:
        """Run the hooks of events already in the inbox (the worker's path), first time for each."""
        return self._dispatch([event for _id, event in stored], (), stored_ids=[i for i, _event in stored])

    def _dispatch(
        self, batch: Sequence[Event], only: Sequence[str], stored_ids: Sequence[int] | None
    ) -> list[Dispatched]:
        all_results = [self.run_hooks(event, only) for event in batch]
        outcomes: list[Dispatched] = []
        store = self.app.store
        with store.transaction() as conn:
            if stored_ids is not None:  # only what this worker still holds: a claim taken back is not recorded twice
                held = store.still_claimed_events(conn, stored_ids)
                kept = [n for n, event_id in enumerate(stored_ids) if event_id in held]
                batch, all_results = [batch[n] for n in kept], [all_results[n] for n in kept]
                stored_ids = [stored_ids[n] for n in kept]
            ids = store.add_events(conn, batch) if stored_ids is None else [(i, True) for i in stored_ids]
            store.record_customer_events(conn, [e for e, (_id, new) in zip(batch, ids, strict=True) if new])
            new_actions = store.add_actions(conn, [r for res in all_results for r in res.sink.requests])
            store.apply_cancellations(conn, [c for res in all_results for c in res.sink.cancellations])
            store.record_hook_runs(
                conn, {event_id: res.runs for (event_id, _new), res in zip(ids, all_results, strict=True)}
            )
            for (event_id, new), results in zip(ids, all_results, strict=True):
                mine = {r.idempotency_key for r in results.sink.requests} & new_actions
                outcomes.append(Dispatched(event_id, new, results, mine))
        return outcomes

    def retry_failed_hooks(self, event_id: int) -> Dispatched | None:
        """Run again only the plugins whose hook failed on this event."""
        failed = self.app.store.failed_hook_runs(event_id)
        if not failed:
            return None
        return self.dispatch(self.app.store.get_event(event_id).event, only=failed)


def execute_due(app: App, limit: int = 100) -> list[ActionRecord]:
    """Run every action due now (the embedded worker's loop body); return them as they ended."""
    app.store.write_held_outcomes()  # no heartbeat here: outcomes the store refused before go first
    finished = []
    for action in app.store.due_actions(app.now(), limit):
        if execute_action(app, action) and action.id not in app.store.held_outcomes():
            finished.append(app.store.get_action(action.id))
    return finished


def execute_action(app: App, action: ActionRecord) -> bool:
    """Run one due action if this worker can claim it. False if someone else has it."""
    store = app.store
    if not store.claim_action(action.id):
        return False
    try:
        released = _run_claimed(app, action)
    finally:  # done, put back, held or crashed: the heartbeat stops renewing its claim (unless held)
        store.let_go("actions", [action.id])
    # What waited for this action (a mail carrying a coupon's code) goes now, not a minute later.
    for waiting_id in released:
        execute_action(app, store.get_action(waiting_id))
    return True


def _run_claimed(app: App, action: ActionRecord) -> list[int]:
    """Decide and record how a claimed action ends; return the actions its being done released."""
    started = time.perf_counter()
    outcome = _outcome(app, action)
    if outcome is None:  # put back to wait for the action it depends on
        return []
    released = app.store.record_outcome(action, outcome)
    late = (app.now() - action.due_at).total_seconds()
    metrics.action_ended(action.shop_id, action.plugin, action.kind.value, outcome.state.value, late)
    reason = outcome.reason
    duration_ms = round((time.perf_counter() - started) * 1000, 1)
    log.info(
        "action shop=%s order=%s plugin=%s action=%s outcome=%s duration_ms=%.1f%s",
        action.shop_id, action.order_id, action.plugin, action.kind.value, outcome.state.value,
        duration_ms, f" reason={_without_addresses(reason)!r}" if reason else "",
        extra={"shop": action.shop_id, "order": action.order_id, "plugin": action.plugin,
               "action": action.kind.value, "outcome": outcome.state.value, "duration_ms": duration_ms},
    )  # fmt: skip
    return released


def _outcome(app: App, action: ActionRecord) -> Outcome | None:
    """Run the checks and the channel; how the action ends (None: it waits for its dependency).

    The sent mark comes first: an action whose channel did its work while its
    record failed is done, whatever a check would say now. A transient database
    error anywhere (a read in a check or in the mail code) puts the action back
    with backoff and does not count as an attempt: the store's trouble is never
    the action's failure. A channel may say something about a done action in its
    result's ``reason`` (a mail sent, unconfirmed), which becomes the record's.
    """
    store = app.store
    attempts = action.attempts + 1
    try:
        mark = store.sent_mark(action.idempotency_key)
        if mark is not None:
            mail = action.kind in MESSAGE_KINDS
            again = "sent earlier, not resent" if mail else "done earlier, not run again"
            return Outcome(ActionState.DONE, again, mark.result, attempted=True, code=ReasonCode.DONE_EARLIER)

        dry_run = app.is_dry_run(action.shop_id)
        if dry_run:
            return Outcome(ActionState.DROPPED, dry_run, code=ReasonCode.DRY_RUN)

        if action.depends_on:
            (first,) = store.actions_by_keys([action.depends_on]) or (None,)
            if first is None or first.state in (ActionState.FAILED, ActionState.DROPPED):
                why = first.reason if first else "it was never recorded"
                return Outcome(ActionState.DROPPED, f"depends on {action.depends_on}, which did not happen: {why}",
                               code=ReasonCode.DEPENDENCY_FAILED)  # fmt: skip
            # Put back until that action is done (finishing it releases this one), or the sweep's next look.
            waiting_until = app.now() + DEPENDENCY_WAIT
            if first.state is not ActionState.DONE and (
                store.wait_for_dependency(action.id, action.depends_on, waiting_until) is not ActionState.DONE
            ):
                return None

        if action.rechecks:
            reason = fire_time_check(app, action)
            if reason:
                return Outcome(ActionState.DROPPED, reason, code=ReasonCode.FIRE_TIME_CHECK)
        channel = app.plugins.channels().get(action.kind.value)
        if channel is None:
            return Outcome(ActionState.FAILED, f"no channel is registered for {action.kind.value}",
                           code=ReasonCode.NO_CHANNEL)  # fmt: skip
        if action.kind in CARRIED_KINDS:
            refused = refused_dependents(app, action)
            if refused:
                reason = f"not run: every message waiting for it would be refused now: {refused}"
                return Outcome(ActionState.DROPPED, reason, code=ReasonCode.MESSAGE_REFUSED)
        result = dict(channel(ActionJob(action, app, lambda: order_of(app, action))) or {})
    except ActionDeferred as exc:
        return Outcome(ActionState.DUE, exc.reason, due_at=exc.until, code=exc.code)
    except ActionDropped as exc:
        return Outcome(ActionState.DROPPED, exc.reason, code=exc.code)
    except PlatformError as exc:
        if exc.transient and attempts < MAX_ATTEMPTS:
            # Back to the schedule: the thread moves on, the platform's Retry-After is waited out in the store.
            delay = backoff(attempts, exc.retry_after)
            reason = f"attempt {attempts} failed: {exc.message}; next try in {delay.total_seconds():.0f}s"
            return Outcome(ActionState.DUE, reason, attempted=True, due_at=app.now() + delay, code=ReasonCode.RETRY)
        return Outcome(ActionState.FAILED, exc.message, attempted=True, code=ReasonCode.PLATFORM_ERROR)
    except Exception as exc:
        if transient_database_error(exc):
            delay = backoff(attempts)
            reason = f"database error: {describe_database_error(exc)}; next try in {delay.total_seconds():.0f}s"
            return Outcome(ActionState.DUE, reason, due_at=app.now() + delay, code=ReasonCode.DATABASE_ERROR)
        # A channel bug: keep the action and the error text for `actions retry`.
        log.exception("action %s crashed", action.idempotency_key)
        return Outcome(ActionState.FAILED, f"{type(exc).__name__}: {exc}", attempted=True,
                       code=ReasonCode.CHANNEL_ERROR)  # fmt: skip
    note = str(result.pop("reason", ""))
    return Outcome(ActionState.DONE, note, result, attempted=True, sent=True, code=_done_code(note, result))


def _done_code(note: str, result: Mapping[str, object]) -> ReasonCode:
    """The code of what a channel said about a done action: unconfirmed when its result says so."""
    if not note:
        return ReasonCode.NONE
    return ReasonCode.UNCONFIRMED if result.get("confirmed") is False else ReasonCode.OTHER


def order_of(app: App, action: ActionRecord) -> Order:
    """The order an action is about, as the event that caused it carried it; from the platform if
    that event is not stored (any more) or was about another order."""
    if action.event_key:
        order = app.store.event_order(action.shop_id, action.event_key)
        if order is not None and order.platform_id == action.order_id:
            return order
    return app.adapter(action.shop_id).fetch_order(action.order_id)


def refused_dependents(app: App, action: ActionRecord) -> str:
    """Why each action still waiting for ``action`` would be refused for good if it went now (its
    channel's ``refuses``: suppression, consent, the frequency cap), or '' if one of them would go,
    could not be judged (its channel has no check) or none waits. A deferral (quiet hours, the
    minimum gap) is no refusal: the message goes later and carries the coupon then."""
    dependents = app.store.waiting_dependents(action.idempotency_key)
    checks = app.plugins.refusal_checks()
    refusals = []
    for dependent in dependents:
        check = checks.get(dependent.kind.value)
        refusal = check(ActionJob(dependent, app, lambda d=dependent: order_of(app, d))) if check else None
        if refusal is None:
            return ""
        refusals.append(f"{dependent.idempotency_key} ({refusal.reason})")
    return "; ".join(refusals)


def fire_time_check(app: App, action: ActionRecord) -> str:
    """DESIGN rule 3: the customer's consent and later orders in the store, then the order re-read now
    (:func:`aftercare.actions.fire_time_reason`); say why the action must not fire, or ''."""
    if Recheck.UNSUBSCRIBED in action.rechecks and action.customer_email:
        consent = app.store.current_consent(action.shop_id, action.customer_email)
        if consent is ConsentState.UNSUBSCRIBED:
            return "fire-time check: the customer unsubscribed"
    if Recheck.ORDERED_AGAIN in action.rechecks and action.customer_email:
        later = app.store.order_paid_after(action.shop_id, action.customer_email, action.order_id)
        if later:
            return f"fire-time check: the customer ordered again (order {later})"
    return fire_time_reason(action, app.adapter(action.shop_id).fetch_order(action.order_id))


def _without_addresses(text: str) -> str:
    """Reasons may name the customer's address (the record keeps it); logs do not."""
    return _EMAIL.sub("<address>", text)


def backoff(attempts: int, retry_after: float | None = None) -> timedelta:
    """The wait before try ``attempts + 1`` of an action or of an event's dispatch.

    Exponential (30 s, 60 s, ... up to 6 h) with jitter over the upper half of
    each step, so work that failed together does not retry together; never
    sooner than a platform's ``Retry-After``.
    """
    ceiling = min(RETRY_CAP, RETRY_BASE * (2 ** (attempts - 1))).total_seconds()
    delay = random.uniform(ceiling / 2, ceiling)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return timedelta(seconds=delay)


def new_records(app: App, outcomes: Iterable[Dispatched]) -> list[ActionRecord]:
    """The action records a dispatch created (for printing and tests)."""
    keys = [key for outcome in outcomes for key in outcome.new_actions]
    return app.store.actions_by_keys(keys)
