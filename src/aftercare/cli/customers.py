"""``aftercare customers``: one customer's data, erased or printed whole (docs/privacy.md)."""

from __future__ import annotations

import json

import click

from aftercare.cli.common import UserError, open_app, open_store, reports_user_errors


@click.group()
def customers() -> None:
    """One customer's data: erase it, or print all of it (docs/privacy.md)."""


@customers.command("forget")
@click.argument("email")
@click.option("--shop", "shop_id", help="Only this shop (default: every shop).")
@click.pass_context
@reports_user_errors
def customers_forget(ctx: click.Context, email: str, shop_id: str | None) -> None:
    """Erase a customer: their rows in the store are deleted or stripped, their mail files deleted."""
    from aftercare.privacy import PrivacyError, forget

    app = open_app(ctx)
    open_store(app)
    try:
        erasure = forget(app, email, shop_id)
    except PrivacyError as exc:
        raise UserError(str(exc)) from None
    if not erasure.found:
        click.echo("nothing kept about this customer; recorded as erased, so later events about them are dropped")
        return
    for name, count in erasure.counts().items():
        if count:
            click.echo(f"{name.replace('_', ' ')}: {count}")
    click.echo("erased; later events about this customer are dropped")


@customers.command("export")
@click.argument("email")
@click.option("--shop", "shop_id", help="Only this shop (default: every shop).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
@reports_user_errors
def customers_export(ctx: click.Context, email: str, shop_id: str | None, as_json: bool) -> None:
    """Print every record aftercare keeps about a customer."""
    from aftercare.privacy import PrivacyError, export, render_text

    app = open_app(ctx)
    open_store(app)
    try:
        exported = export(app, email, shop_id)
    except PrivacyError as exc:
        raise UserError(str(exc)) from None
    if as_json:
        click.echo(json.dumps(exported, indent=2, ensure_ascii=False, default=str))
    else:
        click.echo(render_text(exported), nl=False)
