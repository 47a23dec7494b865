"""``aftercare serve``, ``aftercare worker`` and ``aftercare sync``: the processes of a deployment."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime

import click

from aftercare.cli.common import (
    UserError,
    announce_created_schema,
    blocked_plugins,
    known_shop,
    open_app,
    open_store,
    reports_user_errors,
)


@contextlib.contextmanager
def _only_errors_logged(unless: bool) -> Iterator[None]:
    """aftercare's log lines below ERROR (a platform call's retries) kept off stderr for a while."""
    logger = logging.getLogger("aftercare")
    level = logger.level
    if not unless:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


#: serve's and worker's level of logging (the format is the config's log_format).
LOG_LEVEL = click.option(
    "--log-level", type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
    default="info", show_default=True, help="Log this level and above.",
)  # fmt: skip


@click.command()
@click.option("--host", help="Address to listen on (default: [server] host).")
@click.option("--port", type=int, help="Port (default: [server] port; 0 picks a free one).")
@click.option("--workers", type=int, help="Worker threads of the embedded queue consumer.")
@click.option("--sweep-interval", default=5.0, show_default=True, help="Seconds between sweeps of the store.")
@LOG_LEVEL
@click.option("--no-worker", is_flag=True, help="The receiver only, beside `aftercare worker` processes.")
@click.option(
    "--receivers", type=click.IntRange(1, 64), help="Receiver processes on the port (default: [server] receivers)."
)
@click.option("--parent", type=int, hidden=True, help="A receiver child of this serve process: stop when it is gone.")
@click.pass_context
@reports_user_errors
def serve(
    ctx: click.Context,
    host: str | None,
    port: int | None,
    workers: int | None,
    sweep_interval: float,
    log_level: str,
    no_worker: bool,
    receivers: int | None,
    parent: int | None,
) -> None:
    """Receive webhooks, and run a worker beside them (the embedded default: one command)."""
    from aftercare.serve import ListenError
    from aftercare.serve import serve as run_server

    app = open_app(ctx)
    if parent is None:  # a receiver child: its parent made the schema
        announce_created_schema("serve", open_store(app))
    try:
        run_server(app, config_path=ctx.obj["config"], host=host, port=port, workers=workers,
                   sweep_interval=sweep_interval, log_level=log_level, with_worker=not no_worker,
                   blocked_plugins=blocked_plugins(ctx), receivers=receivers, parent=parent)  # fmt: skip
    except ListenError as exc:
        raise UserError(f"serve: {exc}") from None


@click.command()
@click.option("--workers", type=int, help="Worker threads (default: [server] workers).")
@click.option("--sweep-interval", default=5.0, show_default=True, help="Seconds between sweeps of the store.")
@click.option("--parent", type=int, hidden=True, help="Stop when this process (serve) is gone.")
@click.option("--nice", type=click.IntRange(0, 19), default=0, hidden=True, help="Lower this process's priority first.")
@LOG_LEVEL
@click.option("--check", is_flag=True, help="Only check: exit 0 if a worker on this host sent a heartbeat "
              "within [server] heartbeat_limit_seconds, else 1 (a container's health check).")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="With --check: print JSON (ok, and the line).")
@click.pass_context
@reports_user_errors
def worker(
    ctx: click.Context,
    workers: int | None,
    sweep_interval: float,
    parent: int | None,
    nice: int,
    log_level: str,
    check: bool,
    as_json: bool,
) -> None:
    """Consume the queue only (scale-out: run several beside `serve`). SIGTERM finishes work in flight."""
    from aftercare.serve import check_worker_here, run_worker

    app = open_app(ctx)
    if check:
        ok, line = check_worker_here(app)
        click.echo(json.dumps({"ok": ok, "line": line}) if as_json else line)
        ctx.exit(0 if ok else 1)
    announce_created_schema("worker", open_store(app))
    run_worker(app, workers=workers, sweep_interval=sweep_interval, parent=parent, log_level=log_level, nice=nice)


@click.command()
@click.option("--shop", "shop_ids", multiple=True, help="Only this shop (repeatable).")
@click.option("--since", type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S%z"]),
              help="Start here instead of the stored cursor (UTC unless an offset is given).")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print JSON: one object per shop, with its error if it failed.")
@click.option("--verbose", "-v", is_flag=True, help="Also log each retry and resume of a platform call on stderr.")
@click.pass_context
@reports_user_errors
def sync(ctx: click.Context, shop_ids: tuple[str, ...], since: datetime | None, as_json: bool, verbose: bool) -> None:
    """Poll shops for orders changed since their cursor; store and enqueue the events webhooks would give.

    A shop that fails (unreachable, refused keys) is reported and the next one
    synced; the exit status is then 2, and the last line names each failed shop.
    What was read before a failure stays stored: the next sync resumes there.
    """
    from aftercare.queue import Enqueuer
    from aftercare.sync import sync_shops

    app = open_app(ctx)
    for shop_id in shop_ids:
        known_shop(app, shop_id)
    open_store(app)
    queue = Enqueuer.for_app(app)
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    with _only_errors_logged(unless=verbose):  # each shop's failure is one line below
        reports = sync_shops(app, queue, shop_ids or tuple(app.shops), since=since, progress=not as_json)
    if as_json:
        click.echo(json.dumps([dataclasses.asdict(report) for report in reports], indent=2))
    for report in reports:
        counts = f"{report.orders} order(s), {report.events} event(s), {report.new_events} new"
        if report.failed:
            click.echo(f"error: {report.shop_id}: {report.error} (stored before it failed: {counts})", err=True)
        elif not as_json:
            click.echo(f"{report.shop_id}: {counts}")
    failed = [report.shop_id for report in reports if report.failed]
    if failed:
        raise UserError(f"sync failed for {len(failed)} of {len(reports)} shop(s): {', '.join(failed)}")
