"""The fault suite's stack: real `aftercare serve` (and `worker`) processes, the Shopify sandbox
shop and a faulty SMTP relay on 127.0.0.1, and the promises every scenario checks.

One stack is a config file, a sandbox shop whose webhooks point at serve, an SMTP sink, and the
processes started from it, each in its own process group (serve's worker child is in serve's)
and killed at teardown, however the test ended. Intervals are short (sweep 0.2 s, claim lease
2 s, pending grace 1 s) so recovery takes seconds; the load is tens of orders. Only the coupon
plugin is on: each paid order makes one platform action (the coupon, a GraphQL mutation) and one
mail that waits for it, which is the pair the promises are about.

The promises (:meth:`Stack.assert_promises`): every delivery answered 200 is stored; each
coupon exists once on the shop; no mail key reaches the relay twice; no (event, plugin, hook)
ran twice.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from aftercare.app import App
from aftercare.config import load_config
from aftercare.models import EventKind
from aftercare.sandbox import ShopifySandbox
from aftercare.store import actions, events, hook_runs
from aftercare.testing import FaultySmtpSink, TcpProxy

from ..core.test_store import POSTGRES, postgres_or_skip
from ..runtime.test_processes import REDIS, redis_or_skip

SHOP = "shop"
#: The sandbox retries a webhook for about 10 s: longer than any outage a scenario makes.
WEBHOOK_RETRIES = (0.2, 0.5, 1, 2, 3, 4)
#: Events still to be dispatched, actions still to run.
UNFINISHED_EVENTS = ("pending", "dispatching")
UNFINISHED_ACTIONS = ("due", "running", "waiting")


def wait_for(predicate: Callable[[], object], timeout: float = 20, what: str = "condition", every=0.05):
    """Poll ``predicate`` until it is true (returned), or fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(every)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Processes:
    """Processes started in their own process group; :meth:`kill_all` ends every group."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.started: list[tuple[subprocess.Popen, Path]] = []
        #: Added to every process's environment.
        self.env: dict[str, str] = {}

    def start(self, config: Path, *args: str) -> tuple[subprocess.Popen, Path]:
        log = self.folder / f"{args[0]}-{len(self.started)}.log"
        output = log.open("w")
        process = subprocess.Popen(
            [sys.executable, "-m", "aftercare", "--config", str(config), *args],
            stdout=output, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1", **self.env},
            start_new_session=True,
        )  # fmt: skip
        output.close()
        self.started.append((process, log))
        return process, log

    def text(self) -> str:
        """Everything the processes wrote."""
        return "\n".join(log.read_text() for _, log in self.started)

    def output(self) -> str:
        """The last lines each process wrote (for failure messages)."""
        return "\n".join(f"--- {log.name}\n" + "\n".join(log.read_text().splitlines()[-30:]) for _, log in self.started)

    def stop(self, process: subprocess.Popen, timeout: float = 15) -> None:
        """SIGTERM (serve stops its worker), then SIGKILL to the whole group if it lingers."""
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout)
        self._kill_group(process)

    def kill_all(self) -> None:
        for process, _ in self.started:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        for process, _ in self.started:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(max(0.1, deadline - time.monotonic()))
            self._kill_group(process)

    @staticmethod
    def _kill_group(process: subprocess.Popen) -> None:
        # The group outlives its leader: serve's worker child after a kill -9 of serve.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        if process.poll() is None:
            process.wait(5)


def worker_children(parent_pid: int) -> list[int]:
    """PIDs of serve's worker children (``aftercare worker --parent PID``)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
                if (entry / "stat").read_text().split(") ", 1)[1].startswith("Z"):
                    continue
            except (OSError, IndexError):
                continue
            if (
                b"worker" in argv
                and b"--parent" in argv
                and argv[argv.index(b"--parent") + 1] == str(parent_pid).encode()
            ):
                found.append(int(entry.name))
    return found


class Stack:
    """One deployment under test: config, sandbox shop, SMTP sink, processes, and the store's view."""

    def __init__(
        self, folder: Path, *, database: str, queue: str, direct_database: str | None = None, env=None
    ) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.shop = ShopifySandbox(retry_delays=WEBHOOK_RETRIES, seed=17, bucket_size=2000, restore_rate=1000)
        self.shop.start()
        self.smtp = FaultySmtpSink().start()
        self.processes = Processes(folder)
        self.processes.env.update(env or {})
        self.config = folder / "aftercare.toml"
        self.write_config(database, queue)
        self.engine = sa.create_engine(direct_database or self._absolute(database))
        app = App(load_config(self.config))
        try:
            app.store.upgrade()
            app.adapter(SHOP).register_webhooks(f"{self.url}/webhooks/{SHOP}", list(EventKind))
        finally:
            app.close()
        self.server: subprocess.Popen | None = None
        self.orders: list[int] = []

    def _absolute(self, url: str) -> str:
        relative = url.startswith("sqlite:///") and not url.startswith("sqlite:////")
        return url.replace("sqlite:///", f"sqlite:///{self.folder}/", 1) if relative else url

    def write_config(self, database: str, queue: str, smtp_port: int | None = None) -> None:
        settings = self.shop.adapter_settings()
        self.config.write_text(
            f'database = "{database}"\nqueue = "{queue}"\nqueue_name = "f-{uuid.uuid4().hex[:8]}"\n'
            f'public_url = "{self.url}"\n\n'
            f"[server]\nport = {self.port}\nworkers = 2\nclaim_lease_seconds = 2\npending_grace_seconds = 1\n\n"
            '[mail]\ntransport = "smtp"\nquiet_hours_start = 00:00:00\nquiet_hours_end = 00:00:00\n'
            "frequency_cap = 0\n\n"
            f'[mail.smtp]\nhost = "127.0.0.1"\nport = {smtp_port or self.smtp.port}\nsecurity = "none"\n'
            "timeout = 2\n\n"
            "[plugins.coupon]\nenabled = true\nvalue = 10\nvalid_days = 30\n\n"
            f'[[shops]]\nid = "{SHOP}"\nplatform = "shopify"\nwebhook_secret = "{self.shop.secret}"\n'
            f'production = true\nsender = "Fault Shop <hello@shop.example>"\nread_timeout = 1.0\n'
            + "".join(f"{key} = {json.dumps(value)}\n" for key, value in settings.items())
        )

    # -- processes --------------------------------------------------------------
    def serve(self, *extra: str) -> subprocess.Popen:
        """Start serve (and so its worker child) and wait until it listens and its worker beats."""
        self.server, log = self.processes.start(self.config, "serve", "--sweep-interval", "0.2", *extra)
        wait_for(lambda: "listening on" in log.read_text() or self.server.poll() is not None, what="serve to listen")
        assert self.server.poll() is None, self.processes.output()
        wait_for(lambda: worker_children(self.server.pid), what="serve's worker child")
        return self.server

    def worker(self) -> subprocess.Popen:
        process, log = self.processes.start(self.config, "worker", "--sweep-interval", "0.2")
        wait_for(lambda: "consuming" in log.read_text() or process.poll() is not None, what="the worker to start")
        assert process.poll() is None, self.processes.output()
        return process

    def close(self) -> None:
        self.processes.kill_all()
        self.shop.stop()
        self.smtp.stop()
        self.engine.dispose()

    # -- load -------------------------------------------------------------------
    def place_orders(self, count: int) -> list[int]:
        """New paid orders on the shop, each from a new customer (the mail key is per customer):
        each fires its webhooks at serve."""
        made = [self.shop.create_order(email=f"c{len(self.orders) + n}@example.com").id for n in range(count)]
        self.orders.extend(made)
        return made

    # -- the store's view ---------------------------------------------------------
    def rows(self, query) -> list:
        with self.engine.connect() as conn:
            return list(conn.execute(query))

    def actions_of(self, order_ids, kind: str | None = None) -> list:
        ids = [str(i) for i in order_ids]
        query = sa.select(actions).where(actions.c.order_id.in_(ids))
        if kind:
            query = query.where(actions.c.kind == kind)
        return self.rows(query)

    def unfinished(self) -> int:
        left = self.rows(sa.select(sa.func.count()).where(events.c.state.in_(UNFINISHED_EVENTS)))[0][0]
        return left + self.rows(sa.select(sa.func.count()).where(actions.c.state.in_(UNFINISHED_ACTIONS)))[0][0]

    def done(self, order_ids, timeout: float = 20, *, retries_due: bool = False) -> None:
        """Wait until the shop delivered its webhooks and every order's coupon and mail are done;
        ``retries_due``: meanwhile let every retry fall due at once (:meth:`let_retries_fall_due`)."""
        assert self.shop.flush(timeout), "the sandbox still has webhooks to send"

        def finished():
            if retries_due:
                self.let_retries_fall_due()
            found = self.actions_of(order_ids)
            return len(found) == 2 * len(order_ids) and all(a.state == "done" for a in found)

        try:
            wait_for(finished, timeout, what=f"the coupons and mails of {len(order_ids)} orders done")
        except AssertionError:
            states = Counter((a.kind, a.state, a.reason[:80]) for a in self.actions_of(order_ids))
            raise AssertionError(f"not all done: {states}\n{self.processes.output()}") from None

    def mails_of(self, order_ids) -> list:
        return self.actions_of(order_ids, "send_email")

    def coupons_of(self, order_ids) -> list:
        return self.actions_of(order_ids, "create_coupon")

    def let_retries_fall_due(self) -> None:
        """What waiting out the retry backoff (30 s at least, not a setting) would do: make every
        action and event waiting for a retry due now."""
        with self.engine.begin() as conn:
            conn.execute(sa.update(actions).where(actions.c.state == "due").values(due_at=datetime.now(UTC)))
            conn.execute(sa.update(events).where(events.c.state == "pending").values(retry_at=None))

    # -- the promises -------------------------------------------------------------
    def assert_promises(self, orders=None, *, killed_mid_send: int = 0) -> None:
        """The four promises, over ``orders`` (default: every order placed on this stack), so a
        scenario sharing the stack is judged on its own orders. ``orders/paid`` is the one topic
        of this load that the hooks need; the shop's other deliveries (``orders/create``...)
        are answered 200 without an event, by design.

        ``killed_mid_send``: a worker with that many threads was killed with ``kill -9``. The one
        window docs/runtime.md admits is a mail the relay accepted just before the kill, whose
        sent mark never committed: it goes again, at most once per thread, with the same
        Message-ID. Anything beyond that breaks the promise."""
        orders = {str(o) for o in (self.orders if orders is None else orders)}
        stored = {(row.topic, row.order_id) for row in self.rows(sa.select(events.c.topic, events.c.order_id))}
        acknowledged = [
            (a.topic, str(json.loads(a.body)["id"]))
            for a in self.shop.deliveries
            if a.status == 200 and a.topic == "orders/paid" and str(json.loads(a.body)["id"]) in orders
        ]
        assert acknowledged, "no orders/paid delivery was answered 200: the scenario proved nothing"
        lost = [delivery for delivery in acknowledged if delivery not in stored]
        assert not lost, f"deliveries answered 200 but not stored: {lost[:5]}"

        twice = self.rows(
            sa.select(hook_runs.c.event_id, hook_runs.c.plugin, hook_runs.c.hook, sa.func.count())
            .join(events, events.c.id == hook_runs.c.event_id)
            .where(events.c.order_id.in_(orders))
            .group_by(hook_runs.c.event_id, hook_runs.c.plugin, hook_runs.c.hook)
            .having(sa.func.count() > 1)
        )
        assert not twice, f"(event, plugin, hook) run more than once: {twice[:5]}"

        coupon_actions = self.actions_of(orders, "create_coupon")
        codes = {a.payload["code"] for a in coupon_actions}
        on_shop = Counter(c["code"] for c in self.shop.coupons() if c["code"] in codes)
        assert not [code for code, n in on_shop.items() if n > 1], f"a coupon made twice: {on_shop.most_common(3)}"
        made = {a.payload["code"] for a in coupon_actions if a.state == "done"}
        assert made == set(on_shop), f"coupon actions done: {sorted(made)}; coupons on the shop: {sorted(on_shop)}"

        mails = self.actions_of(orders, "send_email")
        keys = self.smtp.keys()
        twice = {m.idempotency_key: keys[m.idempotency_key] for m in mails if keys[m.idempotency_key] > 1}
        in_the_window = len(twice) <= killed_mid_send and all(n == 2 for n in twice.values())
        assert not twice or in_the_window, f"mail keys at the relay more than once: {twice}"
        never = [m.idempotency_key for m in mails if m.state == "done" and not keys[m.idempotency_key]]
        assert not never, f"mails recorded done that the relay never got: {never[:3]}"


@pytest.fixture
def make_stack(tmp_path) -> Iterator[Callable[..., Stack]]:
    """``make_stack(database=..., queue=...)``: a Stack in tmp_path, closed at teardown."""
    made: list[Stack] = []

    def make(**options) -> Stack:
        stack = Stack(tmp_path / f"stack-{len(made)}", **options)
        made.append(stack)
        return stack

    yield make
    for stack in made:
        stack.close()


@pytest.fixture(scope="package")
def sqlite_serve(tmp_path_factory) -> Iterator[Stack]:
    """One serve on SQLite shared by the SMTP and platform scenarios (each sets its fault and its
    own orders, and puts the relay and the shop right again). Those two modules sort last, so
    this stack never runs beside another module's."""
    stack = sqlite_stack(tmp_path_factory.mktemp("shared"))
    try:
        stack.serve()
        yield stack
    finally:
        stack.close()


@pytest.fixture
def shared(sqlite_serve) -> Iterator[Stack]:
    yield sqlite_serve
    sqlite_serve.smtp.reply = None
    sqlite_serve.smtp.close_after_data = False
    if sqlite_serve.smtp.port_if_running is None:
        sqlite_serve.smtp.start(sqlite_serve.smtp.last_port)
    sqlite_serve.shop.clear_faults()


def refused_answers(stack: Stack, orders) -> list:
    """Deliveries of these orders that serve did not answer 200 (the platform retries them)."""
    ids = {str(o) for o in orders}
    return [a for a in stack.shop.deliveries if a.status != 200 and str(json.loads(a.body)["id"]) in ids]


def answered(stack: Stack, orders) -> list:
    """The orders/paid deliveries of these orders answered 200."""
    ids = {str(o) for o in orders}
    return [
        a
        for a in stack.shop.deliveries
        if a.status == 200 and a.topic == "orders/paid" and str(json.loads(a.body)["id"]) in ids
    ]


def postgres_address() -> tuple[str, int]:
    """Where the test PostgreSQL listens (a TcpProxy's target)."""
    url = sa.make_url(POSTGRES)
    return url.host or "127.0.0.1", url.port or 5432


def sqlite_stack(folder: Path) -> Stack:
    return Stack(folder, database="sqlite:///aftercare.db", queue="sqlite:///queue.db")


def postgres_stack(folder: Path, *, through: TcpProxy | None = None, redis: TcpProxy | None = None) -> Stack:
    """A stack on a fresh PostgreSQL schema (dropped at close) and Redis, optionally through proxies."""
    postgres_or_skip()
    redis_or_skip()
    schema = f"f_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES)
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    direct = f"{POSTGRES}?options=-csearch_path%3D{schema}"
    database = direct
    if through:
        database = sa.make_url(direct).set(host="127.0.0.1", port=through.port).render_as_string(hide_password=False)
    queue = f"redis://127.0.0.1:{redis.port}/0" if redis else REDIS
    stack = Stack(folder, database=database, queue=queue, direct_database=direct)
    stack.schema = schema
    closing = stack.close

    def close():
        closing()
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()

    stack.close = close
    return stack
