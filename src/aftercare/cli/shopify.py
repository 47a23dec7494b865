"""``aftercare shopify install``: the link that installs the app on a store of another organization."""

from __future__ import annotations

import json
from datetime import timedelta

import click

from aftercare.cli.common import UserError, known_shop, open_app, open_store, reports_user_errors
from aftercare.install import callback_url, install_link
from aftercare.platform import PlatformError


@click.group()
def shopify() -> None:
    """Shopify shops: installing the app on a store its organization does not own."""


@shopify.command("install")
@click.option("--shop", "shop_id", required=True, help="Shop id from the config (install = true).")
@click.option("--valid-for", "minutes", default=60, show_default=True, type=click.IntRange(1, 7 * 24 * 60),
              help="Minutes the link can be used (once).")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print JSON: the link, its callback and minutes.")
@click.pass_context
@reports_user_errors
def shopify_install(ctx: click.Context, shop_id: str, minutes: int, as_json: bool) -> None:
    """Print the link that installs the app on the shop (the authorization code grant).

    The store's owner or a collaborator opens it and approves; Shopify then sends the
    browser to this deployment's callback under public_url, where `aftercare serve`
    must answer. The token is kept in the store, encrypted with secret_key.
    """
    app = open_app(ctx)
    known_shop(app, shop_id)
    platform = app.shop(shop_id).config.platform
    if platform != "shopify":
        raise UserError(f"shop {shop_id!r} is a {platform} shop, not a Shopify one")
    open_store(app)
    try:
        link = install_link(app, shop_id, timedelta(minutes=minutes))
    except PlatformError as exc:
        raise UserError(f"{shop_id}: {exc.message}") from None
    if as_json:
        report = {"link": link, "callback": callback_url(app, shop_id), "valid_minutes": minutes}
        click.echo(json.dumps(report, indent=2))
        return
    click.echo(f"Open this link, logged in to the store, within {minutes} minutes (it works once):\n\n  {link}\n")
    click.echo(f"Shopify sends the browser back to {callback_url(app, shop_id)}: list it under the app's")
    click.echo("allowed redirection URLs in the Dev Dashboard, and have `aftercare serve` answer there.")
