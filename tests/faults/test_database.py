"""PostgreSQL and Redis faults on one serve for the module, whose DSN and Redis URL go through
:class:`~aftercare.testing.TcpProxy`: PostgreSQL unreachable, its connections dropped every
second, a table held locked; Redis unreachable then back; and a second worker process beside
serve's. Each scenario is judged on its own orders."""

import threading
import time

import httpx
import pytest
import sqlalchemy as sa

from aftercare.testing import TcpProxy

from ..runtime.test_processes import REDIS
from .conftest import postgres_address, postgres_stack, refused_answers, wait_for

pytestmark = [pytest.mark.faults, pytest.mark.xdist_group("faults")]  # one test process runs them in turn


@pytest.fixture(scope="module")
def proxies():
    redis_url = sa.make_url(REDIS)
    with TcpProxy(postgres_address()) as pg, TcpProxy((redis_url.host, redis_url.port or 6379)) as redis:
        yield pg, redis


@pytest.fixture(scope="module")
def stack(tmp_path_factory, proxies):
    pg, redis = proxies
    made = postgres_stack(tmp_path_factory.mktemp("postgres"), through=pg, redis=redis)
    try:
        made.serve()
        yield made
    finally:
        made.close()


@pytest.fixture
def pg(stack, proxies):
    yield proxies[0]
    proxies[0].resume()


@pytest.fixture
def redis(stack, proxies):
    yield proxies[1]
    proxies[1].resume()


def test_postgresql_unreachable_for_a_while_loses_and_repeats_nothing(stack, pg):
    before = stack.place_orders(3)
    pg.stop_accepting()
    during = stack.place_orders(4)
    wait_for(lambda: len(refused_answers(stack, during)) >= 4, what="deliveries refused while the store is down")
    pg.resume()
    stack.done(before + during, timeout=30, retries_due=True)
    stack.assert_promises(before + during)


def cutting(proxy, every=1.0):
    """A thread that drops every connection through ``proxy`` each ``every`` s until stopped."""
    stop, cut = threading.Event(), []

    def run():
        while not stop.wait(every):
            cut.append(proxy.cut())

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return stop, thread, cut


def test_postgresql_dropping_connections_every_second_repeats_nothing(stack, pg):
    stop, thread, cut = cutting(pg)
    try:
        orders = []
        for _ in range(3):  # orders arriving through 3 s of drops
            orders += stack.place_orders(4)
            time.sleep(1.0)
    finally:
        stop.set()
        thread.join()
    assert sum(cut) > 0, "no connection was open to cut: the scenario proved nothing"
    stack.done(orders, timeout=30, retries_due=True)
    stack.assert_promises(orders)


def locked(stack, table="events", seconds=2.0):
    """Hold ``table`` locked (ACCESS EXCLUSIVE) for ``seconds`` from a connection of the test's own."""
    ready, thread = threading.Event(), None

    def hold():
        with stack.engine.begin() as conn:
            conn.execute(sa.text(f"LOCK TABLE {stack.schema}.{table} IN ACCESS EXCLUSIVE MODE"))
            ready.set()
            time.sleep(seconds)

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    ready.wait(10)
    return thread


def test_a_table_lock_delays_but_loses_and_repeats_nothing(stack):
    holder = locked(stack)
    orders = stack.place_orders(4)
    holder.join()
    stack.done(orders, timeout=30, retries_due=True)
    stack.assert_promises(orders)


def test_healthz_answers_within_a_second_while_a_table_is_locked(stack):
    holder = locked(stack)
    try:
        stack.place_orders(2)
        started = time.monotonic()
        answer = httpx.get(f"{stack.url}/healthz", timeout=5)
        took = time.monotonic() - started
        # 503 if its probe meets the lock, 200 if not: either way an answer (its checks wait 0.8 s;
        # the rest is a loaded machine's round trip), not a loop frozen for the lock's 2 s.
        assert took < 1.5 and answer.status_code in (200, 503), f"/healthz took {took:.1f}s: {answer.status_code}"
    finally:
        holder.join()


def test_redis_unreachable_then_back_loses_and_repeats_nothing(stack, redis):
    redis.stop_accepting()
    during = stack.place_orders(4)
    wait_for(lambda: stack.shop.flush(0.1), what="the deliveries answered while Redis is down")
    redis.resume()
    after = stack.place_orders(2)
    stack.done(during + after, timeout=30, retries_due=True)
    stack.assert_promises(during + after)
    assert "could not enqueue" in stack.processes.text(), "Redis was never missed: the scenario proved nothing"


def test_two_workers_on_postgresql_and_redis_share_the_work_and_repeat_nothing(stack):
    second = stack.worker()
    try:
        orders = stack.place_orders(12)
        stack.done(orders, timeout=30)
        stack.assert_promises(orders)
    finally:
        stack.processes.stop(second)
    logs = [log.read_text() for process, log in stack.processes.started if process in (stack.server, second)]
    assert all("outcome=done" in text for text in logs), "both workers should have taken a share"
