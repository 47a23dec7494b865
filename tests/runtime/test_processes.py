"""Real processes: `aftercare serve` and `aftercare worker` on SQLite+Huey-SQLite and on
PostgreSQL+Redis: acknowledged webhooks, a worker stopped mid-run and restarted, two
workers sharing one queue. Executions are counted in a log file the channel appends to."""

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from aftercare.app import App
from aftercare.config import load_config
from aftercare.testing import make_event, make_order
from aftercare.worker import Worker

from ..core.test_store import POSTGRES, postgres_or_skip

LOCAL_PLUGINS = Path(__file__).parent / "local_plugins"
REDIS = "redis://127.0.0.1:6379/0"
SECRET = "process-test-secret"


def redis_or_skip():
    import redis

    try:
        redis.Redis.from_url(REDIS, socket_connect_timeout=1).ping()
    except redis.exceptions.ConnectionError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"Redis must answer in CI at {REDIS}: {exc}")
        pytest.skip(f"no Redis at {REDIS}")


@pytest.fixture(params=["sqlite", "postgresql+redis"])
def deployment(request, tmp_path):
    """A config file for one of the two stacks, and the log the channel writes."""
    if request.param == "sqlite":
        database, queue = "sqlite:///aftercare.db", "sqlite:///queue.db"
        cleanup = None
    else:
        postgres_or_skip()
        redis_or_skip()
        schema = f"p_{uuid.uuid4().hex[:12]}"
        admin = sa.create_engine(POSTGRES)
        with admin.begin() as conn:
            conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
        database, queue = f"{POSTGRES}?options=-csearch_path%3D{schema}", REDIS

        def cleanup():
            with admin.begin() as conn:
                conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
            admin.dispose()

    config = tmp_path / "aftercare.toml"
    config.write_text(
        f'database = "{database}"\nqueue = "{queue}"\nqueue_name = "t-{uuid.uuid4().hex[:8]}"\n'
        f'plugins_folder = "{LOCAL_PLUGINS}"\n\n[server]\nclaim_lease_seconds = 2\n\n'
        f'[[shops]]\nid = "test"\nplatform = "memory"\nwebhook_secret = "{SECRET}"\nproduction = true\n'
    )
    log = tmp_path / "executions.log"
    log.touch()
    yield config, log
    if cleanup:
        cleanup()


def start(config, log, *args, slow=0.0):
    env = {**os.environ, "AFTERCARE_TEST_LOG": str(log), "AFTERCARE_TEST_SLOW": str(slow), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "aftercare", "--config", str(config), *args],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )  # fmt: skip


def first_line(process, prefix, timeout=20):
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if line.startswith(prefix):
            return line.strip()
        seen.append(line)
        if process.poll() is not None:
            break
    raise AssertionError(f"no line starting {prefix!r}; got:\n{''.join(seen)}")


def stop(process, sig=signal.SIGTERM):
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.stdout.read() if process.stdout else ""


def executions(log):
    return Counter(line.split(" ", 1)[1] for line in log.read_text().splitlines())


def wait_for(predicate, timeout=30, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def producer(config):
    app = App(load_config(config))
    app.store.upgrade()
    return app, Worker(app)


def enqueue_orders(app, worker, count):
    """Store `count` paid events and send their dispatch messages, as the receiver does."""
    events = [make_event("order_paid", make_order(str(n)), key=f"paid-{n}") for n in range(count)]
    with app.store.transaction() as conn:
        ids = [i for i, _new in app.store.add_events(conn, events)]
    for start_at in range(0, len(ids), 10):
        worker.queue.dispatch_events(ids[start_at : start_at + 10])
    return ids


def post_each_twice(client, adapter, events):
    """Post each event's signed webhook twice, as a platform's retry would: answered 200 both times."""
    for event in events:
        body = event.to_json().encode()
        for _attempt in range(2):
            signed = {"x-aftercare-hmac-sha256": adapter.sign(body)}
            answer = client.post("/webhooks/test", content=body, headers=signed)
            assert answer.status_code == 200, answer.text


def test_serve_acknowledges_stored_webhooks_and_runs_each_action_once(deployment):
    config, log = deployment
    server = start(config, log, "serve", "--port", "0", "--sweep-interval", "0.2")
    try:
        url = first_line(server, "aftercare serve: listening on").rsplit(" ", 1)[1]
        app, _ = producer(config)
        adapter = app.adapter("test")
        with httpx.Client(base_url=url, timeout=10) as client:
            # the platform retries: the second of each is a no-op
            post_each_twice(client, adapter, [make_event("order_paid", make_order(str(n)), key=f"paid-{n}")
                                              for n in range(5)])  # fmt: skip
            tampered = client.post("/webhooks/test", content=b"{}", headers={"x-aftercare-hmac-sha256": "AAAA"})
            assert tampered.status_code == 401
            assert client.get("/healthz").json()["store"] == "ok"
        assert len(app.store.list_events()) == 5  # acknowledged means stored
        wait_for(lambda: sum(executions(log).values()) == 10, what="10 executions")
        app.close()
    finally:
        output = stop(server)
    assert "aftercare serve: stopped" in output
    assert set(executions(log).values()) == {1}


def test_worker_stopped_mid_run_finishes_in_flight_work_and_a_restart_does_the_rest(deployment):
    config, log = deployment
    app, worker = producer(config)
    enqueue_orders(app, worker, 30)
    first = start(config, log, "worker", "--workers", "2", "--sweep-interval", "0.2", slow=0.05)
    first_line(first, "aftercare worker: consuming")
    wait_for(lambda: sum(executions(log).values()) >= 6, what="some executions")
    output = stop(first, signal.SIGTERM)
    assert first.returncode == 0, output
    done_before_restart = sum(executions(log).values())
    assert done_before_restart < 60, "the worker finished everything before it was stopped"

    second = start(config, log, "worker", "--sweep-interval", "0.2")
    try:
        wait_for(lambda: sum(executions(log).values()) >= 60, what="all 60 executions")
        time.sleep(0.5)
    finally:
        stop(second)
    counts = executions(log)
    assert len(counts) == 60 and set(counts.values()) == {1}, counts.most_common(3)
    app.close()


def test_a_killed_worker_loses_nothing(deployment):
    config, log = deployment
    app, worker = producer(config)
    enqueue_orders(app, worker, 10)
    first = start(config, log, "worker", "--sweep-interval", "0.2", slow=0.3)
    first_line(first, "aftercare worker: consuming")
    wait_for(lambda: sum(executions(log).values()) >= 1, what="a first execution")
    stop(first, signal.SIGKILL)

    second = start(config, log, "worker", "--sweep-interval", "0.2")
    try:  # the claim of the killed worker's action runs out (2 s lease) and it runs again
        wait_for(lambda: len(executions(log)) >= 20, timeout=40, what="all 20 actions")
    finally:
        stop(second)
    assert len(executions(log)) == 20
    app.close()


def test_two_workers_on_one_queue_never_run_an_action_twice(deployment):
    config, log = deployment
    app, worker = producer(config)
    workers = [start(config, log, "worker", "--workers", "2", "--sweep-interval", "0.1", slow=0.01) for _ in range(2)]
    try:
        for process in workers:
            first_line(process, "aftercare worker: consuming")
        enqueue_orders(app, worker, 40)
        wait_for(lambda: sum(executions(log).values()) >= 80, what="80 executions")
        time.sleep(1.0)  # let any duplicate show itself
    finally:
        for process in workers:
            stop(process)
    counts = executions(log)
    assert len(counts) == 80 and set(counts.values()) == {1}, counts.most_common(3)
    pids = {line.split(" ", 1)[0] for line in log.read_text().splitlines()}
    assert len(pids) == 2, "both workers should have taken a share"
    app.close()


def children(parent_pid, command):
    """PIDs of `aftercare COMMAND ... --parent PID` processes: serve's worker, or its receivers."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            parent = argv[argv.index(b"--parent") + 1] if b"--parent" in argv else b""
            if command.encode() in argv and parent == str(parent_pid).encode():
                found.append(int(entry.name))
    return found


def worker_children(parent_pid):
    return children(parent_pid, "worker")


#: /proc/net/tcp's states.
ESTABLISHED, LISTEN = "01", "0A"


def sockets_on(pid, port, state):
    """How many TCP sockets on local ``port`` in ``state`` process ``pid`` holds (from /proc)."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == state:
            inodes.add(fields[9])
    held = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        held += target.startswith("socket:[") and target[8:-1] in inodes
    return held


def test_two_receivers_share_the_port_and_every_acknowledged_webhook_is_stored(deployment):
    config, log = deployment
    server = start(config, log, "serve", "--port", "0", "--receivers", "2", "--sweep-interval", "0.2")
    clients = []
    try:
        url = first_line(server, "aftercare serve: listening on").rsplit(" ", 1)[1]
        port = int(url.rsplit(":", 1)[1])
        wait_for(lambda: children(server.pid, "serve"), what="serve's second receiver")
        (receiver,) = children(server.pid, "serve")
        wait_for(lambda: sockets_on(receiver, port, LISTEN), what="the second receiver to listen")
        app, _ = producer(config)
        adapter = app.adapter("test")
        # 24 connections, kept open: the kernel spreads them over both processes' sockets.
        for n in range(24):
            client = httpx.Client(base_url=url, timeout=10)
            clients.append(client)
            post_each_twice(client, adapter, [make_event("order_paid", make_order(str(n)), key=f"paid-{n}")])
        held = {pid: sockets_on(pid, port, ESTABLISHED) for pid in (server.pid, receiver)}
        assert all(held.values()) and sum(held.values()) == 24, held
        assert len(app.store.list_events()) == 24  # acknowledged means stored, whichever process answered
        wait_for(lambda: sum(executions(log).values()) == 48, what="48 executions")
        app.close()
    finally:
        for client in clients:
            client.close()
        output = stop(server)
    assert "aftercare serve: stopped" in output
    assert set(executions(log).values()) == {1}
    assert not children(server.pid, "serve")


def test_several_receivers_on_a_taken_port_is_one_line_and_exit_2(deployment):
    config, log = deployment
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = start(config, log, "serve", "--port", str(port), "--receivers", "2")
        output = stop(server) if server.wait(timeout=30) is not None else ""
    assert server.returncode == 2
    assert output.strip().splitlines()[-1] == f"error: serve: cannot listen on 127.0.0.1:{port}: Address already in use"


def test_a_second_serve_with_receivers_is_refused_the_port_the_first_one_has(deployment):
    config, log = deployment
    first = start(config, log, "serve", "--port", "0", "--receivers", "2")
    try:
        url = first_line(first, "aftercare serve: listening on").rsplit(" ", 1)[1]
        port = url.rsplit(":", 1)[1]
        second = start(config, log, "serve", "--port", port, "--receivers", "2")
        assert second.wait(timeout=30) == 2
        line = stop(second).strip().splitlines()[-1]
        assert (
            line
            == f"error: serve: cannot listen on 127.0.0.1:{port}: Address already in use by another aftercare serve"
        )
    finally:
        stop(first)


def test_serves_children_stop_with_serve_even_when_serve_is_killed(tmp_path):
    config = tmp_path / "aftercare.toml"
    config.write_text(
        f'plugins_folder = "{LOCAL_PLUGINS}"\n\n[[shops]]\nid = "test"\nplatform = "memory"\n'
        f'webhook_secret = "{SECRET}"\nproduction = true\n'
    )
    log = tmp_path / "executions.log"
    server = start(config, log, "serve", "--port", "0", "--receivers", "2")
    first_line(server, "aftercare serve: listening on")
    wait_for(lambda: worker_children(server.pid) and children(server.pid, "serve"), what="serve's children")
    # The worker yields the CPU to the receivers: [server] worker_nice, 10 by default.
    (worker,) = worker_children(server.pid)
    wait_for(lambda: os.getpriority(os.PRIO_PROCESS, worker) == os.getpriority(os.PRIO_PROCESS, 0) + 10,
             what="the worker's lower priority")  # fmt: skip
    stop(server, signal.SIGKILL)
    wait_for(lambda: not worker_children(server.pid), timeout=15, what="the orphaned worker to stop")
    wait_for(lambda: not children(server.pid, "serve"), timeout=15, what="the orphaned receiver to stop")
