"""``aftercare templates list`` and ``aftercare preview``: the mail templates, and a message unsent."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.table import Table

from aftercare.cli.common import UserError, open_app, read_order, reports_user_errors
from aftercare.mail.preview import plugins_with_template, render_preview, send_test
from aftercare.mail.templates import TemplateError, list_templates
from aftercare.platform import PlatformError

F = TypeVar("F", bound=Callable[..., Any])


def _user_errors(func: F) -> F:
    """``reports_user_errors``, plus template problems and a message that cannot be composed or
    sent (no sender, a relay refusing it), as one-line errors (exit 2)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        def run() -> Any:
            try:
                return func(*args, **kwargs)
            except (TemplateError, PlatformError) as exc:
                raise UserError(" ".join(str(exc).split())) from None

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
@click.option(
    "--send-to",
    "send_to",
    metavar="EMAIL",
    help="Also send it, subject marked [test], to this address through the shop's transport.",
)
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
    send_to: str | None,
) -> None:
    """Render TEMPLATE exactly as the mail channel would for ORDER, without sending it.

    With --send-to, also send it as a test to that address (yours, not a customer's)
    through the shop's transport, its subject marked [test].
    """
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
    if send_to is not None and "@" not in send_to.strip("@"):
        raise UserError(f"--send-to: not an email address: {send_to!r}")
    try:
        message = render_preview(app, shop_id, template, locale=locale, order=order, variables=variables,
                                 plugin=plugin, transactional=transactional, to=send_to or "")  # fmt: skip
    except TemplateError as exc:
        owners = [] if plugin else plugins_with_template(app, template)
        if owners and str(exc).startswith(f"no template {template!r}"):
            hint = " or ".join(f"--plugin {name}" for name in owners)
            raise UserError(f"no core template {template!r}: it belongs to a plugin, add {hint}") from None
        raise
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
    if send_to is not None:
        result = send_test(app, shop_id, message, send_to)
        where = f"to {result['path']}" if "path" in result else f"through {app.mail_settings(shop_id).smtp.host}"
        click.echo(f"sent a test to {send_to} {where}", err=True)
