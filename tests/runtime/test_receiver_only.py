"""`serve --no-worker` beside an `aftercare worker` process: the receiver stores and answers, the
separate worker runs the actions, and `aftercare worker --check` (a container's health check)
says whether a worker on this host is alive."""

import subprocess
import sys

import httpx
import pytest

from aftercare.testing import make_event, make_order

from .test_processes import deployment, executions, first_line, producer, start, stop, wait_for  # noqa: F401


def check(config):
    return subprocess.run(
        [sys.executable, "-m", "aftercare", "--config", str(config), "worker", "--check"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip


@pytest.mark.parametrize("deployment", ["sqlite"], indirect=True)
def test_a_receiver_only_serve_and_a_separate_worker_share_the_work(deployment):  # noqa: F811
    config, log = deployment
    server = start(config, log, "serve", "--no-worker", "--port", "0")
    worker = None
    try:
        url = first_line(server, "aftercare serve: listening on").rsplit(" ", 1)[1]
        app, _ = producer(config)
        adapter = app.adapter("test")
        with httpx.Client(base_url=url, timeout=10) as client:
            health = client.get("/healthz")  # no worker of its own: not its failure
            assert health.status_code == 200 and "worker" not in health.json(), health.text
            for n in range(2):
                body = make_event("order_paid", make_order(str(n)), key=f"paid-{n}").to_json().encode()
                answer = client.post(
                    "/webhooks/test", content=body, headers={"x-aftercare-hmac-sha256": adapter.sign(body)}
                )
                assert answer.status_code == 200, answer.text
            never = check(config)
            assert never.returncode == 1 and "no heartbeat" in never.stdout
            assert executions(log) == {}  # nothing ran: serve started no worker

            worker = start(config, log, "worker", "--sweep-interval", "0.2")
            first_line(worker, "aftercare worker: consuming")
            wait_for(lambda: sum(executions(log).values()) == 4, what="4 executions by the separate worker")
            alive = check(config)
            assert alive.returncode == 0 and alive.stdout.startswith("worker: ok"), alive.stdout + alive.stderr
            assert client.get("/healthz").json()["heartbeat"] is not None
        app.close()
    finally:
        if worker is not None:
            stop(worker)
        output = stop(server)
    assert "aftercare serve: stopped" in output
    assert set(executions(log).values()) == {1}
