"""``aftercare serve``, ``aftercare worker`` and ``aftercare sync``: the processes of a deployment."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from aftercare.cli.common import (
    UserError,
    announce_created_schema,
    blocked_plugins,
    open_app,
    open_store,
    reports_user_errors,
)
from aftercare.platform import PlatformError

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
@click.pass_context
@reports_user_errors
def serve(
    ctx: click.Context, host: str | None, port: int | None, workers: int | None, sweep_interval: float, log_level: str,
    no_worker: bool,
) -> None:
    """Receive webhooks, and run a worker beside them (the embedded default: one command)."""
    from aftercare.serve import serve as run_server

    app = open_app(ctx)
    announce_created_schema("serve", open_store(app))
    run_server(app, config_path=ctx.obj["config"], host=host, port=port, workers=workers, sweep_interval=sweep_interval,
               log_level=log_level, with_worker=not no_worker, blocked_plugins=blocked_plugins(ctx))  # fmt: skip


@click.command()
@click.option("--workers", type=int, help="Worker threads (default: [server] workers).")
@click.option("--sweep-interval", default=5.0, show_default=True, help="Seconds between sweeps of the store.")
@click.option("--parent", type=int, hidden=True, help="Stop when this process (serve) is gone.")
@LOG_LEVEL
@click.option("--check", is_flag=True, help="Only check: exit 0 if a worker on this host sent a heartbeat "
              "within [server] heartbeat_limit_seconds, else 1 (a container's health check).")  # fmt: skip
@click.pass_context
@reports_user_errors
def worker(
    ctx: click.Context, workers: int | None, sweep_interval: float, parent: int | None, log_level: str, check: bool
) -> None:
    """Consume the queue only (scale-out: run several beside `serve`). SIGTERM finishes work in flight."""
    from aftercare.serve import check_worker_here, run_worker

    app = open_app(ctx)
    if check:
        ok, line = check_worker_here(app)
        click.echo(line)
        ctx.exit(0 if ok else 1)
    announce_created_schema("worker", open_store(app))
    run_worker(app, workers=workers, sweep_interval=sweep_interval, parent=parent, log_level=log_level)


@click.command()
@click.option("--shop", "shop_ids", multiple=True, help="Only this shop (repeatable).")
@click.option("--since", type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S%z"]),
              help="Start here instead of the stored cursor (UTC unless an offset is given).")  # fmt: skip
@click.pass_context
@reports_user_errors
def sync(ctx: click.Context, shop_ids: tuple[str, ...], since: datetime | None) -> None:
    """Poll shops for orders changed since their cursor; store and enqueue the events webhooks would give."""
    from aftercare.queue import Enqueuer
    from aftercare.sync import sync_shop

    app = open_app(ctx)
    open_store(app)
    for shop_id in shop_ids:
        if shop_id not in app.shops:
            raise UserError(f"no shop {shop_id!r} (known: {', '.join(app.shops) or 'none'})")
    queue = Enqueuer.for_app(app)
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    for shop_id in shop_ids or tuple(app.shops):
        try:
            report = sync_shop(app, queue, shop_id, since=since, progress=True)
        except PlatformError as exc:  # what was read before stays stored; the next sync resumes there
            raise UserError(f"{shop_id}: {exc.message}") from None
        click.echo(f"{shop_id}: {report.orders} order(s), {report.events} event(s), {report.new_events} new")
