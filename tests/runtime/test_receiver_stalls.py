"""The real receiver (uvicorn on 127.0.0.1) while the store or the platform stalls: every webhook
answered within Shopify's 5 s (503 or 200), /healthz within about a second, nothing acknowledged lost.

Bounds here are generous liveness bounds (what a platform tolerates), not speed measurements."""

import base64
import contextlib
import hashlib
import hmac
import json
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import sqlalchemy as sa
import uvicorn

from aftercare.app import App
from aftercare.asgi import create_asgi_app
from aftercare.config import load_config
from aftercare.queue import Enqueuer
from aftercare.testing import make_event, make_order

from ..core.test_store import POSTGRES, postgres_or_skip
from .test_processes import LOCAL_PLUGINS, SECRET

SHOPIFY_SECRET = "stall-test-secret"
SHOPIFY_DOMAIN = "stall-shop.myshopify.com"
#: Shopify's webhook deadline: an answer later than this counts as a failed delivery.
PLATFORM_DEADLINE = 5.0


@contextlib.contextmanager
def running(app):
    """The receiver on uvicorn on 127.0.0.1 (its own thread); yields its base URL; stopped after."""
    receiver = create_asgi_app(app, Enqueuer.for_app(app))
    server = uvicorn.Server(
        uvicorn.Config(receiver, host="127.0.0.1", port=0, http="httptools", log_config=None, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(15)


def timed(call):
    started = time.monotonic()
    answer = call()
    return answer, time.monotonic() - started


@pytest.fixture
def postgres_app(tmp_path):
    """An App on its own PostgreSQL schema (the in-memory platform), and that schema's name."""
    postgres_or_skip()
    schema = f"r_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES)
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    config = tmp_path / "aftercare.toml"
    config.write_text(
        f'database = "{POSTGRES}?options=-csearch_path%3D{schema}"\nqueue = "sqlite:///queue.db"\n'
        f'plugins_folder = "{LOCAL_PLUGINS}"\n\n'
        f'[[shops]]\nid = "test"\nplatform = "memory"\nwebhook_secret = "{SECRET}"\nproduction = true\n'
    )
    app = App(load_config(config))
    app.store.upgrade()
    yield app, admin, schema
    app.close()
    with admin.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


def test_a_table_lock_gets_503_before_the_deadline_and_every_retry_is_stored_once(postgres_app):
    app, admin, schema = postgres_app
    adapter = app.adapter("test")
    bodies = [make_event("order_paid", make_order(str(n)), key=f"lock-{n}").to_json().encode() for n in range(30)]

    def post(client, body):
        return client.post("/webhooks/test", content=body, headers={"x-aftercare-hmac-sha256": adapter.sign(body)})

    locked, released = threading.Event(), threading.Event()

    def hold_lock():
        with admin.connect() as conn, conn.begin():
            conn.execute(sa.text(f"LOCK TABLE {schema}.events IN ACCESS EXCLUSIVE MODE"))
            locked.set()
            time.sleep(6)
        released.set()

    with running(app) as url, httpx.Client(base_url=url, timeout=30) as client, ThreadPoolExecutor(40) as pool:
        assert client.get("/healthz").status_code == 200
        assert post(client, bodies[0]).status_code == 200  # before the lock
        holder = threading.Thread(target=hold_lock)
        holder.start()
        try:
            assert locked.wait(5)
            posted = [pool.submit(timed, lambda body=body: post(client, body)) for body in bodies[1:]]
            time.sleep(0.5)
            health, health_took = timed(lambda: client.get("/healthz"))
            assert not released.is_set(), "the lock was gone before /healthz answered"
            answers = [future.result() for future in posted]
        finally:
            holder.join(15)

        slowest = max(took for _answer, took in answers)
        assert slowest < PLATFORM_DEADLINE, f"a webhook waited {slowest:.1f}s for its answer"
        assert {answer.status_code for answer, _ in answers} <= {200, 503}
        refused = [body for body, (answer, _) in zip(bodies[1:], answers, strict=True) if answer.status_code == 503]
        assert refused, "the lock was held for 6 s: some deliveries must have been answered 503"
        assert all(a.json()["error"].startswith("the store is unavailable") for a, _ in answers if a.status_code == 503)
        assert health.status_code == 503 and health.json()["store"].startswith("error: ")
        assert health_took < 1.5, f"/healthz took {health_took:.1f}s during the lock"

        deadline = time.monotonic() + 10  # the lock is gone: healthy again, and the platform's retries go in
        while client.get("/healthz").status_code != 200:
            assert time.monotonic() < deadline, "/healthz stayed 503 after the lock"
            time.sleep(0.1)
        for body in refused:
            assert post(client, body).status_code == 200
        for body in bodies:  # a second retry of each (a platform retries what it was not sure of) stores nothing
            assert post(client, body).json()["stored"] == 0

    keys = [stored.event.dedupe_key for stored in app.store.list_events(limit=100)]
    assert sorted(keys) == sorted(f"lock-{n}" for n in range(30))  # every delivery stored, each once


@pytest.fixture
def silent_platform():
    """A 'Shopify Admin API' on 127.0.0.1 that accepts connections and never answers."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted, stop = [], threading.Event()

    def accept():
        listener.settimeout(0.1)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                accepted.append(listener.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}", accepted
    stop.set()
    thread.join(5)
    for conn in accepted:
        conn.close()
    listener.close()


def shopify_headers(body, topic, webhook_id):
    digest = hmac.new(SHOPIFY_SECRET.encode(), body, hashlib.sha256).digest()
    return {
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": base64.b64encode(digest).decode(),
        "X-Shopify-Shop-Domain": SHOPIFY_DOMAIN,
        "X-Shopify-API-Version": "2026-10",
        "X-Shopify-Webhook-Id": webhook_id,
        "X-Shopify-Event-Id": f"ev-{webhook_id}",
        "X-Shopify-Triggered-At": "2026-12-02T10:00:00.000Z",
        "Content-Type": "application/json",
    }


def test_a_shopify_api_that_never_answers_does_not_hold_up_webhooks_or_healthz(
    tmp_path, shared_fixtures, silent_platform
):
    api, connections = silent_platform
    config = tmp_path / "aftercare.toml"
    config.write_text(
        f'[[shops]]\nid = "shop"\nplatform = "shopify"\nwebhook_secret = "{SHOPIFY_SECRET}"\n'
        f'shop_domain = "{SHOPIFY_DOMAIN}"\naccess_token = "shpat_unused"\nadmin_url = "{api}"\n'
        f"refetch_partial_orders = true\n"  # it used to mean a platform call inside the receiver
    )
    app = App(load_config(config))
    app.store.upgrade()
    fulfillment = json.loads((shared_fixtures / "shopify" / "rest_fulfillment_with_tracking.json").read_text())
    body = json.dumps(fulfillment["fulfillment"]).encode()
    try:
        with running(app) as url, httpx.Client(base_url=url, timeout=30) as client:
            for n in range(5):
                answer, took = timed(
                    lambda n=n: client.post(
                        "/webhooks/shop", content=body, headers=shopify_headers(body, "fulfillments/create", f"w{n}")
                    )
                )
                assert answer.status_code == 200, answer.text
                assert took < 2.0, f"a webhook took {took:.1f}s while the platform did not answer"
            health, took = timed(lambda: client.get("/healthz"))
            assert health.status_code == 200 and took < 1.5, (health.text, took)
        assert connections == []  # the receiver never called the platform
        [stored] = app.store.list_events()
        assert stored.state == "pending" and stored.event.order.partial  # the worker re-reads it before the hooks
    finally:
        app.close()
