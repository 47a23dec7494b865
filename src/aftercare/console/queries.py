"""What the console's pages read from the store.

Each query is bounded by an index (migration 0005) or a page size, so a page
costs milliseconds at a million actions (``bench/console.py``): counts by
(shop, state), events since a time by (shop, received_at), the last event per
topic by (shop, topic, received_at), pages of actions newest first by
keyset on ``id`` (``WHERE id < last seen``), never ``OFFSET``.

Every query takes the shops the user may see and filters by them: a shop id
a user may not see is never put in a WHERE clause that could return its rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from aftercare.actions import ActionRecord, ActionState
from aftercare.models import Order
from aftercare.store import HookRun, Store, StoredEvent, StoredSurveyAnswer

PAGE_SIZE = 50


@dataclass(frozen=True, slots=True)
class Overview:
    shop_id: str
    events_today: int
    events_week: int
    actions: dict[str, int]  # state -> count
    due_now: int
    last_by_topic: list[tuple[str, str, datetime]]  # topic, source, last received
    cursors: list[tuple[str, str, datetime]]  # name, value, updated
    events_failed: int = 0  # dispatch gave up (the order could not be re-read): see the order's timeline


def overview(store: Store, shop_id: str, timezone: str, now: datetime) -> Overview:
    zone = ZoneInfo(timezone)
    local = now.astimezone(zone)
    today = datetime.combine(local.date(), time(), zone)
    week = today - timedelta(days=local.weekday())
    by_state = store.count_actions_by_state(shop_id)
    states = {state.value: by_state.get(state.value, 0) for state in ActionState}
    return Overview(
        shop_id,
        events_today=store.count_events(shop_id, since=today),
        events_week=store.count_events(shop_id, since=week),
        actions=states,
        due_now=store.count_due_actions(shop_id, now),
        last_by_topic=store.last_event_per_topic(shop_id),
        cursors=store.shop_cursors(shop_id),
        events_failed=store.count_events(shop_id, state="failed"),
    )


@dataclass
class TimelineEntry:
    at: datetime
    what: str  # "event" | "action" | "answer"
    event: StoredEvent | None = None
    runs: list[HookRun] = field(default_factory=list)
    action: ActionRecord | None = None
    answer: StoredSurveyAnswer | None = None


def timeline(store: Store, shop_id: str, order_id: str) -> list[TimelineEntry]:
    """Every event of the order with the hooks that ran on it, every action and every survey answer
    (its latest score, at the time of its first), by time."""
    stored = store.order_events(shop_id, order_id)
    runs = store.hook_runs_of_events([e.id for e in stored])
    records = store.order_actions(shop_id, order_id)
    entries = [TimelineEntry(e.received_at, "event", event=e, runs=runs.get(e.id, [])) for e in stored]
    entries += [TimelineEntry(a.created_at, "action", action=a) for a in records]
    if entries:  # answers of an order nothing else is known of do not make a timeline
        answers = store.order_survey_answers(shop_id, order_id)
        entries += [TimelineEntry(a.answer.answered_at, "answer", answer=a) for a in answers]
    entries.sort(key=lambda entry: (entry.at, ("event", "action", "answer").index(entry.what)))
    return entries


@dataclass(frozen=True, slots=True)
class ActionFilter:
    shop_id: str = ""
    plugin: str = ""
    state: str = ""
    since: datetime | None = None  # created at or after
    until: datetime | None = None  # created before
    order_id: str = ""


def actions_page(
    store: Store, shops: Sequence[str], flt: ActionFilter, before: int | None = None, limit: int = PAGE_SIZE
) -> tuple[list[ActionRecord], int | None]:
    """One page of actions newest first, and the id to continue below (None on the last page)."""
    shops = [s for s in shops if not flt.shop_id or s == flt.shop_id]
    if not shops:
        return [], None
    records = store.actions_page(
        shops, plugin=flt.plugin, state=flt.state, order_id=flt.order_id, since=flt.since, until=flt.until,
        before=before, limit=limit + 1,
    )  # fmt: skip
    more = len(records) > limit
    records = records[:limit]
    return records, (records[-1].id if more and records else None)


@dataclass(frozen=True, slots=True)
class Found:
    """An order the search found: where, its platform id, and the order as last stored."""

    shop_id: str
    order_id: str
    order: Order | None


def search(store: Store, shops: Sequence[str], text: str) -> list[Found]:
    """The orders of these shops that ``text`` names: a customer's address (every order of theirs),
    else a platform id, else an order number with or without ``#`` (``#1005``, ``1005``)."""
    text = text.strip()[:320]
    if not text or not shops:
        return []
    if "@" in text:
        hits = store.orders_of_customer(shops, text)
    else:
        hits = [(s, text) for s in shops if store.order_events(s, text)]
        hits += [hit for hit in store.orders_numbered(shops, text) if hit not in hits]
    return [Found(shop_id, order_id, store.latest_order(shop_id, order_id)) for shop_id, order_id in hits]
