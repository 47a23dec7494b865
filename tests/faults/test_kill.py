"""kill -9 mid-load: of serve (started again, as systemd would), and of serve's worker child
(serve restarts it within seconds). One SQLite stack for the module; each scenario is judged
on its own orders."""

import os
import signal
import threading
import time

import pytest

from .conftest import answered, refused_answers, sqlite_stack, wait_for, worker_children

pytestmark = [pytest.mark.faults, pytest.mark.xdist_group("faults")]  # one test process runs them in turn

WORKER_THREADS = 2  # the stack's [server] workers


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    made = sqlite_stack(tmp_path_factory.mktemp("kill"))
    try:
        made.serve()
        yield made
    finally:
        made.close()


def placing(stack, count):
    """Place ``count`` orders from a thread, a few at a time (load while the test kills)."""
    orders: list[int] = []

    def run():
        for _ in range(count // 2):
            orders.extend(stack.place_orders(2))
            stack.shop.flush(0.2)
            time.sleep(0.1)  # paced: on a fast machine the load would be over before the kill

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return orders, thread


def test_serve_killed_mid_load_and_started_again_loses_and_repeats_nothing(stack):
    orders, thread = placing(stack, 16)
    wait_for(lambda: len(answered(stack, orders)) >= 4, what="some deliveries acknowledged")
    os.kill(stack.server.pid, signal.SIGKILL)
    stack.server.wait(5)
    thread.join()
    assert refused_answers(stack, orders), "every delivery was answered: serve died too late to prove anything"
    stack.serve()  # the same port: the platform's retries reach the new serve
    stack.done(orders, timeout=30, retries_due=True)
    stack.assert_promises(orders, killed_mid_send=WORKER_THREADS)


def test_the_worker_child_killed_mid_load_is_restarted_within_seconds_and_repeats_nothing(stack):
    [child] = wait_for(lambda: worker_children(stack.server.pid), what="serve's worker child")
    orders, thread = placing(stack, 16)
    wait_for(lambda: sum(a.state == "done" for a in stack.coupons_of(orders)) >= 2, what="some coupons made")
    os.kill(child, signal.SIGKILL)
    restarted = wait_for(lambda: [pid for pid in worker_children(stack.server.pid) if pid != child], timeout=5,
                         what="a new worker child within 5 s")  # fmt: skip
    thread.join()
    stack.done(orders, timeout=30, retries_due=True)
    assert worker_children(stack.server.pid) == restarted
    stack.assert_promises(orders, killed_mid_send=WORKER_THREADS)
    log = stack.processes.started[-1][1].read_text()
    assert "was killed by SIGKILL" in log, log[-2000:]
