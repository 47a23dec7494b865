"""/metrics: a real `aftercare serve` and its worker child count into one scrape (multiprocess
mode); the store's readings come with it; labels stay bounded; and in one process (the test
client) the same page serves the counters of that process."""

from datetime import UTC, datetime

import httpx
import pytest
import responses
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from starlette.testclient import TestClient

from aftercare import metrics
from aftercare.asgi import create_asgi_app
from aftercare.clock import ManualClock
from aftercare.dispatch import Dispatcher, execute_due
from aftercare.platform import MemoryShopState, ShopInfo
from aftercare.queue import Enqueuer
from aftercare.testing import make_event, make_order

from ..adapters.shopify.shopify_support import GRAPHQL_URL, NOW, SECRET, SHOP_DOMAIN
from ..mail.conftest import mail_app, smtp_server  # noqa: F401  (fixtures)
from .test_processes import (  # noqa: F401
    deployment,
    executions,
    first_line,
    post_each_twice,
    producer,
    start,
    stop,
    wait_for,
)


def samples(text):
    """{(sample name, frozenset of labels): value} of a scrape."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(scrape, name, **labels):
    return scrape.get((name, frozenset(labels.items())), 0.0)


@pytest.mark.parametrize("deployment", ["sqlite"], indirect=True)  # the processes, not the stores, are the point
def test_a_scrape_of_serve_counts_the_receiver_and_its_worker_child(deployment):  # noqa: F811
    config, log = deployment
    server = start(config, log, "serve", "--port", "0", "--sweep-interval", "0.2")
    try:
        url = first_line(server, "aftercare serve: listening on").rsplit(" ", 1)[1]
        app, _ = producer(config)
        adapter = app.adapter("test")
        with httpx.Client(base_url=url, timeout=10) as client:
            # a platform's retry of each: answered 200 again, dispatched once
            post_each_twice(client, adapter, [make_event("order_paid", make_order(f"m{n}"), key=f"paid-{n}")
                                              for n in range(3)])  # fmt: skip
            tampered = client.post("/webhooks/test", content=b"{}", headers={"x-aftercare-hmac-sha256": "AAAA"})
            assert tampered.status_code == 401
            assert client.post("/webhooks/someone-else", content=b"{}").status_code == 404
            wait_for(lambda: sum(executions(log).values()) == 6, what="6 executions")

            def scrape():
                answer = client.get("/metrics")
                assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
                return samples(answer.text), answer.text

            # The worker counts an action right after its outcome is recorded, a moment after the channel ran.
            done = {"shop": "test", "plugin": "recorder", "kind": "add_order_note", "state": "done"}
            wait_for(lambda: value(scrape()[0], "aftercare_actions_total", **done) == 6, what="6 done actions counted")
            scraped, text = scrape()
        app.close()
    finally:
        output = stop(server)
    assert "aftercare serve: stopped" in output
    assert value(scraped, "aftercare_webhooks_received_total", shop="test") == 7
    assert value(scraped, "aftercare_webhooks_answered_total", shop="test", status="200") == 6
    assert value(scraped, "aftercare_webhooks_answered_total", shop="test", status="401") == 1
    assert value(scraped, "aftercare_webhooks_answered_total", shop="(unknown)", status="404") == 1
    assert value(scraped, "aftercare_events_dispatched_total", shop="test", kind="order_paid") == 3
    assert value(scraped, "aftercare_action_latency_seconds_count", plugin="recorder") == 6
    assert value(scraped, "aftercare_action_latency_seconds_bucket", plugin="recorder", le="+Inf") == 6
    assert value(scraped, "aftercare_store_up") == 1
    assert value(scraped, "aftercare_overdue_actions") == 0 and value(scraped, "aftercare_pending_events") == 0
    assert value(scraped, "aftercare_worker_up") == 1
    assert ("aftercare_worker_heartbeat_timestamp_seconds", frozenset()) in scraped
    assert ("aftercare_queue_messages", frozenset()) in scraped
    # Bounded labels: no order id, no body, no unknown shop id.
    for word in ("m0", "m1", "paid-0", "someone-else"):
        assert word not in text


def test_metrics_in_one_process_count_what_the_test_client_sends(aftercare_app):
    """Without serve's folder the page serves this process's counters (and the readings)."""
    app = aftercare_app()
    body = make_event("order_paid", make_order("1"), key="one-process").to_json().encode()
    headers = {"x-aftercare-hmac-sha256": app.adapter("test").sign(body), "x-aftercare-topic": "orders/paid"}
    with TestClient(create_asgi_app(app, Enqueuer.for_app(app)), base_url="http://127.0.0.1") as client:
        before = samples(client.get("/metrics").text)
        assert client.post("/webhooks/test", content=body, headers=headers).status_code == 200
        after = samples(client.get("/metrics").text)
    moved = value(after, "aftercare_webhooks_answered_total", shop="test", status="200") - value(
        before, "aftercare_webhooks_answered_total", shop="test", status="200"
    )
    assert moved == 1
    assert value(after, "aftercare_store_up") == 1
    assert value(after, "aftercare_worker_up") == 0  # no worker runs here: no heartbeat


def counted_here():
    """This process's counters, as /metrics would serve them (no store readings)."""
    body, _type = metrics.exposition(metrics.Readings(None, None, None, None, None, datetime.now(UTC)))
    return samples(body.decode())


def test_platform_calls_and_throttling_waits_are_counted_by_platform_and_status():
    from aftercare.adapters.shopify import ShopifyAdapter, ShopifySettings

    sleeps = []
    adapter = ShopifyAdapter(
        ShopInfo(id="acme", webhook_secret=SecretStr(SECRET)),
        ShopifySettings(shop_domain=SHOP_DOMAIN, access_token=SecretStr("shpat_test")),
        MemoryShopState(), ManualClock(NOW).now, sleep=sleeps.append,
    )  # fmt: skip
    adapter.client.max_wait = 5.0  # the 2 s wait is slept in the call, not handed back
    throttled = {"errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}]}
    before = counted_here()
    with responses.RequestsMock() as mock:
        mock.post(GRAPHQL_URL, status=429, json=throttled, headers={"Retry-After": "2"})
        mock.post(GRAPHQL_URL, status=200, json={"data": {"codeDiscountNodeByCode": None}})
        adapter.client.execute("discount_by_code.graphql", {"code": "X"})
    after = counted_here()

    def moved(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert sleeps == [2.0]
    assert moved("aftercare_platform_calls_total", platform="shopify", status="429") == 1
    assert moved("aftercare_platform_calls_total", platform="shopify", status="200") == 1
    assert moved("aftercare_platform_throttle_waits_total", platform="shopify") == 1
    # A difference of two float sums: exact only when the counter started at a round number.
    assert moved("aftercare_platform_throttle_wait_seconds_total", platform="shopify") == pytest.approx(2.0)
    assert value(after, "aftercare_store_up") == 0  # no readings were given: said, not hidden


def test_smtp_results_are_counted_by_shop_and_result(mail_app, smtp_server):  # noqa: F811
    _controller, handler = smtp_server
    handler.refuse["buyer2@example.com"] = "550 5.1.1 no such user"
    app = mail_app()
    before = counted_here()
    for n in (1, 2):
        Dispatcher(app).dispatch(make_event("order_paid", make_order(str(n), email=f"buyer{n}@example.com")))
    execute_due(app)
    after = counted_here()
    assert len(handler.received) == 1
    for result, count in (("sent", 1), ("refused", 1), ("deferred", 0)):
        moved = value(after, "aftercare_smtp_results_total", shop="test", result=result)
        assert moved - value(before, "aftercare_smtp_results_total", shop="test", result=result) == count, result
    assert (
        "buyer" not in metrics.exposition(metrics.Readings(None, None, None, None, None, datetime.now(UTC)))[0].decode()
    )


def test_serve_makes_a_fresh_folder_and_removes_those_of_serves_that_died(tmp_path, monkeypatch):
    import os
    import subprocess
    import sys

    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    monkeypatch.delenv(metrics.MULTIPROC_ENV, raising=False)
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = tmp_path / f"{metrics.FOLDER_PREFIX}{finished.stdout.strip()}-abc"
    alive = tmp_path / f"{metrics.FOLDER_PREFIX}{os.getpid()}-def"
    for folder in (dead, alive):
        folder.mkdir()
        (folder / "counter_1.db").write_bytes(b"x")
    folder = metrics.share_with_children()
    try:
        assert folder and os.environ[metrics.MULTIPROC_ENV] == folder and os.listdir(folder) == []
        assert not dead.exists() and alive.exists()  # a live serve's counts stay
    finally:
        metrics.remove_folder(folder)
    assert not os.path.exists(folder) and metrics.MULTIPROC_ENV not in os.environ
