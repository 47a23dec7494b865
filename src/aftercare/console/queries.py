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
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from aftercare.actions import ActionRecord, ActionState
from aftercare.store import Store, StoredEvent, _action_record, _stored_event, actions, cursors, events, hook_runs

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
    shop = events.c.shop_id == shop_id
    with store.engine.connect() as conn:
        count = sa.select(sa.func.count()).select_from(events)
        events_today = conn.execute(count.where(shop, events.c.received_at >= today)).scalar_one()
        events_week = conn.execute(count.where(shop, events.c.received_at >= week)).scalar_one()
        events_failed = conn.execute(count.where(shop, events.c.state == "failed")).scalar_one()
        by_state = dict(
            conn.execute(
                sa.select(actions.c.state, sa.func.count())
                .where(actions.c.shop_id == shop_id)
                .group_by(actions.c.state)
            ).all()
        )
        due_now = conn.execute(
            sa.select(sa.func.count())
            .select_from(actions)
            .where(actions.c.shop_id == shop_id, actions.c.state == "due", actions.c.due_at <= now)
        ).scalar_one()
        last = conn.execute(
            sa.select(events.c.topic, sa.func.max(events.c.received_at)).where(shop).group_by(events.c.topic)
        ).all()
        sources = {}
        for topic, received in last:  # the source of that last one (webhook, poll, page), by index
            sources[topic] = conn.execute(
                sa.select(events.c.source)
                .where(shop, events.c.topic == topic, events.c.received_at == received)
                .limit(1)
            ).scalar_one()
        shop_cursors = conn.execute(
            sa.select(cursors.c.name, cursors.c.value, cursors.c.updated_at).where(cursors.c.shop_id == shop_id)
        ).all()
    received_type = events.c.received_at.type
    last_by_topic = sorted(
        ((topic, sources[topic], _utc(received_type, received, store)) for topic, received in last),
        key=lambda row: row[2],
        reverse=True,
    )
    states = {state.value: by_state.get(state.value, 0) for state in ActionState}
    return Overview(shop_id, events_today, events_week, states, due_now, last_by_topic,
                    [(n, v, u) for n, v, u in shop_cursors], events_failed)  # fmt: skip


@dataclass
class TimelineEntry:
    at: datetime
    what: str  # "event" | "action"
    event: StoredEvent | None = None
    runs: list[Any] = field(default_factory=list)
    action: ActionRecord | None = None


def timeline(store: Store, shop_id: str, order_id: str) -> list[TimelineEntry]:
    """Every event of the order with the hooks that ran on it, and every action, by time."""
    with store.engine.connect() as conn:
        stored = [
            _stored_event(r)
            for r in conn.execute(
                sa.select(events)
                .where(events.c.shop_id == shop_id, events.c.order_id == order_id)
                .order_by(events.c.id)
            )
        ]
        runs: dict[int, list[Any]] = {}
        if stored:
            query = (
                sa.select(hook_runs).where(hook_runs.c.event_id.in_([e.id for e in stored])).order_by(hook_runs.c.id)
            )
            for run in conn.execute(query):
                runs.setdefault(run.event_id, []).append(run)
        records = [
            _action_record(r)
            for r in conn.execute(
                sa.select(actions)
                .where(actions.c.shop_id == shop_id, actions.c.order_id == order_id)
                .order_by(actions.c.id)
            )
        ]
    entries = [TimelineEntry(e.received_at, "event", event=e, runs=runs.get(e.id, [])) for e in stored]
    entries += [TimelineEntry(a.created_at, "action", action=a) for a in records]
    entries.sort(key=lambda entry: (entry.at, entry.what == "action"))
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
    query = sa.select(actions).order_by(actions.c.id.desc()).limit(limit + 1)
    query = query.where(actions.c.shop_id == shops[0]) if len(shops) == 1 else query.where(actions.c.shop_id.in_(shops))
    for column, value in (
        (actions.c.plugin, flt.plugin),
        (actions.c.state, flt.state),
        (actions.c.order_id, flt.order_id),
    ):
        if value:
            query = query.where(column == value)
    if flt.since is not None:
        query = query.where(actions.c.created_at >= flt.since)
    if flt.until is not None:
        query = query.where(actions.c.created_at < flt.until)
    if before is not None:
        query = query.where(actions.c.id < before)
    with store.engine.connect() as conn:
        records = [_action_record(r) for r in conn.execute(query)]
    more = len(records) > limit
    records = records[:limit]
    return records, (records[-1].id if more and records else None)


def _utc(kind: Any, value: Any, store: Store) -> datetime:
    """MAX() over a column comes back untyped on SQLite (text); read it as the column would."""
    if isinstance(value, datetime):
        return kind.process_result_value(value, store.engine.dialect)
    return kind.process_result_value(datetime.fromisoformat(str(value)), store.engine.dialect)
