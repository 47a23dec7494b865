"""Running processes: ``aftercare serve`` (receiver + embedded worker) and ``aftercare worker``.

Shutdown order matters for rule 1: stop accepting webhooks, commit what was
accepted, then let the consumer finish the tasks in flight. SIGTERM does all
of that; anything still waiting stays in the store and the queue for the
next start.
"""

from __future__ import annotations

import logging
import socket
import sys

import uvicorn

from aftercare.app import App
from aftercare.receiver import create_receiver
from aftercare.worker import Worker

log = logging.getLogger("aftercare.serve")

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def configure_logging() -> None:
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT, stream=sys.stderr)
    # Huey logs every task at INFO; our own lines say what happened.
    logging.getLogger("huey").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)


def serve(
    app: App,
    *,
    host: str | None = None,
    port: int | None = None,
    workers: int | None = None,
    sweep_interval: float = 5.0,
) -> None:
    configure_logging()
    app.store.upgrade()
    worker = Worker(app)
    consumer = worker.queue.consumer(workers or app.config.server.workers)
    host = host or app.config.server.host
    port = app.config.server.port if port is None else port

    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound = sock.getsockname()[1]
    receiver = create_receiver(app, worker)
    server = uvicorn.Server(uvicorn.Config(receiver, log_config=None, access_log=False, timeout_graceful_shutdown=10))

    consumer.start()
    worker.start_sweeper(sweep_interval)
    print(f"aftercare serve: listening on http://{host}:{bound}", flush=True)
    try:
        server.run(sockets=[sock])
    finally:
        worker.stop_sweeper()
        consumer.stop(graceful=True)
        app.close()
        print("aftercare serve: stopped", flush=True)


def run_worker(app: App, *, workers: int | None = None, sweep_interval: float = 5.0) -> None:
    configure_logging()
    app.store.upgrade()
    worker = Worker(app)
    consumer = worker.queue.consumer(workers or app.config.server.workers)
    worker.start_sweeper(sweep_interval)
    print("aftercare worker: consuming", flush=True)
    try:
        consumer.run()  # returns after SIGTERM once the tasks in flight are done
    finally:
        worker.stop_sweeper()
        app.close()
        print("aftercare worker: stopped", flush=True)
