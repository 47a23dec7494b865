"""What every command shares: the user's mistakes as one line (exit status 2), opening the app
and its store, reading an order file, and the small formatting helpers of the tables."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from aftercare.app import App
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

    path = Path(ctx.obj["config"])
    if not path.exists():
        raise UserError(f"{path}: no such config file (create one with `aftercare init`)")
    try:
        app = App.from_file(path)
    except OSError as exc:  # a folder it needs (the SQLite store's) cannot be made
        raise UserError(f"{exc.filename or path}: {exc.strerror or exc}") from None
    ctx.call_on_close(app.close)
    return app


def open_store(app: App) -> None:
    """Create or migrate the store; if it cannot be reached, one line naming the ``database`` key."""
    import sqlalchemy as sa

    from aftercare.store import describe_database_error

    try:
        app.store.upgrade()
    except (sa.exc.DBAPIError, OSError) as exc:
        where = redact_url(app.config.database_url)
        raise UserError(f"database: cannot open {where}: {describe_database_error(exc)}") from None


def store_ready(app: App) -> bool:
    import sqlalchemy as sa

    return sa.inspect(app.store.engine).has_table("actions")


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
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url.split("@")[-1]
