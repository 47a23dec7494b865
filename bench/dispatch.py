"""Events per second through the hooks plus action recording, on SQLite or PostgreSQL.

Ten plugins each request two actions per event; events are dispatched in
batches (one transaction per batch, as the worker does with a queue
message's events). Then a floor: the same action rows written again into a
fresh store of the same schema with the driver's executemany alone (sqlite3,
or psycopg; no hooks, no SQLAlchemy, no events), in the same batches: what the
database itself takes on this machine. Prints both; run on demand:

    .venv/bin/python bench/dispatch.py [--events 5000] [--batch 50] [--database sqlite|postgresql]

``--database postgresql``: 127.0.0.1:5432, database ``test``, throwaway schemas.
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

from aftercare import hookimpl
from aftercare.app import App
from aftercare.clock import ManualClock
from aftercare.config import Config, ShopConfig
from aftercare.dispatch import Dispatcher
from aftercare.plugin_manager import PluginManager
from aftercare.serve import tune_gc_for_throughput
from aftercare.store import Store
from aftercare.testing import START, make_event, make_order, memory_platform

POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


class TwoActions:
    def __init__(self, name: str) -> None:
        self.name = name

    @hookimpl
    def on_order_paid(self, event, ctx):
        ctx.tag_order(self.name)
        ctx.later(days=7).add_order_note(f"{self.name} checks in", key="check-in")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder, databases(args.database, Path(folder)) as (database, floor_database):
        plugins = [(f"plugin{i}", TwoActions(f"plugin{i}")) for i in range(10)]
        manager = PluginManager.load(entry_points=False, extra=[("memory", memory_platform), *plugins])
        config = Config(
            database=database,
            shops=[ShopConfig(id="bench", platform="memory", webhook_secret="x", production=True)],
            base_dir=Path(folder),
        )
        app = App(config, clock=ManualClock(START), plugins=manager)
        app.store.upgrade()
        dispatcher = Dispatcher(app)
        events = [
            make_event("order_paid", make_order(str(n), shop_id="bench"), key=f"paid-{n}") for n in range(args.events)
        ]
        tune_gc_for_throughput()  # as `aftercare worker` runs
        started = time.perf_counter()
        for first in range(0, len(events), args.batch):
            dispatcher.dispatch_many(events[first : first + args.batch])
        elapsed = time.perf_counter() - started
        recorded = sum(app.store.count_actions_by_state().values())
        app.close()
        floor = driver_floor(database, floor_database, args.batch * 20)

    assert recorded == args.events * 20, recorded
    where = "SQLite (WAL, FULL sync)" if args.database == "sqlite" else "PostgreSQL (127.0.0.1)"
    driver = "sqlite3" if args.database == "sqlite" else "psycopg"
    print(f"dispatch: {args.events} events x 10 plugins x 2 actions, batches of {args.batch}, {where}")
    print(f"dispatch: {args.events / elapsed:,.0f} events/s ({recorded / elapsed:,.0f} actions recorded/s)")
    print(f"dispatch: floor, the same rows by {driver} executemany alone: {args.events / floor:,.0f} events/s")
    print(f"dispatch: dispatch/floor = {floor / elapsed:.2f}")


@contextmanager
def databases(kind: str, folder: Path) -> Iterator[tuple[str, str]]:
    """The bench's database URL and the floor's: two SQLite files, or two fresh PostgreSQL schemas."""
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'bench.db'}", f"sqlite:///{folder / 'floor.db'}"
        return
    schemas = [f"bench_{uuid.uuid4().hex[:12]}" for _ in range(2)]
    admin = sa.create_engine(POSTGRES)
    with admin.begin() as conn:
        for schema in schemas:
            conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    try:
        yield tuple(f"{POSTGRES}?options=-csearch_path%3D{schema}" for schema in schemas)
    finally:
        with admin.begin() as conn:
            for schema in schemas:
                conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def driver_floor(database: str, floor_database: str, rows_per_batch: int) -> float:
    """Seconds to write the bench's action rows again into a fresh store, driver only."""
    engine = sa.create_engine(database)
    with engine.connect() as conn:
        names = list(conn.execute(sa.text("SELECT * FROM actions LIMIT 0")).keys())
        columns = [c for c in names if c != "id"]
        rows = [tuple(row) for row in conn.exec_driver_sql(f"SELECT {', '.join(columns)} FROM actions ORDER BY id")]
    engine.dispose()
    schema = Store(floor_database, ManualClock(START))
    schema.upgrade()  # the real schema and indexes
    schema.close()
    if floor_database.startswith("sqlite"):
        return _sqlite_floor(Path(floor_database.removeprefix("sqlite:///")), columns, rows, rows_per_batch)
    return _postgresql_floor(floor_database, columns, rows, rows_per_batch)


def _postgresql_floor(url: str, columns: list[str], rows: list[tuple], rows_per_batch: int) -> float:
    import psycopg
    from psycopg.types.json import Json

    schema = url.rsplit("%3D", 1)[1]
    payload = columns.index("payload")
    rows = [(*row[:payload], Json(row[payload]), *row[payload + 1 :]) for row in rows]
    insert = f"INSERT INTO actions ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))})"
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/test", options=f"-csearch_path={schema}") as db:
        started = time.perf_counter()
        for first in range(0, len(rows), rows_per_batch):
            with db.transaction(), db.cursor() as cursor:
                cursor.executemany(insert, rows[first : first + rows_per_batch])
        return time.perf_counter() - started


def _sqlite_floor(path: Path, columns: list[str], rows: list[tuple], rows_per_batch: int) -> float:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA synchronous=FULL")
    insert = f"INSERT INTO actions ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    started = time.perf_counter()
    for first in range(0, len(rows), rows_per_batch):
        db.execute("BEGIN IMMEDIATE")
        db.executemany(insert, rows[first : first + rows_per_batch])
        db.execute("COMMIT")
    elapsed = time.perf_counter() - started
    db.close()
    return elapsed


if __name__ == "__main__":
    main()
