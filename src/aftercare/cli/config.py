"""``aftercare init`` and ``aftercare check``: the config file, written and checked."""

from __future__ import annotations

import json
import re
import sys
from importlib import resources
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from aftercare.app import App
from aftercare.cli.common import (
    USAGE_ERROR,
    UserError,
    known_shop,
    open_app,
    open_store,
    redact_url,
    reports_user_errors,
    store_ready,
)
from aftercare.config import ConfigError
from aftercare.live import live_problems
from aftercare.mail.brand import brand_problems
from aftercare.mail.templates import check_templates
from aftercare.platform import LiveWarning, MemoryShopState
from aftercare.vault import new_secret_key


@click.command()
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
@reports_user_errors
def init(ctx: click.Context, force: bool, as_json: bool) -> None:
    """Write a config file from the example (the embedded default)."""
    path = Path(ctx.obj["config"])
    if path.exists() and not force:
        raise UserError(f"{path} exists; use --force to overwrite it")
    example = resources.files("aftercare").joinpath("config.example.toml").read_text(encoding="utf-8")
    path.write_text(with_fresh_secret_key(example), encoding="utf-8")
    next_command = f"aftercare --config {path} check"
    if as_json:
        click.echo(json.dumps({"wrote": str(path), "next": next_command}, indent=2))
        return
    click.echo(f"wrote {path} with a fresh secret_key; next: {next_command}")


_SECRET_KEY_PLACEHOLDER = re.compile(r'^# secret_key = "\$\{AFTERCARE_SECRET_KEY\}"$', re.MULTILINE)


def with_fresh_secret_key(example: str) -> str:
    """The example with its top-level ``secret_key`` line (commented out, before any table) set
    to a new random key: each deployment encrypts its stored tokens with its own."""
    match = _SECRET_KEY_PLACEHOLDER.search(example)
    if match is None or "\n[" in example[: match.start()]:
        return example
    return f'{example[: match.start()]}secret_key = "{new_secret_key()}"{example[match.end() :]}'


@click.command()
@click.option("--shop", "shop_ids", multiple=True, help="Only this shop (repeatable).")
@click.option("--live", is_flag=True, help="Also call each shop's platform and SMTP relay with its credentials.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON: the shops, store, queue and live problems.")
@click.pass_context
@reports_user_errors
def check(ctx: click.Context, shop_ids: tuple[str, ...], live: bool, as_json: bool) -> None:
    """Validate the config: shops, platform keys, plugin settings. Secrets are never shown.

    With --live, log in to each shop's platform and SMTP relay and print one
    line per problem (bad token, missing API scope, wrong URL, TLS failure).
    """
    app = open_app(ctx)
    for shop_id in shop_ids:
        known_shop(app, shop_id)
    shops = [shop for shop in app.shops.values() if not shop_ids or shop.id in shop_ids]
    readable = any(shop.keeps_tokens for shop in shops) and _store_readable(app)
    logins = {}
    for shop in shops:
        adapter = app.adapter(shop.id) if readable else app.new_adapter(shop.id, MemoryShopState())
        logins[shop.id] = adapter.authentication() or ""
    template_problems = check_templates(app) + brand_problems(app)
    if template_problems:
        raise ConfigError(template_problems)
    rows = [
        {
            "id": shop.id,
            "platform": shop.config.platform,
            "bundle": shop.config.bundle,
            "production": shop.config.production,
            "locale": shop.config.locale,
            "timezone": shop.config.timezone,
            "plugins_enabled": list(shop.enabled_plugins()),
            "login": logins[shop.id],
        }
        for shop in shops
    ]
    found: list[str] = []
    if live:
        if any(shop.keeps_tokens for shop in shops):
            open_store(app)  # the granted token is kept there, for every process to share
        found = live_problems(app, [shop.id for shop in shops])
    failed = any(not isinstance(line, LiveWarning) for line in found)
    if as_json:
        live_rows = [{"level": "warning" if isinstance(line, LiveWarning) else "error", "text": str(line)}
                     for line in found]  # fmt: skip
        report = {"config": ctx.obj["config"], "ok": not failed, "shops": rows,
                  "store": redact_url(app.config.database_url), "queue": redact_url(app.config.queue_url),
                  "live": live_rows if live else None}  # fmt: skip
        click.echo(json.dumps(report, indent=2))
    else:
        _print_check(ctx.obj["config"], app, rows)
    for line in found:
        click.echo(f"{'warning' if isinstance(line, LiveWarning) else 'error'}: {line}", err=True)
    if failed:
        sys.exit(USAGE_ERROR)
    if live and not as_json:
        click.echo(f"live: {len(shops)} shop(s) reached their platform and mail relay")


def _print_check(config_path: str, app: App, rows: list[dict]) -> None:
    console = Console()
    table = Table(title=f"{config_path}: OK")
    for column in ("shop", "platform", "bundle", "production", "locale", "time zone", "plugins enabled"):
        table.add_column(column)
    for row in rows:
        production = "yes" if row["production"] else "no (dry run)"
        table.add_row(row["id"], row["platform"], row["bundle"] or "-", production, row["locale"], row["timezone"],
                      ", ".join(row["plugins_enabled"]) or "-")  # fmt: skip
    console.print(table)
    for row in rows:
        if row["login"]:
            click.echo(f"{row['id']}: logs in with {row['login']}")
    console.print(f"store: {redact_url(app.config.database_url)}")
    console.print(f"queue: {redact_url(app.config.queue_url)}")
    if not app.shops:
        console.print("[yellow]no shops configured[/yellow]")


def _store_readable(app: App) -> bool:
    """Whether the store answers and has its tables (an install's token is kept there).
    A store that is down is reported by the commands that need it, not by ``check``."""
    try:
        return store_ready(app)
    except Exception:
        return False
