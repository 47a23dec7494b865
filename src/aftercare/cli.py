"""The ``aftercare`` command line.

Verbs for commands, nouns for groups. Every list command takes ``--json``.
User mistakes (a broken config, a missing file, a payload the adapter cannot
read) end with one line per problem on stderr and exit status 2, never a
traceback.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import json
import os
import re
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import click
import sqlalchemy as sa
from rich.console import Console
from rich.table import Table
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from aftercare import __version__, serialize
from aftercare.actions import ActionRecord, ActionState
from aftercare.app import App
from aftercare.config import Config, ConfigError, load_config
from aftercare.dispatch import Dispatcher, execute_due
from aftercare.mail.templates import check_templates
from aftercare.models import Event, EventKind, Order
from aftercare.platform import LiveWarning, MemoryShopState, PayloadError, PlatformError
from aftercare.plugin_manager import PluginManager
from aftercare.vault import new_secret_key

CONFIG_ENV = "AFTERCARE_CONFIG"
DEFAULT_CONFIG = "aftercare.toml"
USAGE_ERROR = 2

F = TypeVar("F", bound=Callable[..., Any])


class UserError(Exception):
    """A problem the user can fix; printed as one line, exit status 2."""


def reports_user_errors(func: F) -> F:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ConfigError as exc:
            for line in str(exc).splitlines():
                click.echo(f"error: {line}", err=True)
        except (UserError, PayloadError) as exc:
            click.echo(f"error: {exc}", err=True)
        sys.exit(USAGE_ERROR)

    return wrapper  # type: ignore[return-value]


def open_app(ctx: click.Context) -> App:
    path = Path(ctx.obj["config"])
    if not path.exists():
        raise UserError(f"{path}: no such config file (create one with `aftercare init`)")
    try:
        config = load_config(path)
        missing = missing_extra(config)
        if missing:
            raise UserError(missing)
        app = App(config)
    except OSError as exc:  # a folder it needs (the SQLite store's) cannot be made
        raise UserError(f"{exc.filename or path}: {exc.strerror or exc}") from None
    ctx.call_on_close(app.close)
    return app


def installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def missing_extra(config: Config) -> str | None:
    """One line if the configured database or queue needs a driver that is not installed
    (SQLite-only merchants do not get psycopg and redis): which key, and the pip line."""
    try:
        database = make_url(config.database_url)
        # psycopg (3) for postgresql+psycopg://, and for postgresql:// since SQLAlchemy 2.1.
        driver = database.get_driver_name() if database.get_backend_name() == "postgresql" else None
    except (ArgumentError, NoSuchModuleError):
        driver = None  # the store reports a URL it cannot read itself
    if driver and not installed(driver):
        where = f"database: {_redact_url(config.database_url)} needs the {driver} module, which is not installed"
        if driver == "psycopg":
            return f"{where}: pip install 'aftercare[postgres]'"
        return f"{where}: write postgresql+psycopg://... to use psycopg (pip install 'aftercare[postgres]')"
    if config.queue_url.startswith(("redis://", "rediss://", "unix://")) and not installed("redis"):
        return (f"queue: {_redact_url(config.queue_url)} needs the redis module, which is not installed:"
                " pip install 'aftercare[redis]'")  # fmt: skip
    return None


@contextlib.contextmanager
def reaching_the_store(app: App) -> Iterator[None]:
    """A store that cannot be reached, or whose schema does not fit, is one line naming the ``database`` key."""
    from aftercare.store import SchemaOutOfDate, describe_database_error

    try:
        yield
    except (sa.exc.DBAPIError, OSError) as exc:
        where = _redact_url(app.config.database_url)
        raise UserError(f"database: cannot open {where}: {describe_database_error(exc)}") from None
    except SchemaOutOfDate as exc:
        raise UserError(f"database: {exc}") from None


def open_store(app: App) -> list[str]:
    """The store at the schema this code expects, for every command but ``migrate``; returns the
    revisions it applied (only to a fresh database).

    A fresh database gets its schema here: nothing runs on it yet, and the
    migration lock lets processes that start together do it once. An older
    schema is left to ``aftercare migrate``, run once before the services
    (deploy/), so that a new version never changes the schema under processes
    of the old one; until then each command refuses in one line naming it.
    """
    from aftercare.store import SchemaOutOfDate

    applied: list[str] = []
    with reaching_the_store(app):
        try:
            app.store.require_current_schema()
        except SchemaOutOfDate as exc:
            if exc.current is not None:
                raise
            app.store.migrate(on_step=applied.append)
    return applied


@click.group()
@click.version_option(__version__, prog_name="aftercare")
@click.option(
    "--config",
    "-c",
    "config_path",
    default=lambda: os.environ.get(CONFIG_ENV, DEFAULT_CONFIG),
    show_default=f"${CONFIG_ENV} or {DEFAULT_CONFIG}",
    help="The TOML config file.",
)
@click.pass_context
def cli(ctx: click.Context, config_path: str) -> None:
    """aftercare: after-sales automation for Shopify and WooCommerce shops."""
    ctx.ensure_object(dict)
    ctx.obj["config"] = config_path


@cli.command()
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@click.pass_context
@reports_user_errors
def init(ctx: click.Context, force: bool) -> None:
    """Write a config file from the example (the embedded default)."""
    path = Path(ctx.obj["config"])
    if path.exists() and not force:
        raise UserError(f"{path} exists; use --force to overwrite it")
    example = resources.files("aftercare").joinpath("config.example.toml").read_text(encoding="utf-8")
    path.write_text(with_fresh_secret_key(example), encoding="utf-8")
    click.echo(f"wrote {path} with a fresh secret_key; next: aftercare --config {path} check")


_SECRET_KEY_PLACEHOLDER = re.compile(r'^# secret_key = "\$\{AFTERCARE_SECRET_KEY\}"$', re.MULTILINE)


def with_fresh_secret_key(example: str) -> str:
    """The example with its top-level ``secret_key`` line (commented out, before any table) set
    to a new random key: each deployment encrypts its stored tokens with its own."""
    match = _SECRET_KEY_PLACEHOLDER.search(example)
    if match is None or "\n[" in example[: match.start()]:
        return example
    return f'{example[: match.start()]}secret_key = "{new_secret_key()}"{example[match.end() :]}'


@cli.command()
@click.option("--shop", "shop_ids", multiple=True, help="Only this shop (repeatable).")
@click.option("--live", is_flag=True, help="Also call each shop's platform and SMTP relay with its credentials.")
@click.pass_context
@reports_user_errors
def check(ctx: click.Context, shop_ids: tuple[str, ...], live: bool) -> None:
    """Validate the config: shops, platform keys, plugin settings. Secrets are never shown.

    With --live, log in to each shop's platform and SMTP relay and print one
    line per problem (bad token, missing API scope, wrong URL, TLS failure).
    """
    app = open_app(ctx)
    for shop_id in shop_ids:
        if shop_id not in app.shops:
            raise UserError(f"no shop {shop_id!r} (known: {', '.join(app.shops) or 'none'})")
    shops = [shop for shop in app.shops.values() if not shop_ids or shop.id in shop_ids]
    console = Console()
    table = Table(title=f"{ctx.obj['config']}: OK")
    for column in ("shop", "platform", "bundle", "production", "locale", "time zone", "plugins enabled"):
        table.add_column(column)
    for shop in shops:
        table.add_row(
            shop.id,
            shop.config.platform,
            shop.config.bundle or "-",
            "yes" if shop.config.production else "no (dry run)",
            shop.config.locale,
            shop.config.timezone,
            ", ".join(shop.enabled_plugins()) or "-",
        )
    console.print(table)
    readable = any(shop.keeps_tokens for shop in shops) and _store_readable(app)
    for shop in shops:
        adapter = app.adapter(shop.id) if readable else app.new_adapter(shop.id, MemoryShopState())
        login = adapter.authentication()
        if login:
            click.echo(f"{shop.id}: logs in with {login}")
    template_problems = check_templates(app)
    if template_problems:
        raise ConfigError(template_problems)
    console.print(f"store: {_redact_url(app.config.database_url)}")
    console.print(f"queue: {_redact_url(app.config.queue_url)}")
    if not app.shops:
        console.print("[yellow]no shops configured[/yellow]")
    if live:
        if any(shop.keeps_tokens for shop in shops):
            open_store(app)  # the granted token is kept there, for every process to share
        found = live_problems(app, [shop.id for shop in shops])
        for line in found:
            click.echo(f"{'warning' if isinstance(line, LiveWarning) else 'error'}: {line}", err=True)
        if any(not isinstance(line, LiveWarning) for line in found):
            sys.exit(USAGE_ERROR)
        click.echo(f"live: {len(shops)} shop(s) reached their platform and mail relay")


def live_problems(app: App, shop_ids: list[str]) -> list[str]:
    """Each shop's platform (``adapter.check_live``) and SMTP relay, one line per problem.

    A relay shared by several shops is tried once and reported for each."""
    from aftercare.mail.settings import for_shop
    from aftercare.mail.transports import SmtpTransport

    problems: list[str] = []
    relays: dict[str, list[str]] = {}
    for shop_id in shop_ids:
        try:
            found = app.adapter(shop_id).check_live()
        except Exception as exc:  # an adapter's bug must not hide the other shops' answers
            found = [f"{type(exc).__name__}: {exc}"]
        problems.extend(type(line)(f"{shop_id}: platform: {line}") for line in found)  # keeps LiveWarning
        settings = for_shop(app, shop_id)
        if settings.transport == "smtp":
            key = settings.smtp.model_dump_json()
            if key not in relays:
                relays[key] = SmtpTransport(settings.smtp).check_live()
            problems.extend(f"{shop_id}: mail: {line}" for line in relays[key])
    return problems


def _store_readable(app: App) -> bool:
    """Whether the store answers and has its tables (an install's token is kept there).
    A store that is down is reported by the commands that need it, not by ``check``."""
    try:
        return _store_ready(app)
    except Exception:
        return False


@cli.group()
def shopify() -> None:
    """Shopify shops: installing the app on a store its organization does not own."""


@shopify.command("install")
@click.option("--shop", "shop_id", required=True, help="Shop id from the config (install = true).")
@click.option("--valid-for", "minutes", default=60, show_default=True, type=click.IntRange(1, 7 * 24 * 60),
              help="Minutes the link can be used (once).")  # fmt: skip
@click.pass_context
@reports_user_errors
def shopify_install(ctx: click.Context, shop_id: str, minutes: int) -> None:
    """Print the link that installs the app on the shop (the authorization code grant).

    The store's owner or a collaborator opens it and approves; Shopify then sends the
    browser to this deployment's callback under public_url, where `aftercare serve`
    must answer. The token is kept in the store, encrypted with secret_key.
    """
    from aftercare.install import callback_url, install_link

    app = open_app(ctx)
    if shop_id not in app.shops:
        raise UserError(f"no shop {shop_id!r} (known: {', '.join(app.shops) or 'none'})")
    platform = app.shop(shop_id).config.platform
    if platform != "shopify":
        raise UserError(f"shop {shop_id!r} is a {platform} shop, not a Shopify one")
    open_store(app)
    try:
        link = install_link(app, shop_id, timedelta(minutes=minutes))
    except PlatformError as exc:
        raise UserError(f"{shop_id}: {exc.message}") from None
    click.echo(f"Open this link, logged in to the store, within {minutes} minutes (it works once):\n\n  {link}\n")
    click.echo(f"Shopify sends the browser back to {callback_url(app, shop_id)}: list it under the app's")
    click.echo("allowed redirection URLs in the Dev Dashboard, and have `aftercare serve` answer there.")


@cli.group()
def plugins() -> None:
    """Installed plugins."""


@plugins.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
@reports_user_errors
def plugins_list(ctx: click.Context, as_json: bool) -> None:
    """Name, source, version, hooks, and the shops each is enabled for."""
    config_path = Path(ctx.obj["config"])
    app = open_app(ctx) if config_path.exists() else None
    manager = app.plugins if app else PluginManager.load()
    rows = []
    for info in manager.plugins():
        shops = [s.id for s in app.shops.values() if info.name in s.enabled_plugins()] if app else []
        rows.append(
            {
                "name": info.name,
                "source": info.source,
                "version": info.version,
                "hooks": list(info.hooks),
                "enabled_for": shops if info.handles_events else [],
            }
        )
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table(title="plugins")
    for column in ("name", "source", "version", "hooks", "enabled for"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row["name"], row["source"], row["version"], ", ".join(row["hooks"]), ", ".join(row["enabled_for"]) or "-"
        )
    Console().print(table)


@cli.command()
@click.option("--shop", "shop_id", required=True, help="Shop id from the config.")
@click.option(
    "--event",
    "kind",
    required=True,
    type=click.Choice([k.value for k in EventKind]),
    help="Which post-sale moment to replay.",
)
@click.option(
    "--order",
    "order_file",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="An order as the platform sends it (webhook/REST JSON), or a core Order as JSON.",
)
@click.option("--dry-run", is_flag=True, help="Run the hooks and show the actions; store and execute nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
@reports_user_errors
def replay(ctx: click.Context, shop_id: str, kind: str, order_file: Path, dry_run: bool, as_json: bool) -> None:
    """Run the hooks for ORDER as if EVENT just happened, and show the actions per plugin."""
    app = open_app(ctx)
    try:
        app.shop(shop_id)
    except KeyError as exc:
        raise UserError(str(exc.args[0])) from None
    order = read_order(app, shop_id, order_file)
    event = replay_event(app, EventKind(kind), order)
    dispatcher = Dispatcher(app)
    if dry_run:
        results = dispatcher.run_hooks(event)
        requests, runs = results.sink.requests, results.runs
        existing = (
            {a.idempotency_key: a for a in app.store.actions_by_keys(r.idempotency_key for r in requests)}
            if _store_ready(app)
            else {}
        )
        rows = [
            {
                "plugin": r.plugin,
                "action": r.kind.value,
                "key": r.idempotency_key,
                "due_at": r.due_at.isoformat(),
                "outcome": f"already {existing[r.idempotency_key].state.value}"
                if r.idempotency_key in existing
                else "would be recorded (dry run)",
                "payload": r.payload,
            }
            for r in requests
        ]
    else:
        open_store(app)
        outcome = dispatcher.dispatch(event)
        runs = outcome.results.runs
        execute_due(app)
        records = {a.idempotency_key: a for a in app.store.actions_by_keys(r.idempotency_key for r in outcome.requests)}
        rows = [
            {
                "plugin": r.plugin,
                "action": r.kind.value,
                "key": r.idempotency_key,
                "due_at": r.due_at.isoformat(),
                "outcome": _outcome(records[r.idempotency_key], r.idempotency_key in outcome.new_actions),
                "payload": records[r.idempotency_key].payload,
            }
            for r in outcome.requests
        ]
    failures = [{"plugin": run.plugin, "hook": run.hook, "error": run.error} for run in runs if run.outcome == "failed"]
    if as_json:
        click.echo(json.dumps({"event": serialize.to_data(event), "actions": rows, "failed_hooks": failures}, indent=2))
        return
    console = Console()
    console.print(
        f"{event.kind.hook} for order {order.number or order.platform_id} of shop {shop_id}"
        f" ({len(runs)} plugin(s) ran{', dry run' if dry_run else ''})"
    )
    table = Table()
    for column in ("plugin", "action", "due", "outcome", "details"):
        table.add_column(column, overflow="fold")
    for row in rows:
        due = datetime.fromisoformat(row["due_at"])
        table.add_row(row["plugin"], row["action"], _due(due, app.now()), row["outcome"], _summary(row["payload"]))
    console.print(table)
    for failure in failures:
        console.print(f"[red]{failure['plugin']} failed in {failure['hook']}: {failure['error']}[/red]")


@cli.group()
def actions() -> None:
    """The action outbox."""


@actions.command("list")
@click.option("--shop", "shop_id", help="Only this shop.")
@click.option("--plugin", help="Only this plugin.")
@click.option("--state", type=click.Choice([s.value for s in ActionState]), help="Only this state.")
@click.option("--order", "order_id", help="Only this order (platform id).")
@click.option("--limit", default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
@reports_user_errors
def actions_list(ctx, shop_id, plugin, state, order_id, limit, as_json) -> None:  # noqa: ANN001
    """Recorded actions, newest first, with their state and reason."""
    app = open_app(ctx)
    open_store(app)
    records = app.store.list_actions(
        shop_id=shop_id, plugin=plugin, state=ActionState(state) if state else None, order_id=order_id, limit=limit
    )
    if as_json:
        click.echo(json.dumps([serialize.to_data(r) for r in records], indent=2))
        return
    table = Table(title="actions")
    for column in ("id", "shop", "order", "plugin", "action", "due", "state", "reason"):
        table.add_column(column, overflow="fold")
    for r in records:
        table.add_row(str(r.id), r.shop_id, r.order_id, r.plugin, r.kind.value, _short_time(r.due_at),
                      r.state.value, r.reason)  # fmt: skip
    Console().print(table)


@actions.command("retry")
@click.argument("action_ids", nargs=-1, type=int, required=True)
@click.pass_context
@reports_user_errors
def actions_retry(ctx: click.Context, action_ids: tuple[int, ...]) -> None:
    """Make failed or dropped actions due again, now."""
    app = open_app(ctx)
    open_store(app)
    for action_id in action_ids:
        ok = app.store.retry_action(action_id)
        click.echo(f"action {action_id}: {'due again' if ok else 'not retried (done, or no such action)'}")


@actions.command("cancel")
@click.argument("action_ids", nargs=-1, type=int, required=True)
@click.option("--reason", default="", help="Why; kept on the action with your user name.")
@click.pass_context
@reports_user_errors
def actions_cancel(ctx: click.Context, action_ids: tuple[int, ...], reason: str) -> None:
    """Drop due or failed actions by hand."""
    app = open_app(ctx)
    open_store(app)
    who = os.environ.get("USER", "someone")
    for action_id in action_ids:
        ok = app.store.cancel_action(action_id, f"cancelled by {who}" + (f": {reason}" if reason else ""))
        click.echo(f"action {action_id}: {'cancelled' if ok else 'not cancelled (done, running, or no such action)'}")


@cli.group()
def events() -> None:
    """The event inbox."""


@events.command("list")
@click.option("--shop", "shop_id", help="Only this shop.")
@click.option("--order", "order_id", help="Only this order (platform id).")
@click.option("--limit", default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
@reports_user_errors
def events_list(ctx, shop_id, order_id, limit, as_json) -> None:  # noqa: ANN001
    """Received events, newest first, with the plugins that ran on each."""
    app = open_app(ctx)
    open_store(app)
    stored = app.store.list_events(shop_id=shop_id, order_id=order_id, limit=limit)
    rows = [
        {
            "id": s.id,
            "shop": s.event.shop_id,
            "order": s.event.order.platform_id,
            "kind": s.event.kind.value,
            "topic": s.event.topic,
            "source": s.event.source,
            "occurred_at": s.event.occurred_at.isoformat(),
            "received_at": s.received_at.isoformat(),
            "state": s.state,
            "attempts": s.attempts,
            "reason": s.reason,  # why its last dispatch failed (it backs off, then fails)
            "retry_at": s.retry_at.isoformat() if s.retry_at else None,
            "dedupe_key": s.event.dedupe_key,
            "hooks": [serialize.to_data(run) for run in app.store.hook_runs_for(s.id)],
        }
        for s in stored
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table(title="events")
    for column in ("id", "shop", "order", "kind", "source", "received", "state", "plugins", "reason"):
        table.add_column(column, overflow="fold")
    for row in rows:
        plugins = ", ".join(f"{h['plugin']}:{h['outcome']}" for h in row["hooks"]) or "-"
        table.add_row(str(row["id"]), row["shop"], row["order"], row["kind"], row["source"],
                      row["received_at"][:16], row["state"], plugins, row["reason"])  # fmt: skip
    Console().print(table)


@events.command("retry")
@click.argument("event_ids", nargs=-1, type=int, required=True)
@click.pass_context
@reports_user_errors
def events_retry(ctx: click.Context, event_ids: tuple[int, ...]) -> None:
    """Make failed events pending again, now (the worker dispatches them)."""
    app = open_app(ctx)
    open_store(app)
    for event_id in event_ids:
        ok = app.store.retry_event(event_id)
        click.echo(f"event {event_id}: {'pending again' if ok else 'not retried (not failed, or no such event)'}")


@cli.command()
@click.pass_context
@reports_user_errors
def migrate(ctx: click.Context) -> None:
    """Bring the store's schema to this version's revision; print it. Run it once, before the services.

    Safe to run from several places at once (they queue on a lock; one migrates),
    and when the schema is already current (exit status 0, nothing changes).
    """
    app = open_app(ctx)
    applied: list[str] = []

    def report(step: str) -> None:
        applied.append(step)
        click.echo(f"applied {step}")

    with reaching_the_store(app):
        revision = app.store.migrate(on_step=report)
    click.echo(f"schema at revision {revision}" + ("" if applied else " (already current)"))


def announce_created_schema(command: str, applied: list[str]) -> None:
    """The one process of several starting on a fresh database that created its schema says so."""
    if applied:
        revision = applied[-1].split()[0]
        click.echo(f"aftercare {command}: created the store's schema (a fresh database) at revision {revision}")


#: serve's and worker's level of logging (the format is the config's log_format).
LOG_LEVEL = click.option(
    "--log-level", type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
    default="info", show_default=True, help="Log this level and above.",
)  # fmt: skip


@cli.command()
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
               log_level=log_level, with_worker=not no_worker)  # fmt: skip


@cli.command()
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


@cli.command()
@click.option("--shop", "shop_ids", multiple=True, help="Only this shop (repeatable).")
@click.option("--since", type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S%z"]),
              help="Start here instead of the stored cursor (UTC unless an offset is given).")  # fmt: skip
@click.pass_context
@reports_user_errors
def sync(ctx: click.Context, shop_ids: tuple[str, ...], since: datetime | None) -> None:
    """Poll shops for orders changed since their cursor; store and enqueue the events webhooks would give."""
    from aftercare.sync import sync_shop
    from aftercare.worker import Worker

    app = open_app(ctx)
    open_store(app)
    for shop_id in shop_ids:
        if shop_id not in app.shops:
            raise UserError(f"no shop {shop_id!r} (known: {', '.join(app.shops) or 'none'})")
    worker = Worker(app)
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    for shop_id in shop_ids or tuple(app.shops):
        try:
            report = sync_shop(app, worker.queue, shop_id, since=since, progress=True)
        except PlatformError as exc:  # what was read before stays stored; the next sync resumes there
            raise UserError(f"{shop_id}: {exc.message}") from None
        click.echo(f"{shop_id}: {report.orders} order(s), {report.events} event(s), {report.new_events} new")


# -- helpers ------------------------------------------------------------------


def read_order(app: App, shop_id: str, path: Path) -> Order:
    """A platform payload (mapped by the shop's adapter) or a core Order's JSON."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a JSON object, got {type(data).__name__}")
    if {"platform", "shop_id", "platform_id", "customer", "total"} <= data.keys():
        try:
            order = serialize.from_data(Order, data)
        except (ValueError, TypeError) as exc:
            raise UserError(f"{path}: not a valid Order: {exc}") from None
        if order.shop_id != shop_id:
            order = serialize.from_data(Order, {**data, "shop_id": shop_id})
        return order
    payload = data.get("order", data) if isinstance(data.get("order"), dict) else data
    return app.adapter(shop_id).parse_order(payload)


def replay_event(app: App, kind: EventKind, order: Order) -> Event:
    """An Event for ``order`` as if ``kind`` happened now, about its first parcel/refund/return."""
    shipment = order.shipments[0] if order.shipments and kind in (EventKind.SHIPPED, EventKind.DELIVERED) else None
    if kind in (EventKind.SHIPPED, EventKind.DELIVERED) and shipment is None:
        raise UserError(f"order {order.platform_id} has no shipment to replay {kind.value} for")
    refund = order.refunds[0] if order.refunds and kind is EventKind.REFUNDED else None
    return_request = order.returns[0] if order.returns and kind is EventKind.RETURN_REQUESTED else None
    subject = shipment or refund or return_request
    return Event(
        kind=kind,
        shop_id=order.shop_id,
        order=order,
        occurred_at=app.now(),
        dedupe_key=f"replay:{kind.value}:{order.platform_id}:{subject.platform_id if subject else ''}",
        shipment=shipment,
        refund=refund,
        return_request=return_request,
        source="replay",
    )


def _store_ready(app: App) -> bool:
    return sa.inspect(app.store.engine).has_table("actions")


def _outcome(record: ActionRecord, new: bool) -> str:
    state = record.state.value + (f": {record.reason}" if record.reason else "")
    return state if new else f"already recorded ({state})"


def _summary(payload: dict[str, Any]) -> str:
    parts = [f"{k}={v}" for k, v in payload.items() if k not in ("context", "customer") and v not in (None, "")]
    return ", ".join(parts)


def _due(due: datetime, now: datetime) -> str:
    """'now' or how far ahead, e.g. 'in 7d 0h'."""
    minutes = round((due - now).total_seconds() / 60)
    if minutes < 1:
        return "now"
    return f"in {minutes // 1440}d {minutes % 1440 // 60}h"


def _short_time(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M")


def _redact_url(url: str) -> str:
    """Hide a password in a database or Redis URL."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url.split("@")[-1]


def _add_commands_of_other_parts() -> None:
    from aftercare.bundles import bundle
    from aftercare.console.commands import console, simulate
    from aftercare.demo import demo
    from aftercare.mail.commands import preview, templates
    from aftercare.report import report
    from aftercare.sandbox.commands import sandbox
    from aftercare.webhooks import webhooks

    for command in (preview, templates, sandbox, report, demo, bundle, webhooks, console, simulate):
        cli.add_command(command)


_add_commands_of_other_parts()


def main() -> None:
    """Entry point: the core commands plus those plugins add through ``register_commands``."""
    try:
        manager = PluginManager.load()
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(USAGE_ERROR)
    manager.pm.hook.register_commands(cli=cli)
    cli(prog_name="aftercare")
