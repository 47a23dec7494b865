"""Events per second through the hooks plus action recording, on SQLite.

Ten plugins each request two actions per event; events are dispatched in
batches (one transaction per batch, as the worker does with a queue
message's events). Prints the figure; run on demand:

    .venv/bin/python bench/dispatch.py [--events 5000] [--batch 50]
"""

from __future__ import annotations

import argparse
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

    assert recorded == args.events * 20, recorded
    print(f"dispatch: {args.events} events x 10 plugins x 2 actions, batches of {args.batch}, SQLite (WAL, FULL sync)")
    print(f"dispatch: {args.events / elapsed:,.0f} events/s ({recorded / elapsed:,.0f} actions recorded/s)")


if __name__ == "__main__":
    main()
