"""serve keeps its worker child running; processes started with the store unreachable say so in one line."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from aftercare.testing import make_event, make_order

from .test_processes import (
    LOCAL_PLUGINS,
    SECRET,
    executions,
    first_line,
    producer,
    start,
    stop,
    wait_for,
    worker_children,
)


def is_zombie(pid):
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z")
    except FileNotFoundError:
        return False


def test_a_worker_child_killed_under_serve_is_restarted_and_does_the_waiting_work(tmp_path):
    config = tmp_path / "aftercare.toml"
    config.write_text(
        f'plugins_folder = "{LOCAL_PLUGINS}"\n\n[server]\nclaim_lease_seconds = 2\n\n'
        f'[[shops]]\nid = "test"\nplatform = "memory"\nwebhook_secret = "{SECRET}"\nproduction = true\n'
    )
    log = tmp_path / "executions.log"
    log.touch()
    server = start(config, log, "serve", "--port", "0", "--sweep-interval", "0.2")
    try:
        url = first_line(server, "aftercare serve: listening on").rsplit(" ", 1)[1]
        with httpx.Client(base_url=url, timeout=10) as client:
            wait_for(lambda: client.get("/healthz").json().get("worker") == "ok", what="the worker's heartbeat")
            [killed] = worker_children(server.pid)
            os.kill(killed, signal.SIGKILL)
            app, _ = producer(config)
            adapter = app.adapter("test")
            for n in range(5):  # acknowledged while no worker runs: they wait in the store and the queue
                body = make_event("order_paid", make_order(str(n)), key=f"paid-{n}").to_json().encode()
                signed = {"x-aftercare-hmac-sha256": adapter.sign(body)}
                answer = client.post("/webhooks/test", content=body, headers=signed)
                assert answer.status_code == 200, answer.text
            wait_for(lambda: worker_children(server.pid) not in ([], [killed]), timeout=10, what="a new worker child")
            assert not is_zombie(killed)
            wait_for(lambda: sum(executions(log).values()) >= 10, timeout=15, what="the waiting work done")
            wait_for(lambda: client.get("/healthz").json().get("worker") == "ok", what="healthz ok again")
            app.close()
    finally:
        output = stop(server)
    assert "was killed by SIGKILL" in output and "restarting it in 1s" in output, output
    assert set(executions(log).values()) == {1}


@pytest.mark.parametrize("command", ["serve", "worker", "sync"])
def test_starting_with_the_store_unreachable_is_one_line_naming_the_database_and_exit_2(tmp_path, command):
    config = tmp_path / "aftercare.toml"
    config.write_text('database = "postgresql+psycopg://aftercare:hunter2@127.0.0.1:1/x"\n')
    done = subprocess.run([sys.executable, "-m", "aftercare", "--config", str(config), command],
                          capture_output=True, text=True, timeout=30)  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "error: database: cannot open postgresql+psycopg://aftercare:***@127.0.0.1:1/x: Connection refused"
    ]
    assert "hunter2" not in done.stdout + done.stderr


def supervise(tmp_path, name, runs_for, healthy_after, count, first=0.2, cap=0.8):
    """Start a child that notes its start and exits after ``runs_for`` s; return the gaps between starts."""
    from aftercare.serve import ChildSupervisor

    starts = tmp_path / name
    script = f"import time; open({str(starts)!r}, 'a').write(f'{{time.monotonic()}}\\n'); time.sleep({runs_for})"
    supervisor = ChildSupervisor("a child", [sys.executable, "-c", script], first_delay=first, max_delay=cap,
                                  healthy_after=healthy_after)  # fmt: skip
    supervisor.start()
    try:
        wait_for(lambda: starts.exists() and len(starts.read_text().split()) >= count, timeout=15, what="starts")
    finally:
        supervisor.stop()
    moments = [float(t) for t in starts.read_text().split()]
    time.sleep(1.0)  # longer than any wait: a stopped supervisor starts nothing more
    assert len(starts.read_text().split()) == len(moments)
    return [b - a for a, b in zip(moments, moments[1:], strict=False)]


def test_the_supervisor_backs_off_between_restarts(tmp_path):
    gaps = supervise(tmp_path, "crashing", runs_for=0, healthy_after=60, count=6, first=0.1, cap=0.4)
    waits = (0.1, 0.2, 0.4, 0.4, 0.4)  # doubling, then capped
    assert all(gap >= wait for gap, wait in zip(gaps, waits, strict=True)), gaps
    assert gaps[4] < 1.6  # doubling on would have waited 1.6 s (plus the child's start-up)


def test_the_supervisor_waits_the_first_delay_again_after_a_child_ran_a_while(tmp_path):
    gaps = supervise(tmp_path, "healthy", runs_for=0.4, healthy_after=0.3, count=4)
    assert all(gap >= 0.6 for gap in gaps), gaps  # 0.4 s run + 0.2 s wait each time
    assert gaps[2] < 1.2, gaps  # without the reset: 0.4 s run + 0.8 s wait
