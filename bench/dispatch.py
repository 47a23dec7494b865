"""Events per second through the hooks plus action recording, on SQLite.

Ten plugins each request two actions per event; events are dispatched in
batches (one transaction per batch, as the worker does with a queue
message's events). Then a floor: the same action rows written again into a
fresh store of the same schema with sqlite3's executemany alone (no hooks, no
SQLAlchemy, no events), in the same batches: what the SQLite file itself
takes on this machine. Prints both; run on demand:

    .venv/bin/python bench/dispatch.py [--events 5000] [--batch 50]
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from pathlib import Path

from aftercare import hookimpl
from aftercare.app import App
from aftercare.clock import ManualClock
from aftercare.config import Config, ShopConfig
from aftercare.dispatch import Dispatcher
from aftercare.plugin_manager import PluginManager
from aftercare.serve import tune_gc_for_throughput
from aftercare.store import Store
from aftercare.testing import START, make_event, make_order, memory_platform


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
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        plugins = [(f"plugin{i}", TwoActions(f"plugin{i}")) for i in range(10)]
        manager = PluginManager.load(entry_points=False, extra=[("memory", memory_platform), *plugins])
        config = Config(
            database=f"sqlite:///{Path(folder) / 'bench.db'}",
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
        floor = sqlite_floor(Path(folder), args.batch * 20)

    assert recorded == args.events * 20, recorded
    print(f"dispatch: {args.events} events x 10 plugins x 2 actions, batches of {args.batch}, SQLite (WAL, FULL sync)")
    print(f"dispatch: {args.events / elapsed:,.0f} events/s ({recorded / elapsed:,.0f} actions recorded/s)")
    print(f"dispatch: floor, the same rows by sqlite3 executemany alone: {args.events / floor:,.0f} events/s")


def sqlite_floor(folder: Path, rows_per_batch: int) -> float:
    """Seconds to write the bench's action rows again into a fresh store, driver only."""
    with sqlite3.connect(folder / "bench.db") as source:
        columns = [c[1] for c in source.execute("PRAGMA table_info(actions)") if c[1] != "id"]
        rows = source.execute(f"SELECT {', '.join(columns)} FROM actions ORDER BY id").fetchall()
    schema = Store(f"sqlite:///{folder / 'floor.db'}", ManualClock(START))
    schema.upgrade()  # the real schema and indexes
    schema.close()
    db = sqlite3.connect(folder / "floor.db", isolation_level=None)
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
