"""How long the console's busiest pages take to render over a big store.

Fills a store with 1,000,000 actions over 20 shops (five per order, 200,000
orders; 70% done, 15% dropped, 10% due, 5% failed), 200,000 events with
their hook runs, then times through the real Starlette app, logged in as
agency staff: a shop's overview, the actions page filtered to failed, and
an order's timeline. Median of 5 runs after a warm-up, on SQLite (a file)
and on PostgreSQL (127.0.0.1:5432, database ``test``, a throwaway schema).

    .venv/bin/python bench/console.py [--actions 1000000] [--only sqlite|postgresql]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from starlette.testclient import TestClient

from aftercare.app import App
from aftercare.asgi import create_asgi_app
from aftercare.clock import ManualClock
from aftercare.config import Config, ShopConfig
from aftercare.config.console import ConsoleSettings
from aftercare.console import accounts
from aftercare.plugin_manager import PluginManager
from aftercare.queue import Enqueuer
from aftercare.store import actions, events, hook_runs
from aftercare.testing import make_event, make_order, memory_platform

POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
SHOPS = [f"shop{n:02d}" for n in range(20)]
PLUGINS = ["coupon", "review_request", "tracking_notice", "satisfaction_survey", "newsletter_optin"]
STATES = ["done"] * 14 + ["dropped"] * 3 + ["due"] * 2 + ["failed"]
NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
TIMELINE = ("shop07", "order-42")
PASSWORD = "benchmark passphrase"


def fill(app: App, total: int) -> None:
    store, rng = app.store, random.Random(7)
    per_order = 5
    started = time.perf_counter()
    body = make_event("order_paid", make_order("42", shop_id=TIMELINE[0])).to_json()
    action_rows, event_rows = [], []
    for n in range(total // per_order):
        shop, order = SHOPS[n % len(SHOPS)], f"order-{n // len(SHOPS)}"
        created = NOW - timedelta(minutes=rng.randrange(90 * 24 * 60))
        event_rows.append({
            "id": n + 1, "shop_id": shop, "dedupe_key": f"paid-{order}", "kind": "order_paid", "order_id": order,
            "topic": rng.choice(["orders/paid", "orders/fulfilled", "fulfillments/update"]), "source": "webhook",
            "occurred_at": created, "received_at": created, "state": "dispatched",
            "body": body if (shop, order) == TIMELINE else "{}",
        })  # fmt: skip
        for plugin in PLUGINS:
            state = rng.choice(STATES)
            action_rows.append({
                "idempotency_key": f"{shop}/{plugin}/send_email/order:{order}/{plugin}", "kind": "send_email",
                "shop_id": shop, "plugin": plugin, "order_id": order, "key": plugin, "customer_email": "a@example.com",
                "payload": {"template": plugin}, "due_at": created + timedelta(days=7), "state": state,
                "reason": {"failed": "550 5.1.1 mailbox unavailable", "dropped": "fire-time check: the order was "
                           "refunded"}.get(state, ""),  # fmt: skip
                "rechecks": "", "depends_on": "", "hook": "on_order_paid", "event_key": f"paid-{order}",
                "attempts": 1, "result": None, "created_at": created, "updated_at": created,
            })  # fmt: skip
    with store.transaction() as conn:
        if conn.dialect.name == "postgresql":
            _copy(conn, events, event_rows)
            _copy(conn, actions, action_rows)
        else:
            for start in range(0, len(event_rows), 20_000):
                conn.execute(events.insert(), event_rows[start : start + 20_000])
            for start in range(0, len(action_rows), 20_000):
                conn.execute(actions.insert(), action_rows[start : start + 20_000])
        runs = [{"event_id": r["id"], "plugin": p, "hook": "on_order_paid", "outcome": "ok", "error": "",
                 "actions_requested": 1, "duration_ms": 0.2, "ran_at": r["received_at"]}
                for r in event_rows[:50_000] for p in PLUGINS[:2]]  # fmt: skip
        conn.execute(hook_runs.insert(), runs)
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT setval('events_id_seq', (SELECT max(id) FROM events))"))
            conn.execute(sa.text("ANALYZE"))
        else:
            conn.execute(sa.text("ANALYZE"))
    print(f"  filled {len(action_rows):,} actions, {len(event_rows):,} events in {time.perf_counter() - started:.1f} s")


def _copy(conn: sa.Connection, table: sa.Table, rows: list[dict]) -> None:
    """PostgreSQL's COPY: a million rows in seconds rather than minutes."""
    columns = list(rows[0])
    cursor = conn.connection.driver_connection.cursor()
    with cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row([json.dumps(v) if isinstance(v, dict) else v for v in (row[c] for c in columns)])


def time_pages(app: App) -> dict[str, float]:
    accounts.add_user(app.store, "agency", PASSWORD, ("all",), NOW)
    with TestClient(create_asgi_app(app, Enqueuer.for_app(app)), base_url="http://127.0.0.1") as client:
        page = client.get("/console/login").text
        csrf = page.split('name="csrf" value="')[1].split('"')[0]
        client.post("/console/login", data={"name": "agency", "password": PASSWORD, "csrf": csrf, "next": ""})
        pages = {
            "overview (shop07)": "/console/shops/shop07",
            "actions, failed, all shops": "/console/actions?state=failed",
            "actions, failed, one shop": "/console/actions?shop=shop07&state=failed",
            "actions, failed, 2nd page": None,
            "order timeline": f"/console/shops/{TIMELINE[0]}/orders/{TIMELINE[1]}",
        }
        first = client.get(pages["actions, failed, all shops"]).text
        pages["actions, failed, 2nd page"] = first.split("Older actions")[0].rsplit('href="', 1)[1].split('"')[0]
        pages["actions, failed, 2nd page"] = pages["actions, failed, 2nd page"].replace("&amp;", "&")
        result = {}
        for name, url in pages.items():
            answer = client.get(url)
            assert answer.status_code == 200, (url, answer.status_code)
            runs = []
            for _ in range(5):
                started = time.perf_counter()
                client.get(url)
                runs.append((time.perf_counter() - started) * 1000)
            result[name] = statistics.median(runs)
    return result


def make_app(database: str, folder: Path) -> App:
    manager = PluginManager.load(entry_points=False, extra=[("memory-platform", memory_platform)])
    config = Config(
        database=database,
        queue=f"sqlite:///{folder / 'queue.db'}",
        shops=[ShopConfig(id=s, platform="memory", webhook_secret="x", production=True) for s in SHOPS],
        console=ConsoleSettings(enabled=True, secret_key="bench"),
        base_dir=folder,
    )
    app = App(config, clock=ManualClock(NOW), plugins=manager)
    app.store.upgrade()
    return app


def run(kind: str, total: int) -> None:
    print(f"{kind}:")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        cleanup = None
        if kind == "sqlite":
            database = f"sqlite:///{folder / 'aftercare.db'}"
        else:
            schema = f"bench_{uuid.uuid4().hex[:10]}"
            admin = sa.create_engine(POSTGRES)
            with admin.begin() as conn:
                conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
            database = f"{POSTGRES}?options=-csearch_path%3D{schema}"

            def cleanup() -> None:
                with admin.begin() as conn:
                    conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
                admin.dispose()

        app = make_app(database, folder)
        try:
            fill(app, total)
            for name, ms in time_pages(app).items():
                print(f"  {name:<28} {ms:7.1f} ms")
        finally:
            app.close()
            if cleanup:
                cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--actions", type=int, default=1_000_000)
    parser.add_argument("--only", choices=["sqlite", "postgresql"])
    args = parser.parse_args()
    for kind in ("sqlite", "postgresql"):
        if args.only in (None, kind):
            run(kind, args.actions)


if __name__ == "__main__":
    main()
