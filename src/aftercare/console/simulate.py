"""What-if: replay a shop's recent events through a config, and compare with what was recorded.

``aftercare simulate --shop ID --days 30 [--config NEW.toml]`` (and the
console's what-if page) takes the shop's events of the last N days from the
store (or, when it holds none of them, from a poll of the platform; never on
the console's page), oldest first, and dispatches them through an :class:`App` built from
the given config, on a :class:`ManualClock` set to each event's time, into a
throwaway SQLite store in a temporary folder. Nothing is executed (the copy
is a dry run and only the hooks run), the real store is only read, and no
platform is called but for that poll.

Compared, per plugin, by idempotency key (a key names shop, plugin, action,
order or customer, and the plugin's key, so the same decision has the same
key under both configs):

- recorded: the real store's actions caused by those events that went out or
  are still to go (done, due, running, or dropped only because of a dry run);
- would be: the replay's actions that would have gone out (or are still to
  go), decided as the worker would have decided each one at its time, never
  with hindsight (:class:`Replay`): its due time moved out of the shop's quiet
  hours (marketing mail), then at that time: not withdrawn by its plugin
  before then, what it depends on gone before it, the dispatcher's fire-time
  rule (:func:`aftercare.actions.fire_time_reason`) against the order *as it
  was then* (the last version of it the replay had seen by that time), and
  for a mail the store's suppressions and consent as they were then and the
  frequency cap counted over the replay's own mails (plus the real mails of
  the days before the period). Actions due after now count as going, as the
  recorded side counts due ones.

With the config unchanged the two sides are the same action for action
(``tests/console/test_simulate.py`` checks it on a history with a capped
customer, a return after a sent mail and quiet hours).

A partial order (Shopify's refund or fulfillment webhooks) is replaced by the
last whole version of it seen so far, as the worker would re-read it.
"""

from __future__ import annotations

import heapq
import tempfile
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from aftercare.actions import ActionKind, ActionRecord, ActionState, ReasonCode, fire_time_reason
from aftercare.clock import ManualClock
from aftercare.mail.policy import quiet_until
from aftercare.models import ConsentState, Event, EventKind, Order, normalise_email
from aftercare.platform import MemoryShopState
from aftercare.store import SuppressionReason

if TYPE_CHECKING:
    from aftercare.app import App
    from aftercare.config import Config
    from aftercare.config.mail import MailSettings
    from aftercare.plugin_manager import PluginManager


@dataclass(frozen=True, slots=True)
class Line:
    """One action on either side of the comparison."""

    key: str
    plugin: str
    kind: str
    order_id: str
    due_at: datetime


@dataclass
class PluginDiff:
    plugin: str
    recorded: int = 0
    simulated: int = 0
    gone: list[Line] = field(default_factory=list)  # recorded, and would no longer be
    added: list[Line] = field(default_factory=list)  # would be, and was not


@dataclass
class Simulation:
    shop_id: str
    since: datetime
    until: datetime
    events: int
    plugins: list[PluginDiff]


def simulate(
    app: App,
    shop_id: str,
    days: int,
    config: Config | None = None,
    *,
    plugins: PluginManager | None = None,
    poll: bool = True,
) -> Simulation:
    """Replay the last ``days`` of ``shop_id`` through ``config`` (default: the app's own).

    With ``poll`` false (the console's page, a plain GET) a store without the
    period's events replays nothing instead of asking the platform.
    """
    from aftercare.app import App
    from aftercare.dispatch import Dispatcher

    until = app.now()
    since = until - timedelta(days=days)
    history = app.store.events_of_kind(shop_id, list(EventKind), since, until)
    if not history and poll:
        history = polled(app, shop_id, since)
    recorded = _recorded(app, shop_id, {e.dedupe_key for e in history})
    config = config or app.config
    with tempfile.TemporaryDirectory(prefix="aftercare-simulate-") as folder:
        database = f"sqlite:///{Path(folder) / 'simulated.db'}"
        clock = ManualClock(since)
        copy = App(config.model_copy(update={"database": database, "dry_run": True}), clock=clock, plugins=plugins)
        try:
            if shop_id not in copy.shops:
                raise KeyError(f"the config to simulate has no shop {shop_id!r}")
            copy.store.upgrade()
            dispatcher = Dispatcher(copy)
            whole: dict[str, Order] = {}
            versions: dict[str, list[tuple[datetime, Order]]] = {}
            for event in history:
                order = event.order
                if order.partial:
                    order = whole.get(order.platform_id) or app.store.latest_order(shop_id, order.platform_id) or order
                    event = replace(event, order=order)
                else:
                    whole[order.platform_id] = order
                clock.set(max(clock.now(), event.occurred_at))
                versions.setdefault(order.platform_id, []).append((clock.now(), order))
                dispatcher.dispatch(event)
            replayed = copy.store.every_action()
            mail = copy.mail_settings(shop_id)
            timezone = copy.shop(shop_id).profile.timezone
        finally:
            copy.close()
    would = Replay(app, shop_id, since, until, versions, mail, timezone).run(replayed)
    return Simulation(shop_id, since, until, len(history), _compare(recorded, would))


def polled(app: App, shop_id: str, since: datetime) -> list[Event]:
    """The period's events from the platform, for a store that has none of it yet.

    The adapter remembers what it saw in memory only, so the store's sync
    cursor and WooCommerce's remembered orders are left as they were.
    """
    adapter = app.new_adapter(shop_id, MemoryShopState())
    events = [event for batch in adapter.poll(None, since=since) for event in batch.events]
    return sorted(events, key=lambda event: event.occurred_at)


def _recorded(app: App, shop_id: str, event_keys: set[str]) -> list[ActionRecord]:
    """The real actions those events caused that went out or will (dry-run drops count as going)."""
    found = app.store.actions_of_events(shop_id, event_keys)
    going = (ActionState.DONE, ActionState.DUE, ActionState.RUNNING)
    dry_run = (ActionState.DROPPED, ReasonCode.DRY_RUN)
    return [a for a in found if a.state in going or (a.state, a.reason_code) == dry_run]


class Replay:
    """The worker's decisions on the replayed actions, each at its own time (no hindsight).

    A small scheduler: the actions due by ``until`` are taken in the order the
    worker takes them (due time, then id); each is decided as the dispatcher
    and the mail channel would decide it then (see the module docstring). A
    marketing mail due in quiet hours goes back in the queue at their end,
    where the frequency cap and the fire-time checks are asked again, as the
    deferred action is run again.
    """

    def __init__(self, app: App, shop_id: str, since: datetime, until: datetime,
                 versions: dict[str, list[tuple[datetime, Order]]], mail: MailSettings,
                 timezone: str) -> None:  # fmt: skip
        self.app, self.shop_id, self.since, self.until = app, shop_id, since, until
        self.versions, self.mail, self.timezone = versions, mail, timezone
        self.sent: dict[str, list[datetime]] = {}  # customer -> marketing mails the replay sent, by time
        self.before: dict[str, int] = {}  # customer -> real marketing mails in the cap's window before `since`

    def run(self, replayed: list[ActionRecord]) -> list[ActionRecord]:
        fate: dict[str, bool] = {}  # idempotency key -> went (True) or was dropped (False)
        by_key = {a.idempotency_key: a for a in replayed}
        queue = [(a.due_at, a.id, a) for a in replayed if a.due_at <= self.until]
        heapq.heapify(queue)
        while queue:
            at, _id, action = heapq.heappop(queue)
            decision = self.decide(action, at, fate, by_key)
            if isinstance(decision, datetime):  # later: quiet hours, or what it depends on is not done yet
                if decision > self.until:
                    fate[action.idempotency_key] = True  # still due now: counts as going, as a recorded due one
                else:
                    heapq.heappush(queue, (decision, action.id, action))
                continue
            fate[action.idempotency_key] = decision
            if decision and self._marketing(action):
                self.sent.setdefault(self._customer(action), []).append(at)
        going = [a for a in replayed if fate.get(a.idempotency_key, a.due_at > self.until)]
        # Not yet due and withdrawn during the replay: gone, as the real one would be.
        return [a for a in going if a.due_at <= self.until or a.state is ActionState.DUE]

    def decide(self, action: ActionRecord, at: datetime, fate: dict[str, bool],
               by_key: dict[str, ActionRecord]) -> bool | datetime:  # fmt: skip
        if action.state is not ActionState.DUE and action.updated_at <= at:
            return False  # its plugin withdrew it before it fell due
        if action.depends_on:
            first = by_key.get(action.depends_on)
            if first is None or fate.get(action.depends_on) is False:
                return False
            if action.depends_on not in fate:
                return max(at, first.due_at) + timedelta(microseconds=1)
        if not _would_go(action, self.order_at(action.order_id, at), at):
            return False
        if action.kind is not ActionKind.SEND_EMAIL:
            return True
        return self.mail_may_go(action, at)

    def mail_may_go(self, action: ActionRecord, at: datetime) -> bool | datetime:
        """The mail channel's policy (:func:`aftercare.mail.policy.check_send`) as it was at ``at``."""
        store, to = self.app.store, normalise_email(action.payload["to"])
        transactional = bool(action.payload.get("transactional", False))
        for entry in store.suppressions(self.shop_id, to):
            if entry.created_at <= at and (entry.reason is SuppressionReason.BOUNCED or not transactional):
                return False
        if transactional:
            return True
        consent = [state for state, _source, when in store.consent_history(self.shop_id, to) if when <= at]
        if consent and consent[-1] is ConsentState.UNSUBSCRIBED:
            return False
        if self.mail.frequency_cap:
            window = at - timedelta(days=self.mail.frequency_days)
            customer = self._customer(action)
            sent = sum(1 for t in self.sent.get(customer, []) if t >= window) + self._sent_before(customer, window)
            if sent >= self.mail.frequency_cap:
                return False
        quiet = quiet_until(at, self.timezone, self.mail.quiet_hours_start, self.mail.quiet_hours_end)
        return quiet if quiet is not None else True

    def order_at(self, order_id: str, at: datetime) -> Order | None:
        """The order as the replay had last seen it by ``at`` (the first version if none by then)."""
        seen = self.versions.get(order_id, [])
        earlier = [order for when, order in seen if when <= at]
        return earlier[-1] if earlier else (seen[0][1] if seen else None)

    def _sent_before(self, customer: str, window: datetime) -> int:
        """Real marketing mails to ``customer`` done in [window, since): the cap counts them too."""
        if window >= self.since:
            return 0
        if customer not in self.before:
            store = self.app.store
            self.before[customer] = store.marketing_mails_sent(self.shop_id, customer, window) - (
                store.marketing_mails_sent(self.shop_id, customer, self.since)
            )
        return self.before[customer]

    @staticmethod
    def _marketing(action: ActionRecord) -> bool:
        return action.kind is ActionKind.SEND_EMAIL and not action.payload.get("transactional", False)

    @staticmethod
    def _customer(action: ActionRecord) -> str:
        return normalise_email(action.customer_email or action.payload.get("to", ""))


def _would_go(action: ActionRecord, order: Order | None, now: datetime) -> bool:
    """The dispatcher's fire-time rule on ``order`` as it is at ``now`` (an action not due yet goes)."""
    if action.due_at > now or not action.rechecks or order is None:
        return True
    return not fire_time_reason(action, order)


def _compare(recorded: list[ActionRecord], would: list[ActionRecord]) -> list[PluginDiff]:
    diffs: dict[str, PluginDiff] = {}
    before = {a.idempotency_key: a for a in recorded}
    after = {a.idempotency_key: a for a in would}
    for key, a in before.items():
        diff = diffs.setdefault(a.plugin, PluginDiff(a.plugin))
        diff.recorded += 1
        if key not in after:
            diff.gone.append(_line(a))
    for key, a in after.items():
        diff = diffs.setdefault(a.plugin, PluginDiff(a.plugin))
        diff.simulated += 1
        if key not in before:
            diff.added.append(_line(a))
    return [diffs[name] for name in sorted(diffs)]


def _line(a: ActionRecord) -> Line:
    return Line(a.idempotency_key, a.plugin, a.kind.value, a.order_id, a.due_at)
