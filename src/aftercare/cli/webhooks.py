"""``aftercare webhooks register|list|remove``: the platform's subscriptions for a shop."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

import click

from aftercare.app import App
from aftercare.cli.common import UserError, open_app, open_store, reports_user_errors
from aftercare.platform import PlatformError
from aftercare.webhook_subscriptions import list_subscriptions, register_subscriptions, remove_subscriptions


@click.group()
def webhooks() -> None:
    """The platform's webhook subscriptions for a shop."""


def _shop_command(func: Callable[[App, str], dict[str, Any]]) -> Any:
    """Common options, the app, and the platform's errors as one-line user errors (exit 2)."""

    @click.option("--shop", "shop_id", required=True, help="Shop id from the config.")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @click.pass_context
    @functools.wraps(func)
    @reports_user_errors
    def command(ctx: click.Context, shop_id: str, as_json: bool) -> None:
        app = open_app(ctx)
        if shop_id not in app.shops:
            raise UserError(f"no shop {shop_id!r} (known: {', '.join(app.shops) or 'none'})")
        if app.shop(shop_id).keeps_tokens:
            open_store(app)  # where the shop's granted token is kept
        try:
            result = func(app, shop_id)
        except PlatformError as exc:
            raise UserError(f"{shop_id}: {exc.message}") from None
        if as_json:
            click.echo(json.dumps(result, indent=2))
        else:
            click.echo(result.pop("summary"))
            for row in result.get("subscriptions", []):
                mark = "" if row["ours"] else "   (not this deployment)"
                failures = "" if row["failure_count"] is None else f", {row['failure_count']} failed"
                state = f"{row['status']}{failures}"
                click.echo(f"  {row['topic']:<28} {state:<10} {row['address']}{mark}")

    return command


@webhooks.command("register")
@_shop_command
def webhooks_register(app: App, shop_id: str) -> dict[str, Any]:
    """Subscribe the topics the shop's enabled plugins need (idempotent)."""
    return register_subscriptions(app, shop_id)


@webhooks.command("list")
@_shop_command
def webhooks_list(app: App, shop_id: str) -> dict[str, Any]:
    """The shop's subscriptions, and the topics its plugins need that are missing."""
    return list_subscriptions(app, shop_id)


@webhooks.command("remove")
@_shop_command
def webhooks_remove(app: App, shop_id: str) -> dict[str, Any]:
    """Delete the shop's subscriptions that point at this deployment (others are left alone)."""
    return remove_subscriptions(app, shop_id)
