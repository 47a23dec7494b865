"""Running processes: ``aftercare serve`` (receiver + its worker) and ``aftercare worker``.

Shutdown order matters for rule 1: stop accepting webhooks, commit what was
accepted, then let the consumer finish the tasks in flight. SIGTERM does all
of that; anything still waiting stays in the store and the queue for the
next start.
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import subprocess
import sys
import threading
import time

import uvicorn

from aftercare.app import App
from aftercare.receiver import create_receiver
from aftercare.worker import Worker

log = logging.getLogger("aftercare.serve")

WORKER_STOP_TIMEOUT = 60

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"

#: Allocations between two collections of the youngest generation (CPython's default is 700).
YOUNG_GC_THRESHOLD = 20_000


def configure_logging() -> None:
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT, stream=sys.stderr)
    # Huey logs every task at INFO; our own lines say what happened.
    logging.getLogger("huey").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)


def serve(
    app: App,
    *,
    config_path: str,
    host: str | None = None,
    port: int | None = None,
    workers: int | None = None,
    sweep_interval: float = 5.0,
) -> None:
    """The receiver in this process, the worker in a child process it supervises.

    One command still runs everything, but the worker gets its own
    interpreter: sharing one GIL with the receiver's event loop halved the
    webhooks a second the receiver could acknowledge (docs/benchmarks.md).
    """
    configure_logging()
    app.store.upgrade()
    host = host or app.config.server.host
    port = app.config.server.port if port is None else port

    # The receiver only enqueues; its Worker object is the queue's producer side.
    receiver = create_receiver(app, Worker(app))
    # uvicorn binds the socket itself: handing it one we bound halved the webhooks a second
    # it answered (docs/benchmarks.md); so the port it got is read once it has started.
    server = uvicorn.Server(
        uvicorn.Config(
            receiver, host=host, port=port, http="httptools", log_config=None, log_level="warning", access_log=False,
            timeout_graceful_shutdown=10,
        )
    )  # fmt: skip
    child = _start_worker_process(config_path, workers or app.config.server.workers, sweep_interval)
    threading.Thread(target=_announce, args=(server, host), name="aftercare-announce", daemon=True).start()
    # uvicorn handles SIGTERM itself, then raises it again once stopped, for whatever handler was
    # there before; this one lets the shutdown below (stop the worker, close the store) happen.
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    tune_gc_for_throughput()
    try:
        server.run()
    finally:
        _stop_worker_process(child)
        app.close()
        print("aftercare serve: stopped", flush=True)


def _announce(server: uvicorn.Server, host: str) -> None:
    """Say where serve listens, port included (``--port 0`` picks one), once it does."""
    while not server.started:
        if server.should_exit:
            return
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    print(f"aftercare serve: listening on http://{host}:{port}", flush=True)


def _start_worker_process(config_path: str, workers: int, sweep_interval: float) -> subprocess.Popen[bytes]:
    command = [
        sys.executable, "-m", "aftercare", "--config", config_path, "worker",
        "--workers", str(workers), "--sweep-interval", str(sweep_interval), "--parent", str(os.getpid()),
    ]  # fmt: skip
    return subprocess.Popen(command)


def _stop_worker_process(child: subprocess.Popen[bytes]) -> None:
    """SIGTERM lets the tasks in flight finish; a worker that hangs is killed after a while."""
    if child.poll() is None:
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(timeout=WORKER_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            log.warning("the worker did not stop within %ss; killing it", WORKER_STOP_TIMEOUT)
            child.kill()
            child.wait()


def run_worker(app: App, *, workers: int | None = None, sweep_interval: float = 5.0, parent: int | None = None) -> None:
    configure_logging()
    app.store.upgrade()
    worker = Worker(app)
    consumer = worker.queue.consumer(workers or app.config.server.workers)
    worker.start_sweeper(sweep_interval)
    if parent is not None:
        _stop_when_orphaned(parent)
    tune_gc_for_throughput()
    print("aftercare worker: consuming", flush=True)
    try:
        consumer.run()  # returns after SIGTERM once the tasks in flight are done
    finally:
        worker.stop_sweeper()
        app.close()
        print("aftercare worker: stopped", flush=True)


def tune_gc_for_throughput() -> None:
    """Keep the cyclic garbage collector off the hot path of a long-running process.

    Each delivery allocates thousands of short-lived containers (its parsed
    body, its event), so with CPython's defaults the collector ran every few
    deliveries and, every few hundred, walked the whole heap that startup
    built (SQLAlchemy, pydantic, Starlette): 16% of the receiver's time and
    most of its p99 (docs/benchmarks.md). What startup built is frozen out of
    the collector's sight; young objects are collected every 20,000
    allocations instead of every 700. Cycles are still collected, later.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_GC_THRESHOLD, 20, 20)


def _stop_when_orphaned(parent: int) -> None:
    """A worker started by ``serve`` stops (gracefully) if serve dies without stopping it."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        log.warning("serve (pid %d) is gone; stopping", parent)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="aftercare-parent-watch", daemon=True).start()
