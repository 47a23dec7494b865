"""``aftercare templates list`` and ``aftercare preview``.

They use the CLI's own helpers (opening the app, reading an order file,
reporting user errors), imported when a command runs: ``aftercare.cli``
imports this module to add the commands, so importing it back at load time
would be circular.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from aftercare.app import App
    from aftercare.models import Order

F = TypeVar("F", bound=Callable[..., Any])


def _user_errors(func: F) -> F:
    """The CLI's ``reports_user_errors``, plus template problems, as one-line errors (exit 2)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from aftercare.cli import UserError, reports_user_errors
        from aftercare.mail.templates import TemplateError

        def run() -> Any:
            try:
                return func(*args, **kwargs)
            except TemplateError as exc:
                raise UserError(str(exc)) from None

        return reports_user_errors(run)()

    return wrapper  # type: ignore[return-value]


@click.group()
def templates() -> None:
    """Mail templates: which file each shop uses."""


@templates.command("list")
@click.option("--shop", "shop_id", help="Only this shop.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
@_user_errors
def templates_list(ctx: click.Context, shop_id: str | None, as_json: bool) -> None:
    """For each shop, template and locale: the file that wins for subject, text and HTML."""
    from rich.console import Console
    from rich.table import Table

    from aftercare.cli import UserError, open_app
    from aftercare.mail.templates import list_templates

    app = open_app(ctx)
    if shop_id and shop_id not in app.shops:
        raise UserError(f"no shop {shop_id!r} (known: {', '.join(app.shops) or 'none configured'})")
    rows = list_templates(app, shop_id)
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    table = Table(title="templates")
    for column in ("shop", "template", "locale", "part", "source", "file"):
        table.add_column(column, overflow="fold")
    for row in rows:
        locale = row["locale"]
        if row["used_locale"] not in ("", locale):
            locale = f"{locale} → {row['used_locale']}"
        name = f"{row['template']} ({row['plugin']})" if row["plugin"] else row["template"]
        if row["problem"]:
            table.add_row(row["shop"], name, locale, "-", "[red]problem[/red]", row["problem"])
            continue
        for part, winner in row["parts"].items():
            table.add_row(row["shop"], name, locale, part, winner["source"], winner["path"])
    Console().print(table)


@click.command()
@click.argument("template")
@click.option("--shop", "shop_id", required=True, help="Shop id from the config.")
@click.option("--locale", default="", help="The reader's locale (default: the order's, then the shop's).")
@click.option(
    "--order",
    "order_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="An order as the platform sends it, or a core Order as JSON (default: a sample order).",
)
@click.option("--context", "context_json", help="The plugin's variables as JSON (default: samples.json).")
@click.option("--plugin", default="", help="The plugin that sends it (its templates are searched too).")
@click.option("--transactional", is_flag=True, help="Render as transactional mail (no unsubscribe link).")
@click.option("--html", "html_file", type=click.Path(dir_okay=False, path_type=Path), help="Write the HTML here.")
@click.option("--eml", "eml_file", type=click.Path(dir_okay=False, path_type=Path), help="Write the .eml here.")
@click.pass_context
@_user_errors
def preview(
    ctx: click.Context,
    template: str,
    shop_id: str,
    locale: str,
    order_file: Path | None,
    context_json: str | None,
    plugin: str,
    transactional: bool,
    html_file: Path | None,
    eml_file: Path | None,
) -> None:
    """Render TEMPLATE exactly as the mail channel would for ORDER, without sending it."""
    from aftercare.cli import UserError, open_app, read_order

    app = open_app(ctx)
    if shop_id not in app.shops:
        raise UserError(f"no shop {shop_id!r} (known: {', '.join(app.shops) or 'none configured'})")
    order = read_order(app, shop_id, order_file) if order_file else None
    variables = None
    if context_json is not None:
        try:
            variables = json.loads(context_json)
        except json.JSONDecodeError as exc:
            raise UserError(f"--context: not JSON: {exc}") from None
        if not isinstance(variables, dict):
            raise UserError("--context: expected a JSON object")
    message = render_preview(app, shop_id, template, locale=locale, order=order, variables=variables,
                             plugin=plugin, transactional=transactional)  # fmt: skip
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    for header in ("From", "To", "Reply-To", "Subject", "Content-Language", "List-Unsubscribe"):
        if message[header]:
            click.echo(f"{header}: {message[header]}")
    click.echo("")
    click.echo(text.get_content() if text is not None else "")
    if html_file is not None and html is not None:
        html_file.write_text(html.get_content(), encoding="utf-8")
        click.echo(f"wrote {html_file}", err=True)
    if eml_file is not None:
        eml_file.write_bytes(message.as_bytes())
        click.echo(f"wrote {eml_file}", err=True)


def render_preview(
    app: App,
    shop_id: str,
    template: str,
    *,
    locale: str = "",
    order: Order | None = None,
    variables: dict[str, Any] | None = None,
    plugin: str = "",
    transactional: bool = False,
) -> EmailMessage:
    """The message the mail channel would send for ``order`` (a sample one by default), unsent.

    ``aftercare preview`` and the console's preview page both render through
    this, so what the merchant sees is what the channel composes.
    """
    from aftercare.mail.channel import compose
    from aftercare.mail.templates import sample_order, samples, template_roots

    shop = app.shop(shop_id).profile
    order = order or sample_order(shop)
    if variables is None:
        variables = samples(template_roots(app, shop_id, plugin), template)
    return compose(
        app,
        shop_id=shop_id,
        template=template,
        to=order.customer.email or "customer@example.com",
        locale=locale or order.locale or order.customer.locale or shop.locale,
        context=variables,
        transactional=transactional,
        idempotency_key=f"{shop_id}/preview/send_email/order:{order.platform_id}/{template}",
        plugin=plugin,
        order=order,
    )
