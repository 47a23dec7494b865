"""``aftercare plugins list``: what is loaded, from where, and for which shops."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from aftercare.cli.common import blocked_plugins, open_app, reports_user_errors
from aftercare.plugin_manager import PluginManager


@click.group()
def plugins() -> None:
    """Installed plugins."""


@plugins.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
@reports_user_errors
def plugins_list(ctx: click.Context, as_json: bool) -> None:
    """Name, source, version, hooks, and the shops each is enabled for (or that it is blocked)."""
    config_path = Path(ctx.obj["config"])
    app = open_app(ctx) if config_path.exists() else None
    manager = app.plugins if app else PluginManager.load(blocked=blocked_plugins(ctx))
    rows = []
    for info in manager.plugins():
        shops = [s.id for s in app.shops.values() if info.name in s.enabled_plugins()] if app else []
        rows.append(
            {
                "name": info.name,
                "source": info.source,
                "version": info.version,
                "hooks": list(info.hooks),
                "enabled_for": shops if info.handles_events else [],
                "blocked": False,
            }
        )
    for info in manager.blocked():  # never imported: no hooks known, enabled for no shop
        row = {"name": info.name, "source": info.source, "version": info.version, "hooks": [], "enabled_for": []}
        rows.append({**row, "blocked": True, "blocked_by": info.blocked})
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table(title="plugins")
    for column in ("name", "source", "version", "hooks", "enabled for"):
        table.add_column(column)
    for row in rows:
        enabled_for = f"blocked ({row['blocked_by']})" if row["blocked"] else ", ".join(row["enabled_for"]) or "-"
        table.add_row(row["name"], row["source"], row["version"], ", ".join(row["hooks"]), enabled_for)
    Console().print(table)
