"""``aftercare events list|retry``: the event inbox."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.table import Table

from aftercare import serialize
from aftercare.cli.common import (
    change_each,
    known_shop,
    open_app,
    open_store_to_read,
    reports_user_errors,
)

if TYPE_CHECKING:
    from aftercare.app import App


@click.group()
def events() -> None:
    """The event inbox."""


@events.command("list")
@click.option("--shop", "shop_id", help="Only this shop.")
@click.option("--order", "order_id", help="Only this order (platform id).")
@click.option("--limit", default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
@reports_user_errors
def events_list(ctx, shop_id, order_id, limit, as_json) -> None:  # noqa: ANN001
    """Received events, newest first, with the plugins that ran on each."""
    app = open_app(ctx)
    if shop_id:
        known_shop(app, shop_id)
    open_store_to_read(app)
    stored = app.store.list_events(shop_id=shop_id, order_id=order_id, limit=limit)
    rows = [
        {
            "id": s.id,
            "shop": s.event.shop_id,
            "order": s.event.order.platform_id,
            "kind": s.event.kind.value,
            "topic": s.event.topic,
            "source": s.event.source,
            "occurred_at": s.event.occurred_at.isoformat(),
            "received_at": s.received_at.isoformat(),
            "state": s.state,
            "attempts": s.attempts,
            "reason": s.reason,  # why its last dispatch failed (it backs off, then fails)
            "retry_at": s.retry_at.isoformat() if s.retry_at else None,
            "dedupe_key": s.event.dedupe_key,
            "hooks": [serialize.to_data(run) for run in app.store.hook_runs_for(s.id)],
        }
        for s in stored
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table(title="events")
    for column in ("id", "shop", "order", "kind", "source", "received", "state", "plugins", "reason"):
        table.add_column(column, overflow="fold")
    for row in rows:
        plugins = ", ".join(f"{h['plugin']}:{h['outcome']}" for h in row["hooks"]) or "-"
        table.add_row(str(row["id"]), row["shop"], row["order"], row["kind"], row["source"],
                      row["received_at"][:16], row["state"], plugins, row["reason"])  # fmt: skip
    Console().print(table)


@events.command("retry")
@click.argument("event_ids", nargs=-1, type=int, required=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON: id, changed, why_not.")
@click.pass_context
@reports_user_errors
def events_retry(ctx: click.Context, event_ids: tuple[int, ...], as_json: bool) -> None:
    """Make failed events pending again, now (the worker dispatches them). Exit status 2 if one was not failed."""
    app = open_app(ctx)
    open_store_to_read(app)
    change_each("event", event_ids, app.store.retry_event, lambda i: _why_not(app, i), "pending again", as_json)


def _why_not(app: App, event_id: int) -> str:
    try:
        return f"it is {app.store.get_event(event_id).state}, not failed"
    except KeyError:
        return "no such event"
