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
- would be: the replay's actions not withdrawn by a plugin, and, for delayed
  ones due by now, not dropped by the dispatcher's fire-time rule
  (:func:`aftercare.actions.fire_time_reason`) against the order as the replay
  last saw it: cancelled, refunded, returned, lines refunded, unsubscribed as
  the platform says (the store's own consent record is not replayed).

A partial order (Shopify's refund or fulfillment webhooks) is replaced by the
last whole version of it seen so far, as the worker would re-read it.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from aftercare.actions import ActionRecord, ActionState, ReasonCode, fire_time_reason
from aftercare.clock import ManualClock
from aftercare.models import Event, EventKind, Order
from aftercare.platform import MemoryShopState

if TYPE_CHECKING:
    from aftercare.app import App
    from aftercare.config import Config
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
            for event in history:
                order = event.order
                if order.partial:
                    order = whole.get(order.platform_id) or app.store.latest_order(shop_id, order.platform_id) or order
                    event = replace(event, order=order)
                else:
                    whole[order.platform_id] = order
                clock.set(max(clock.now(), event.occurred_at))
                dispatcher.dispatch(event)
            replayed = copy.store.every_action()
        finally:
            copy.close()
    would = [a for a in replayed if _would_go(a, whole.get(a.order_id), until)]
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


def _would_go(action: ActionRecord, order: Order | None, now: datetime) -> bool:
    if action.state is not ActionState.DUE:
        return False  # withdrawn by a plugin (ctx.cancel) during the replay
    if action.due_at > now or not action.rechecks or order is None:
        return True
    return not fire_time_reason(action, order)  # the dispatcher's rule on the order as it is now


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
