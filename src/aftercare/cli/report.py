"""``aftercare report``: the figures of each shop for a period, as a table, JSON or CSV."""

from __future__ import annotations

import json
from datetime import datetime

import click
from rich.console import Console
from rich.table import Table

from aftercare.cli.common import UserError, known_shop, open_app, open_store_to_read, reports_user_errors
from aftercare.report import FIRST_DAY, LAST_DAY, ShopReport, rows, shop_reports
from aftercare.report import as_csv as csv_rows


@click.command()
@click.option("--shop", "shop_id", help="Only this shop (default: every shop).")
@click.option("--since", type=click.DateTime(["%Y-%m-%d"]), help="First day, in the shop's time zone.")
@click.option("--until", type=click.DateTime(["%Y-%m-%d"]), help="Last day, included (default: up to now).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV: shop, since, until, figure, value.")
@click.pass_context
@reports_user_errors
def report(
    ctx: click.Context,
    shop_id: str | None,
    since: datetime | None,
    until: datetime | None,
    as_json: bool,
    as_csv: bool,
) -> None:
    """Emails, coupons, repeat purchases, CSAT, NPS, CES and TGW per shop for a period (default: 30 days)."""
    if as_json and as_csv:
        raise UserError("choose one of --json and --csv")
    app = open_app(ctx)
    if shop_id:
        known_shop(app, shop_id)
    if since and until and since > until:
        raise UserError("--since is after --until")
    for option, day in (("--since", since), ("--until", until)):
        if day and not FIRST_DAY <= day.date() <= LAST_DAY:
            raise UserError(f"{option}: {day.date()} is out of range; use a date from {FIRST_DAY} to {LAST_DAY}")
    open_store_to_read(app)
    reports = shop_reports(app, shop_id, since.date() if since else None, until.date() if until else None)
    if as_json:
        click.echo(json.dumps([r.as_dict() for r in reports], indent=2))
    elif as_csv:
        click.echo(csv_rows(reports), nl=False)
    else:
        _print_table(reports)


def _print_table(reports: list[ShopReport]) -> None:
    console = Console()
    for r in reports:
        table = Table(title=f"{r.shop_id}: {r.since:%Y-%m-%d %H:%M} to {r.until:%Y-%m-%d %H:%M} UTC")
        table.add_column("figure")
        table.add_column("value", overflow="fold")
        for figure, value in rows(r):
            table.add_row(figure, value)
        console.print(table)
