"""What every command shares: the user's mistakes as one line (exit status 2), opening the app
and its store, reading an order file, and the small formatting helpers of the tables."""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import json
import sys
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from aftercare.app import App
    from aftercare.config import Config
    from aftercare.models import Order

USAGE_ERROR = 2

F = TypeVar("F", bound=Callable[..., Any])


class UserError(Exception):
    """A problem the user can fix; printed as one line, exit status 2."""


def reports_user_errors(func: F) -> F:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from aftercare.config import ConfigError
        from aftercare.platform import PayloadError

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
    from aftercare.app import App
    from aftercare.config import load_config

    path = Path(ctx.obj["config"])
    if not path.exists():
        raise UserError(f"{path}: no such config file (create one with `aftercare init`)")
    try:
        config = load_config(path)
        missing = missing_extra(config)
        if missing:
            raise UserError(missing)
        app = App(config, blocked_plugins=blocked_plugins(ctx))
    except OSError as exc:  # a folder it needs (the SQLite store's) cannot be made
        raise UserError(f"{exc.filename or path}: {exc.strerror or exc}") from None
    ctx.call_on_close(app.close)
    return app


def blocked_plugins(ctx: click.Context) -> tuple[str, ...]:
    """The plugins blocked on the command line (``aftercare -p no:NAME COMMAND``)."""
    return tuple((ctx.find_root().obj or {}).get("blocked_plugins", ()))


def installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def missing_extra(config: Config) -> str | None:
    """One line if the configured database or queue needs a driver that is not installed
    (SQLite-only merchants do not get psycopg and redis): which key, and the pip line."""
    from aftercare.store import database_driver

    driver = database_driver(config.database_url)  # None for a URL it cannot read: the store reports that itself
    if driver and not installed(driver):
        where = f"database: {redact_url(config.database_url)} needs the {driver} module, which is not installed"
        if driver == "psycopg":
            return f"{where}: pip install 'aftercare[postgres]'"
        return f"{where}: write postgresql+psycopg://... to use psycopg (pip install 'aftercare[postgres]')"
    if config.queue_url.startswith(("redis://", "rediss://", "unix://")) and not installed("redis"):
        return (f"queue: {redact_url(config.queue_url)} needs the redis module, which is not installed:"
                " pip install 'aftercare[redis]'")  # fmt: skip
    return None


@contextlib.contextmanager
def reaching_the_store(app: App) -> Iterator[None]:
    """A store that cannot be reached, or whose schema does not fit, is one line naming the ``database`` key."""
    from aftercare.store import DATABASE_ERRORS, SchemaOutOfDate, describe_database_error

    try:
        yield
    except (*DATABASE_ERRORS, OSError) as exc:
        where = redact_url(app.config.database_url)
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


def announce_created_schema(command: str, applied: list[str]) -> None:
    """The one process of several starting on a fresh database that created its schema says so."""
    if applied:
        revision = applied[-1].split()[0]
        click.echo(f"aftercare {command}: created the store's schema (a fresh database) at revision {revision}")


def store_ready(app: App) -> bool:
    return app.store.has_schema()


def read_order(app: App, shop_id: str, path: Path) -> Order:
    """A platform payload (mapped by the shop's adapter) or a core Order's JSON."""
    from aftercare import serialize
    from aftercare.models import Order

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


def short_time(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M")


def redact_url(url: str) -> str:
    """Hide a password in a database or Redis URL."""
    from aftercare.store import redacted_url

    return redacted_url(url)
