"""``aftercare actions list|retry|cancel``: the action outbox."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.table import Table

from aftercare import serialize
from aftercare.actions import ActionState
from aftercare.cli.common import (
    change_each,
    known_shop,
    open_app,
    open_store_to_read,
    reports_user_errors,
    short_time,
)

if TYPE_CHECKING:
    from aftercare.app import App


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
    if shop_id:
        known_shop(app, shop_id)
    open_store_to_read(app)
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


def _why_not(app: App, action_id: int) -> str:
    """Why a retry or cancel changed nothing: no such action, or the state it is in."""
    try:
        return f"it is {app.store.get_action(action_id).state.value}"
    except KeyError:
        return "no such action"


@actions.command("retry")
@click.argument("action_ids", nargs=-1, type=int, required=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON: id, changed, state, why_not.")
@click.pass_context
@reports_user_errors
def actions_retry(ctx: click.Context, action_ids: tuple[int, ...], as_json: bool) -> None:
    """Make failed or dropped actions due again, now. Exit status 2 if one could not be (done, or no such action)."""
    app = open_app(ctx)
    open_store_to_read(app)
    change_each("action", action_ids, app.store.retry_action, lambda i: _why_not(app, i), "due", as_json, "due")


@actions.command("cancel")
@click.argument("action_ids", nargs=-1, type=int, required=True)
@click.option("--reason", default="", help="Why; kept on the action with your user name.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON: id, changed, state, why_not.")
@click.pass_context
@reports_user_errors
def actions_cancel(ctx: click.Context, action_ids: tuple[int, ...], reason: str, as_json: bool) -> None:
    """Drop due or failed actions by hand. Exit status 2 if one could not be (done, running, or no such action)."""
    app = open_app(ctx)
    open_store_to_read(app)
    who = os.environ.get("USER", "someone")
    text = f"cancelled by {who}" + (f": {reason}" if reason else "")

    def cancel(action_id: int) -> bool:
        return app.store.cancel_action(action_id, text)

    change_each("action", action_ids, cancel, lambda i: _why_not(app, i), "dropped", as_json, "dropped")
