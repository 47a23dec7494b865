"""``aftercare actions list|retry|cancel``: the action outbox."""

from __future__ import annotations

import json
import os

import click
from rich.console import Console
from rich.table import Table

from aftercare import serialize
from aftercare.actions import ActionState
from aftercare.cli.common import open_app, open_store, reports_user_errors, short_time


@click.group()
def actions() -> None:
    """The action outbox."""


@actions.command("list")
@click.option("--shop", "shop_id", help="Only this shop.")
@click.option("--plugin", help="Only this plugin.")
@click.option("--state", type=click.Choice([s.value for s in ActionState]), help="Only this state.")
@click.option("--order", "order_id", help="Only this order (platform id).")
@click.option("--limit", default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
@reports_user_errors
def actions_list(ctx, shop_id, plugin, state, order_id, limit, as_json) -> None:  # noqa: ANN001
    """Recorded actions, newest first, with their state and reason."""
    app = open_app(ctx)
    open_store(app)
    records = app.store.list_actions(
        shop_id=shop_id, plugin=plugin, state=ActionState(state) if state else None, order_id=order_id, limit=limit
    )
    if as_json:
        click.echo(json.dumps([serialize.to_data(r) for r in records], indent=2))
        return
    table = Table(title="actions")
    for column in ("id", "shop", "order", "plugin", "action", "due", "state", "reason"):
        table.add_column(column, overflow="fold")
    for r in records:
        table.add_row(str(r.id), r.shop_id, r.order_id, r.plugin, r.kind.value, short_time(r.due_at),
                      r.state.value, r.reason)  # fmt: skip
    Console().print(table)


@actions.command("retry")
@click.argument("action_ids", nargs=-1, type=int, required=True)
@click.pass_context
@reports_user_errors
def actions_retry(ctx: click.Context, action_ids: tuple[int, ...]) -> None:
    """Make failed or dropped actions due again, now."""
    app = open_app(ctx)
    open_store(app)
    for action_id in action_ids:
        ok = app.store.retry_action(action_id)
        click.echo(f"action {action_id}: {'due again' if ok else 'not retried (done, or no such action)'}")


@actions.command("cancel")
@click.argument("action_ids", nargs=-1, type=int, required=True)
@click.option("--reason", default="", help="Why; kept on the action with your user name.")
@click.pass_context
@reports_user_errors
def actions_cancel(ctx: click.Context, action_ids: tuple[int, ...], reason: str) -> None:
    """Drop due or failed actions by hand."""
    app = open_app(ctx)
    open_store(app)
    who = os.environ.get("USER", "someone")
    for action_id in action_ids:
        ok = app.store.cancel_action(action_id, f"cancelled by {who}" + (f": {reason}" if reason else ""))
        click.echo(f"action {action_id}: {'cancelled' if ok else 'not cancelled (done, running, or no such action)'}")
