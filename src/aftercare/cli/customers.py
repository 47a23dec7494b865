"""``aftercare customers``: one customer's data, erased or printed whole (docs/privacy.md)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import click

from aftercare.cli.common import UserError, open_app, open_store, open_store_to_read, reports_user_errors


def _on_the_store(ctx: click.Context, work: Callable[..., Any], *args: Any, read_only: bool = False) -> Any:
    """Run ``work(app, *args)`` on the opened store (with ``read_only``, one that must exist
    already); a refusal (no secret_key, not an email, an unknown shop) is the user's one-line error."""
    from aftercare.privacy import PrivacyError

    app = open_app(ctx)
    if read_only:
        open_store_to_read(app)
    else:
        open_store(app)
    try:
        return work(app, *args)
    except PrivacyError as exc:
        raise UserError(str(exc)) from None


@click.group()
def customers() -> None:
    """One customer's data: erase it, or print all of it (docs/privacy.md)."""


@customers.command("forget")
@click.argument("email")
@click.option("--shop", "shop_id", help="Only this shop (default: every shop).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
@reports_user_errors
def customers_forget(ctx: click.Context, email: str, shop_id: str | None, as_json: bool) -> None:
    """Erase a customer: their rows in the store are deleted or stripped, their mail files deleted."""
    from aftercare.privacy import forget

    erasure = _on_the_store(ctx, forget, email, shop_id)
    if as_json:
        click.echo(json.dumps({"found": erasure.found, "erased": erasure.counts()}, indent=2))
        return
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
    from aftercare.privacy import export, render_text

    exported = _on_the_store(ctx, export, email, shop_id, read_only=True)
    if as_json:
        click.echo(json.dumps(exported, indent=2, ensure_ascii=False, default=str))
    else:
        click.echo(render_text(exported), nl=False)
