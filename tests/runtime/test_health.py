"""/healthz: the last heartbeat and the overdue actions, and 503 once the heartbeat is older
than [server] heartbeat_limit_seconds, in one process and with a real serve whose worker child
is frozen (SIGSTOP) and thawed."""

import os
import signal
from datetime import datetime, timedelta

import httpx
import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from aftercare.actions import ActionState
from aftercare.asgi import create_asgi_app
from aftercare.dispatch import Dispatcher
from aftercare.store import wall_clock, workers
from aftercare.testing import make_event, make_order
from aftercare.worker import Worker

from ..core.plugins_for_tests import Mailbox, ThankYou
from .test_processes import deployment, first_line, producer, start, stop, wait_for  # noqa: F401


def beat_back(app, seconds):
    with app.store.transaction() as conn:
        conn.execute(sa.update(workers).values(beat_at=wall_clock() - timedelta(seconds=seconds)))


def test_healthz_shows_the_last_heartbeat_and_turns_503_past_the_limit(aftercare_app):
    app = aftercare_app(ThankYou(), Mailbox())
    worker = Worker(app)
    with TestClient(create_asgi_app(app, worker.queue, expects_worker=True), base_url="http://127.0.0.1") as client:
        assert client.get("/healthz").json()["heartbeat"] is None
        worker.heartbeat()
        alive = client.get("/healthz")
        assert alive.status_code == 200
        beat = datetime.fromisoformat(alive.json()["heartbeat"].replace("Z", "+00:00"))
        assert abs((wall_clock() - beat).total_seconds()) < 60

        beat_back(app, 10)  # within the default limit (15 s)
        assert client.get("/healthz").status_code == 200
        beat_back(app, 20)
        dead = client.get("/healthz")
        assert dead.status_code == 503 and dead.json()["worker"].startswith("not running since 20")
        assert dead.json()["heartbeat"] < alive.json()["heartbeat"]  # the time of the last one, moved back


def test_the_heartbeat_limit_is_the_configs_and_overdue_actions_are_counted(aftercare_app):
    app = aftercare_app(ThankYou(), Mailbox())
    app.config = app.config.model_copy(
        update={"server": app.config.server.model_copy(update={"heartbeat_limit_seconds": 60})}
    )
    worker = Worker(app)
    Dispatcher(app).dispatch(make_event("order_paid", make_order()))  # its actions are due now
    app.clock.advance(timedelta(minutes=1))  # and nobody ran them: overdue
    with TestClient(create_asgi_app(app, worker.queue, expects_worker=True), base_url="http://127.0.0.1") as client:
        worker.heartbeat()
        beat_back(app, 30)  # past the default 15 s, within this config's 60 s
        answer = client.get("/healthz")
        late = app.now() - timedelta(seconds=30)
        due = [a for a in app.store.list_actions() if a.state is ActionState.DUE and a.due_at <= late]
        assert due and answer.status_code == 200 and answer.json()["backlog"]["overdue_actions"] == len(due)
        beat_back(app, 90)
        assert client.get("/healthz").status_code == 503


def frozen(answer: httpx.Response) -> bool:
    return answer.status_code == 503 and answer.json().get("worker", "").startswith("not running since")


@pytest.mark.parametrize("deployment", ["sqlite"], indirect=True)
def test_healthz_of_serve_turns_503_while_its_worker_is_frozen_and_ok_once_it_runs(deployment):  # noqa: F811
    config, log = deployment
    config.write_text(config.read_text().replace("[server]\n", "[server]\nheartbeat_limit_seconds = 6\n"))
    server = start(config, log, "serve", "--port", "0", "--sweep-interval", "0.2")
    app = None
    try:
        url = first_line(server, "aftercare serve: listening on").rsplit(" ", 1)[1]
        app, _ = producer(config)
        with httpx.Client(base_url=url, timeout=10) as client:
            wait_for(lambda: client.get("/healthz").status_code == 200, what="a healthy serve")
            with app.store.engine.connect() as conn:
                (pid,) = conn.execute(sa.select(workers.c.pid)).one()
            os.kill(pid, signal.SIGSTOP)  # a worker that hangs: no heartbeat, yet not exited
            try:
                # A slow machine may answer 503 for a slow store check first: wait for the worker's.
                wait_for(lambda: frozen(client.get("/healthz")), timeout=20, what="503 for the frozen worker")
            finally:
                os.kill(pid, signal.SIGCONT)
            wait_for(lambda: client.get("/healthz").status_code == 200, timeout=20, what="ok again")
    finally:
        if app is not None:
            app.close()
        stop(server)
