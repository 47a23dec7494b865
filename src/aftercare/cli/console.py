"""``aftercare console add-user | list-users | remove-user`` and ``aftercare simulate``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from aftercare.cli.common import UserError, known_shop, open_app, open_store, open_store_to_read, reports_user_errors
from aftercare.config import load_config
from aftercare.console import accounts
from aftercare.console.simulate import Simulation
from aftercare.console.simulate import simulate as run_simulation


@click.group()
def console() -> None:
    """The web console's accounts (the pages are served by `aftercare serve` under /console)."""


@console.command("add-user")
@click.argument("name")
@click.option("--shops", required=True, help="Shop ids separated by commas, or 'all' (agency staff).")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
@reports_user_errors
def add_user(ctx: click.Context, name: str, shops: str, password_stdin: bool, as_json: bool) -> None:
    """Create NAME (or set its password and shops). The password is asked for, never taken as an argument."""
    app = open_app(ctx)
    try:
        allowed = accounts.parse_shops(shops, list(app.shops))
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < 10:
        raise UserError("the password must have at least 10 characters")
    open_store(app)
    try:
        new = accounts.add_user(app.store, name, password, allowed, app.now())
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if as_json:
        click.echo(json.dumps({"name": name, "shops": list(allowed), "added": new}, indent=2))
        return
    click.echo(f"{'added' if new else 'updated'} console user {name} (shops: {', '.join(allowed)})")


@console.command("list-users")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
@reports_user_errors
def list_users(ctx: click.Context, as_json: bool) -> None:
    """Console accounts and the shops each may see (never their hashes)."""
    app = open_app(ctx)
    open_store_to_read(app)
    users = accounts.list_users(app.store)
    if as_json:
        rows = [{"name": u.name, "shops": list(u.shops), "created_at": u.created_at.isoformat()} for u in users]
        click.echo(json.dumps(rows, indent=2))
        return
    for user in users:
        click.echo(f"{user.name}\t{','.join(user.shops)}\t{user.created_at:%Y-%m-%d}")


@console.command("remove-user")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
@reports_user_errors
def remove_user(ctx: click.Context, name: str, as_json: bool) -> None:
    """Delete NAME; their open sessions end at their next request."""
    app = open_app(ctx)
    open_store_to_read(app)
    if not accounts.remove_user(app.store, name):
        raise UserError(f"no console user {name!r}")
    click.echo(json.dumps({"removed": name}, indent=2) if as_json else f"removed console user {name}")


@click.command()
@click.option("--shop", "shop_id", required=True, help="Shop id from the config.")
@click.option("--days", default=30, show_default=True, type=click.IntRange(1, 3650), help="How far back to replay.")
@click.option(
    "--proposed",
    "proposed",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The config to try (default: the current one).",
)
@click.option(
    "--config",
    "old_proposed",
    hidden=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The old name of --proposed, until the next release (-c names the config, as before the command).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
@reports_user_errors
def simulate(
    ctx: click.Context, shop_id: str, days: int, proposed: Path | None, old_proposed: Path | None, as_json: bool
) -> None:
    """What-if: replay the shop's stored events of the last DAYS through a config, in a dry run.

    Shows per plugin what was recorded, what would be, and which actions
    would no longer happen or would be new. Only the events the store holds are
    replayed (`aftercare sync --since` fills it first); nothing is sent, no
    platform is called, nothing is written to the store.
    """
    if old_proposed is not None:
        if proposed is not None:
            raise UserError("give the config to try once, with --proposed")
        click.echo("note: `simulate --config` is now `simulate --proposed`; from the next release "
                   "--config names the config, as before the command", err=True)  # fmt: skip
        proposed = old_proposed
    app = open_app(ctx)
    known_shop(app, shop_id)
    open_store_to_read(app)
    config = load_config(proposed) if proposed else None
    try:
        result = run_simulation(app, shop_id, days, config, poll=False)
    except KeyError as exc:
        raise UserError(f"{proposed}: {exc.args[0]}" if proposed else str(exc.args[0])) from None
    if not result.events:
        since = f"{result.since:%Y-%m-%d}"
        fill = f"aftercare sync --shop {shop_id} --since {since}"
        raise UserError(f"{shop_id}: no events stored since {since}, so nothing to replay (`{fill}` fetches them)")
    if as_json:
        click.echo(json.dumps(_as_data(result), indent=2))
        return
    _print(result)


def _as_data(result: Simulation) -> dict:
    def line(x) -> dict:  # noqa: ANN001
        return {
            "key": x.key,
            "plugin": x.plugin,
            "kind": x.kind,
            "order_id": x.order_id,
            "due_at": x.due_at.isoformat(),
        }

    return {
        "shop": result.shop_id,
        "since": result.since.isoformat(),
        "until": result.until.isoformat(),
        "events": result.events,
        "plugins": [
            {
                "plugin": p.plugin,
                "recorded": p.recorded,
                "would_be": p.simulated,
                "no_longer": [line(x) for x in p.gone],
                "new": [line(x) for x in p.added],
            }
            for p in result.plugins
        ],  # fmt: skip
    }


def _print(result: Simulation) -> None:
    out = Console()
    table = Table(title=f"{result.shop_id}: {result.events} events from {result.since:%Y-%m-%d %H:%M} "
                        f"to {result.until:%Y-%m-%d %H:%M} UTC, replayed in a dry run")  # fmt: skip
    for column in ("plugin", "recorded", "would be", "no longer", "new"):
        table.add_column(column)
    for p in result.plugins:
        table.add_row(p.plugin, str(p.recorded), str(p.simulated), str(len(p.gone)), str(len(p.added)))
    out.print(table)
    for p in result.plugins:
        for x in p.gone:
            out.print(f"- no longer: {x.plugin} {x.kind} order {x.order_id} ({x.key})", markup=False, highlight=False)
        for x in p.added:
            out.print(f"+ new: {x.plugin} {x.kind} order {x.order_id} ({x.key})", markup=False, highlight=False)
