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
    """The command's errors as one line each on stderr and exit status 2, never a traceback:
    the user's (:class:`UserError`, a config problem, an unreadable payload), and a platform or
    database that cannot be reached or refused (a command that knows the shop or the key
    names it itself, raising :class:`UserError`)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from aftercare.config import ConfigError
        from aftercare.platform import PayloadError, PlatformError

        try:
            return func(*args, **kwargs)
        except ConfigError as exc:
            for line in str(exc).splitlines():
                click.echo(f"error: {line}", err=True)
        except (UserError, PayloadError) as exc:
            click.echo(f"error: {exc}", err=True)
        except PlatformError as exc:
            click.echo(f"error: {exc.message}", err=True)
        except Exception as exc:
            line = _database_problem(exc)
            if line is None:
                raise
            click.echo(f"error: {line}", err=True)
        sys.exit(USAGE_ERROR)

    return wrapper  # type: ignore[return-value]


def _database_problem(exc: Exception) -> str | None:
    """One line for a database error no command caught (None for any other error): what failed,
    without the URL's password or the statement."""
    if "aftercare.store" not in sys.modules:  # nothing has opened a database
        return None
    from aftercare.store import DATABASE_ERRORS, SchemaOutOfDate, describe_database_error

    if isinstance(exc, SchemaOutOfDate):
        return f"database: {exc}"
    if isinstance(exc, DATABASE_ERRORS):
        return f"database: {describe_database_error(exc)}"
    return None


def known_shop(app: App, shop_id: str) -> str:
    """``shop_id`` if the config has it; else the user's error naming the shops it has."""
    if shop_id not in app.shops:
        raise UserError(f"no shop {shop_id!r} (known: {', '.join(app.shops) or 'none configured'})")
    return shop_id


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
        _check_bundled_senders(app, str(path))
    except OSError as exc:  # a folder it needs (the SQLite store's) cannot be made
        raise UserError(f"{exc.filename or path}: {exc.strerror or exc}") from None
    ctx.call_on_close(app.close)
    return app


def _check_bundled_senders(app: App, source: str) -> None:
    """The sender rule of the config models (:func:`aftercare.config.sender_problem`) for the shops
    of a bundle, whose ``[mail]`` the app has merged: serve, worker and check refuse them alike."""
    from aftercare.config import ConfigError, sender_problem

    problems = []
    for index, shop_config in enumerate(app.config.shops):
        if shop_config.bundle:
            shop = app.shop(shop_config.id)
            mail = app.mail_settings(shop.id)
            problem = sender_problem(app.config, index, shop.config, mail.transport, mail.sender)
            if problem:
                problems.append(f"{problem} (or in the bundle's [mail])")
    if problems:
        app.close()
        raise ConfigError(problems, source)


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


def open_store_to_read(app: App) -> None:
    """The store of a command that reads it (the lists, the report, simulate) or changes rows
    that must already be there (retry, cancel): never created nor migrated here, so a list
    in a fresh folder leaves no database behind; one line says to run ``aftercare migrate``."""
    from aftercare.store import SchemaOutOfDate

    path = sqlite_file(app.config.database_url)
    if path is not None and not path.exists():
        raise UserError(f"database: no database at {path} yet: run `aftercare migrate` (or start `aftercare serve`)")
    with reaching_the_store(app):
        try:
            app.store.require_current_schema()
        except SchemaOutOfDate as exc:
            if exc.current is None:
                where = redact_url(app.config.database_url)
                raise UserError(f"database: no aftercare tables in {where} yet: run `aftercare migrate`") from None
            raise


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite database URL (``sqlite:////abs/aftercare.db``); None for an in-memory
    one and any other database."""
    scheme, separator, rest = url.partition(":///")
    if not separator or scheme not in ("sqlite", "sqlite+pysqlite"):
        return None
    name = rest.split("?", 1)[0]
    return None if name in ("", ":memory:") else Path(name)


def announce_created_schema(command: str, applied: list[str]) -> None:
    """The one process of several starting on a fresh database that created its schema says so."""
    if applied:
        revision = applied[-1].split()[0]
        click.echo(f"aftercare {command}: created the store's schema (a fresh database) at revision {revision}")


def store_ready(app: App) -> bool:
    """Whether the store has its tables; a SQLite file that is not there is not created by looking."""
    path = sqlite_file(app.config.database_url)
    return (path is None or path.exists()) and app.store.has_schema()


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


def change_each(
    noun: str,
    ids: tuple[int, ...],
    change: Callable[[int], bool],
    why_not: Callable[[int], str],
    done: str,
    as_json: bool,
    state: str | None = None,
) -> None:
    """``change`` each id (a retry, a cancel); one line ("action 7: due") or JSON row each, then
    exit status 2 naming those it could not change on stderr, so changing nothing never looks
    like success. ``state``: the state a changed row is in, for the JSON rows that show it."""
    rows = []
    for item in ids:
        changed = change(item)
        row: dict[str, Any] = {"id": item, "changed": changed}
        if state is not None:
            row["state"] = state if changed else None
        rows.append({**row, "why_not": "" if changed else why_not(item)})
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    else:
        for row in rows:
            if row["changed"]:
                click.echo(f"{noun} {row['id']}: {done}")
    missed = [row for row in rows if not row["changed"]]
    if missed:
        raise UserError("; ".join(f"{noun} {row['id']}: {row['why_not']}" for row in missed))
