"""``aftercare migrate``: the store's schema brought to this version's revision, once, before the services."""

from __future__ import annotations

import json

import click

from aftercare.cli.common import open_app, reaching_the_store, reports_user_errors


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON: the revision, and the revisions applied.")
@click.pass_context
@reports_user_errors
def migrate(ctx: click.Context, as_json: bool) -> None:
    """Bring the store's schema to this version's revision; print it. Run it once, before the services.

    Safe to run from several places at once (they queue on a lock; one migrates),
    and when the schema is already current (exit status 0, nothing changes).
    """
    app = open_app(ctx)
    applied: list[str] = []

    def report(step: str) -> None:
        applied.append(step)
        if not as_json:
            click.echo(f"applied {step}")

    with reaching_the_store(app):
        revision = app.store.migrate(on_step=report)
    if as_json:
        click.echo(json.dumps({"revision": revision, "applied": applied}, indent=2))
        return
    click.echo(f"schema at revision {revision}" + ("" if applied else " (already current)"))
