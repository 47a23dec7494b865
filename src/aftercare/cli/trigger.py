"""``aftercare trigger`` (``replay`` until the next release): run the hooks for an order file as if an event
just happened. ``aftercare simulate`` is what replays the stored events."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from aftercare import serialize
from aftercare.actions import ActionRecord
from aftercare.app import App
from aftercare.cli.common import UserError, open_app, open_store, read_order, reports_user_errors, store_ready
from aftercare.dispatch import Dispatcher, execute_due
from aftercare.models import Event, EventKind, Order, ShipmentException, ShipmentProblem


@click.command()
@click.option("--shop", "shop_id", required=True, help="Shop id from the config.")
@click.option(
    "--event",
    "kind",
    required=True,
    type=click.Choice([k.value for k in EventKind]),
    help="Which post-sale moment to trigger.",
)
@click.option(
    "--order",
    "order_file",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="An order as the platform sends it (webhook/REST JSON), or a core Order as JSON.",
)
@click.option(
    "--problem",
    type=click.Choice([p.value for p in ShipmentProblem]),
    default=ShipmentProblem.FAILURE.value,
    show_default=True,
    help="For --event shipment_exception: what the carrier reports about the first parcel.",
)
@click.option("--dry-run", is_flag=True, help="Run the hooks and show the actions; store and execute nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
@reports_user_errors
def trigger(
    ctx: click.Context, shop_id: str, kind: str, order_file: Path, problem: str, dry_run: bool, as_json: bool
) -> None:
    """Run the hooks for ORDER as if EVENT just happened, and show the actions per plugin."""
    app = open_app(ctx)
    try:
        app.shop(shop_id)
    except KeyError as exc:
        raise UserError(str(exc.args[0])) from None
    order = read_order(app, shop_id, order_file)
    event = trigger_event(app, EventKind(kind), order, ShipmentProblem(problem))
    dispatcher = Dispatcher(app)
    if dry_run:
        results = dispatcher.run_hooks(event)
        requests, runs = results.sink.requests, results.runs
        existing = (
            {a.idempotency_key: a for a in app.store.actions_by_keys(r.idempotency_key for r in requests)}
            if store_ready(app)
            else {}
        )
        rows = [
            {
                "plugin": r.plugin,
                "action": r.kind.value,
                "key": r.idempotency_key,
                "due_at": r.due_at.isoformat(),
                "outcome": f"already {existing[r.idempotency_key].state.value}"
                if r.idempotency_key in existing
                else "would be recorded (dry run)",
                "payload": r.payload,
            }
            for r in requests
        ]
    else:
        open_store(app)
        outcome = dispatcher.dispatch(event)
        runs = outcome.results.runs
        execute_due(app)
        records = {a.idempotency_key: a for a in app.store.actions_by_keys(r.idempotency_key for r in outcome.requests)}
        rows = [
            {
                "plugin": r.plugin,
                "action": r.kind.value,
                "key": r.idempotency_key,
                "due_at": r.due_at.isoformat(),
                "outcome": _outcome(records[r.idempotency_key], r.idempotency_key in outcome.new_actions),
                "payload": records[r.idempotency_key].payload,
            }
            for r in outcome.requests
        ]
    failures = [{"plugin": run.plugin, "hook": run.hook, "error": run.error} for run in runs if run.outcome == "failed"]
    if as_json:
        click.echo(json.dumps({"event": serialize.to_data(event), "actions": rows, "failed_hooks": failures}, indent=2))
        return
    console = Console()
    console.print(
        f"{event.kind.hook} for order {order.number or order.platform_id} of shop {shop_id}"
        f" ({len(runs)} plugin(s) ran{', dry run' if dry_run else ''})"
    )
    table = Table()
    for column in ("plugin", "action", "due", "outcome", "details"):
        table.add_column(column, overflow="fold")
    for row in rows:
        due = datetime.fromisoformat(row["due_at"])
        table.add_row(row["plugin"], row["action"], _due(due, app.now()), row["outcome"], _summary(row["payload"]))
    console.print(table)
    for failure in failures:
        console.print(f"[red]{failure['plugin']} failed in {failure['hook']}: {failure['error']}[/red]")


def trigger_event(app: App, kind: EventKind, order: Order, problem: ShipmentProblem = ShipmentProblem.FAILURE) -> Event:
    """An Event for ``order`` as if ``kind`` happened now, about its first parcel/refund/return
    (a shipment exception: the carrier reporting ``problem`` about the first parcel).

    Its dedupe key and source still say ``replay``, the command's old name: events stored before
    the rename keep deduplicating the same order's trigger."""
    about_a_parcel = (EventKind.SHIPPED, EventKind.DELIVERED, EventKind.SHIPMENT_EXCEPTION)
    shipment = order.shipments[0] if order.shipments and kind in about_a_parcel else None
    if kind in about_a_parcel and shipment is None:
        raise UserError(f"order {order.platform_id} has no shipment to replay {kind.value} for")
    exception = ShipmentException(problem, app.now()) if kind is EventKind.SHIPMENT_EXCEPTION else None
    refund = order.refunds[0] if order.refunds and kind is EventKind.REFUNDED else None
    return_request = order.returns[0] if order.returns and kind is EventKind.RETURN_REQUESTED else None
    subject = shipment or refund or return_request
    return Event(
        kind=kind,
        shop_id=order.shop_id,
        order=order,
        occurred_at=app.now(),
        dedupe_key=f"replay:{kind.value}:{order.platform_id}:{subject.platform_id if subject else ''}"
        + (f":{problem.value}" if exception else ""),
        shipment=shipment,
        exception=exception,
        refund=refund,
        return_request=return_request,
        source="replay",
    )


def _outcome(record: ActionRecord, new: bool) -> str:
    state = record.state.value + (f": {record.reason}" if record.reason else "")
    return state if new else f"already recorded ({state})"


def _summary(payload: dict[str, Any]) -> str:
    parts = [f"{k}={v}" for k, v in payload.items() if k not in ("context", "customer") and v not in (None, "")]
    return ", ".join(parts)


def _due(due: datetime, now: datetime) -> str:
    """'now' or how far ahead, e.g. 'in 7d 0h'."""
    minutes = round((due - now).total_seconds() / 60)
    if minutes < 1:
        return "now"
    return f"in {minutes // 1440}d {minutes % 1440 // 60}h"
