"""The receiver in-process: every answer of the issue's table, and persist-before-acknowledge."""

from datetime import timedelta

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from aftercare.asgi import create_asgi_app
from aftercare.queue import Enqueuer
from aftercare.store import HEALTH_PROBE_CURSOR, Store, cursors, wall_clock, workers
from aftercare.testing import make_event, make_order
from aftercare.worker import STUCK_AFTER, Worker

from ..core.plugins_for_tests import Mailbox, ThankYou


@pytest.fixture
def served(aftercare_app):
    app = aftercare_app(ThankYou(), Mailbox())
    worker = Worker(app)
    with TestClient(create_asgi_app(app, worker.queue), base_url="http://127.0.0.1") as client:
        yield app, worker, client


def post(client, app, body, *, topic="orders/paid", shop="test", signature=None, headers=None):
    signature = signature if signature is not None else app.adapter("test").sign(body)
    return client.post(
        f"/webhooks/{shop}",
        content=body,
        headers={"x-aftercare-hmac-sha256": signature, "x-aftercare-topic": topic, **(headers or {})},
    )


def test_signed_delivery_is_stored_then_acknowledged_and_a_retry_stores_nothing(served):
    app, worker, client = served
    body = make_event("order_paid", make_order()).to_json().encode()
    first = post(client, app, body)
    assert first.status_code == 200 and first.json() == {"stored": 1, "events": 1}
    [stored] = app.store.list_events()
    assert stored.state == "pending"  # acknowledged once stored; dispatch is the worker's
    assert worker.queue.backlog() == 1

    again = post(client, app, body)
    assert again.status_code == 200 and again.json() == {"stored": 0, "events": 1}
    assert len(app.store.list_events()) == 1

    worker.run_now()
    assert app.store.get_event(stored.id).state == "dispatched"
    assert {a.state.value for a in app.store.list_actions()} >= {"done"}


def test_bad_signature_is_401_and_stores_nothing(served):
    app, _worker, client = served
    body = make_event("order_paid", make_order()).to_json().encode()
    tampered = body.replace(b"ana@example.com", b"eve@example.com")
    response = post(client, app, tampered, signature=app.adapter("test").sign(body))
    assert response.status_code == 401 and "does not match" in response.json()["error"]
    assert post(client, app, body, signature="").status_code == 401
    assert app.store.list_events() == []


def test_unknown_shop_oversized_and_malformed_bodies(served):
    app, _worker, client = served
    assert post(client, app, b"{}", shop="nope").status_code == 404
    huge = b"x" * (app.config.server.max_body_bytes + 1)
    assert post(client, app, huge).status_code == 413
    response = post(client, app, b"{not json")
    assert response.status_code == 400 and response.json()["error"].startswith("body is not JSON")
    assert app.store.list_events() == []


def test_unreadable_payload_is_422_and_kept_raw(served):
    app, _worker, client = served
    response = post(client, app, b'{"kind": "order_paid"}', headers={"x-aftercare-delivery-id": "d-1"})
    assert response.status_code == 422 and "orders/paid: field '<event>'" in response.json()["error"]
    [kept] = app.store.rejected()
    assert (kept["delivery_id"], kept["body"]) == ("d-1", b'{"kind": "order_paid"}')
    assert app.store.list_events() == []


def test_topic_no_hook_needs_is_acknowledged(served):
    app, _worker, client = served
    response = post(client, app, b"{}", topic="ignored")
    assert response.status_code == 200 and response.json() == {"stored": 0, "events": 0}


def test_healthz_checks_store_and_queue(served):
    _app, _worker, client = served
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {
        "store": "ok", "queue": "ok", "backlog": {"pending_events": 0, "overdue_actions": 0}, "heartbeat": None
    }


def test_healthz_reports_a_worker_that_never_started_died_or_is_stuck(aftercare_app):
    app = aftercare_app(ThankYou(), Mailbox())
    worker = Worker(app)
    with TestClient(create_asgi_app(app, worker.queue, expects_worker=True), base_url="http://127.0.0.1") as client:
        never = client.get("/healthz")
        assert never.status_code == 503 and never.json()["worker"] == "not running: no worker has started"

        worker.heartbeat()
        assert client.get("/healthz").json()["worker"] == "ok"

        with app.store.transaction() as conn:  # its last heartbeat, a minute ago: killed
            conn.execute(sa.update(workers).values(beat_at=wall_clock() - timedelta(minutes=1)))
        dead = client.get("/healthz")
        assert dead.status_code == 503 and dead.json()["worker"].startswith("not running since 20")

        # Alive, but work waits for longer than STUCK_AFTER and nothing was done meanwhile: stuck.
        with app.store.transaction() as conn:
            app.store.add_events(conn, [make_event("order_paid", make_order())])
        app.clock.advance(STUCK_AFTER * 2)
        worker.progress_at = wall_clock() - STUCK_AFTER * 2
        worker.heartbeat()
        stuck = client.get("/healthz")
        assert stuck.status_code == 503 and stuck.json()["worker"].startswith("stuck: work is overdue")
        assert stuck.json()["backlog"] == {"pending_events": 1, "overdue_actions": 0}

        worker.run_now()  # it dispatches (and runs what is due): ok again
        worker.heartbeat()
        assert client.get("/healthz").json()["worker"] == "ok"


def test_healthz_names_what_failed_without_the_database_host(aftercare_app, tmp_path):
    app = aftercare_app()
    app.store = Store("postgresql+psycopg://aftercare:hunter2@127.0.0.1:1/x", app.clock)
    with TestClient(create_asgi_app(app, Enqueuer.for_app(app)), base_url="http://127.0.0.1") as client:
        answer = client.get("/healthz")
    assert answer.status_code == 503 and answer.json()["store"] == "error: read: OperationalError"
    assert answer.json()["worker"] == "error: OperationalError"  # its heartbeats are in the same store
    assert "127.0.0.1" not in answer.text and "hunter2" not in answer.text and "refused" not in answer.text


def test_healthz_shows_the_exception_class_never_its_text(aftercare_app, monkeypatch):
    """A full disk or a read-only database fails the write probe; the page names the class only."""
    app = aftercare_app()
    secret_text = "could not extend file base/16384/2619 on db.internal (user aftercare, password hunter2)"

    def refuse(_seconds):
        raise sa.exc.OperationalError("INSERT INTO cursors ...", {}, OSError(28, secret_text))

    def unreachable():
        raise ConnectionError(f"Error 111 connecting to redis.internal:6379 as {secret_text}")

    worker = Worker(app)
    monkeypatch.setattr(app.store, "probe_write", refuse)
    monkeypatch.setattr(worker.queue, "ping", unreachable)
    with TestClient(create_asgi_app(app, worker.queue), base_url="http://127.0.0.1") as client:
        answer = client.get("/healthz")
    assert answer.status_code == 503
    assert answer.json()["store"] == "error: write: OperationalError"
    assert answer.json()["queue"] == "error: ConnectionError"
    for word in ("db.internal", "redis.internal", "hunter2", "aftercare", "2619", "INSERT", "cursors"):
        assert word not in answer.text


def test_healthz_write_probe_commits_one_row_of_its_own(served):
    app, _worker, client = served
    assert client.get("/healthz").status_code == 200
    assert client.get("/healthz").status_code == 200
    with app.store.engine.connect() as conn:
        rows = conn.execute(sa.select(cursors.c.shop_id, cursors.c.name)).all()
    assert rows == [("", HEALTH_PROBE_CURSOR)]


def test_a_store_that_does_not_commit_in_time_gets_503_and_the_retry_finds_it_stored(served, monkeypatch):
    """SQLite has no lock timeout: the receiver bounds its own wait (ANSWER_WITHIN, shortened here)."""
    import threading

    from aftercare import receiver

    app, _worker, client = served
    monkeypatch.setattr(receiver, "ANSWER_WITHIN", 0.5)
    body = make_event("order_paid", make_order("late")).to_json().encode()
    holding, done = threading.Event(), threading.Event()

    def hold_the_write_lock():
        with app.store.transaction():
            holding.set()
            done.wait(10)

    holder = threading.Thread(target=hold_the_write_lock)
    holder.start()
    try:
        assert holding.wait(5)
        answer = post(client, app, body)
        assert answer.status_code == 503 and answer.json()["error"] == "the store is unavailable; retry later"
        health = client.get("/healthz")  # the write probe waits for the same lock: no answer within 0.8 s
        assert health.status_code == 503 and health.json()["store"] == "error: write: no answer within 0.8 s"
    finally:
        done.set()
        holder.join(10)
    # The batch committed once the lock was free, after its 503: the platform's retry finds it stored.
    retry = post(client, app, body)
    assert retry.status_code == 200 and retry.json() == {"stored": 0, "events": 1}
    assert [e.event.dedupe_key for e in app.store.list_events()] == ["test:order_paid:order-late"]


def test_the_receiver_enqueues_through_the_producer_it_is_given(aftercare_app):
    from .test_queue import Recording

    app = aftercare_app(ThankYou(), Mailbox())
    producer = Recording.for_app(app)
    with TestClient(create_asgi_app(app, producer), base_url="http://127.0.0.1") as client:
        body = make_event("order_paid", make_order()).to_json().encode()
        assert post(client, app, body).status_code == 200
        assert post(client, app, body).status_code == 200  # a retry: stored already, nothing enqueued
        assert client.get("/healthz").json()["queue"] == "ok"  # the producer's ping
    [stored] = app.store.list_events()
    assert [ids for ids in producer.events if ids] == [[stored.id]]
    assert Worker(app).queue.backlog() == 1  # the Worker's side sees the message
