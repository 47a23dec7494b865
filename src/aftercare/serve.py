"""Running processes: ``aftercare serve`` (receiver + its worker) and ``aftercare worker``.

Shutdown order matters for rule 1: stop accepting webhooks, commit what was
accepted, then let the consumer finish the tasks in flight. SIGTERM does all
of that; anything still waiting stays in the store and the queue for the
next start.
"""

from __future__ import annotations

import errno
import fcntl
import gc
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import uvicorn

from aftercare import logs, metrics
from aftercare.app import App
from aftercare.asgi import create_asgi_app
from aftercare.limits import HeaderLimitedHttpTools
from aftercare.queue import Enqueuer
from aftercare.store import wall_clock
from aftercare.worker import Worker

log = logging.getLogger("aftercare.serve")

WORKER_STOP_TIMEOUT = 60
#: Waits before restarting a worker child that exited: 1 s, 2 s, 4 s ... at most 30 s; back to
#: 1 s once a child has run for WORKER_HEALTHY_AFTER.
WORKER_RESTART_FIRST = 1.0
WORKER_RESTART_MAX = 30.0
WORKER_HEALTHY_AFTER = 60.0

#: Allocations between two collections of the youngest generation (CPython's default is 700).
YOUNG_GC_THRESHOLD = 20_000


def configure_logging(app: App, level: str = "info") -> None:
    logs.configure(app.config.log_format, level)


def serve(
    app: App,
    *,
    config_path: str,
    host: str | None = None,
    port: int | None = None,
    workers: int | None = None,
    sweep_interval: float = 5.0,
    log_level: str = "info",
    with_worker: bool = True,
    blocked_plugins: Sequence[str] = (),
    receivers: int | None = None,
    parent: int | None = None,
) -> None:
    """The receiver in this process, the worker in a child process it supervises
    (``with_worker=False``: the receiver only, beside ``aftercare worker`` processes).
    ``blocked_plugins`` (``-p no:NAME``) are blocked in the children too.

    One command still runs everything, but the worker gets its own
    interpreter: sharing one GIL with the receiver's event loop halved the
    webhooks a second the receiver could acknowledge (docs/benchmarks.md). It
    runs ``[server] worker_nice`` lower in the scheduler's eyes, so when both
    want the CPU the receiver's acknowledgements come first and the worker
    catches up once the burst is over (nothing waits for it but mail).

    ``receivers`` (``[server] receivers``) above 1: this process and
    ``receivers - 1`` receiver children it supervises each listen on the port
    with ``SO_REUSEPORT``, and the kernel spreads the connections over them (one
    listening socket shared by all went nearly all to one process); one
    receiver process is bound by one core. ``parent``: this is such a child,
    of that serve process.
    """
    configure_logging(app, log_level)
    host = host or app.config.server.host
    port = app.config.server.port if port is None else port
    receivers = receivers or app.config.server.receivers
    # Before anything is counted: this process and its children count into one folder
    # (a receiver child is given its parent's, in the environment).
    metrics_folder = metrics.share_with_children() if parent is None else None

    # The receiver only enqueues: a producer, not a Worker (that one runs in the child).
    receiver = create_asgi_app(app, Enqueuer.for_app(app), expects_worker=with_worker)
    server = uvicorn.Server(server_config(app, receiver, host, port))
    # uvicorn binds the socket itself when it is the only receiver; its port is read once it has started.
    listener = listening_socket(host, port, first=parent is None) if parent is not None or receivers > 1 else None
    children: list[ChildSupervisor] = []
    if listener is not None and parent is None:
        port = listener.getsockname()[1]  # --port 0: the one the kernel picked, for the children too
        command = _receiver_command(config_path, host, port, log_level, blocked_plugins, with_worker=with_worker)
        children += [ChildSupervisor(f"receiver {n}", command) for n in range(2, receivers + 1)]
    if with_worker and parent is None:
        worker_command = _worker_command(config_path, workers or app.config.server.workers, sweep_interval,
                                         log_level, blocked_plugins, nice=app.config.server.worker_nice)  # fmt: skip
        children.append(ChildSupervisor("the worker", worker_command))
    for child in children:
        child.start()
    if parent is not None:
        _stop_when_orphaned(parent, until_stopped=True)
    else:
        threading.Thread(target=_announce, args=(server, host), name="aftercare-announce", daemon=True).start()
    # uvicorn handles SIGTERM itself, then raises it again once stopped, for whatever handler was
    # there before; this one lets the shutdown below (stop the children, close the store) happen.
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    tune_gc_for_throughput()
    try:
        server.run(sockets=None if listener is None else [listener])
    finally:
        for child in children:  # the receivers first (they commit what they accepted), the worker last
            child.stop()
        app.close()
        if metrics_folder is not None:
            metrics.remove_folder(metrics_folder)
        if parent is None:
            print("aftercare serve: stopped", flush=True)


class ListenError(Exception):
    """The port cannot be listened on (taken, not this machine's address): the message says which."""


def listening_socket(host: str, port: int, *, first: bool) -> socket.socket:
    """A listening TCP socket as uvicorn would bind it, with ``SO_REUSEPORT``: one of several
    receiver processes' on the port (the kernel lets only the same user's processes join it).
    ``first``: serve's own, which also takes the port's lock file, so that a second
    ``aftercare serve`` with receivers of its own is refused rather than let into the group.

    Made with ``IPPROTO_TCP`` named: asyncio sets ``TCP_NODELAY`` on accepted
    connections only when the listening socket's protocol says TCP, and one
    made with protocol 0 left Nagle's algorithm on: every answer waited for
    the client's delayed ACK, 40 ms, and a bare endpoint answered a tenth of
    the requests a second (docs/benchmarks.md).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        if first:
            _lock_port(host, sock.getsockname()[1])
    except OSError as exc:
        sock.close()
        raise ListenError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


def _lock_port(host: str, port: int) -> None:
    """Hold the port's lock file for this process's life; OSError if another serve holds it."""
    path = Path(tempfile.gettempdir()) / f"aftercare-serve-{host.replace(':', '_')}-{port}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise OSError(errno.EADDRINUSE, "Address already in use by another aftercare serve") from None
    # Kept open (not inherited by the children): the lock goes when this process does.


def server_config(app: App, receiver: Any, host: str, port: int) -> uvicorn.Config:
    return uvicorn.Config(
        # httptools with a cap on request heads (431): uvicorn's own has none (aftercare.limits).
        receiver, host=host, port=port, http=HeaderLimitedHttpTools, log_config=None, log_level="warning",
        access_log=False, timeout_graceful_shutdown=10, limit_concurrency=app.config.server.max_connections,
        timeout_keep_alive=app.config.server.keep_alive_seconds,
        # X-Forwarded-For only from [server] trusted_proxies (uvicorn trusts 127.0.0.1 by default).
        proxy_headers=bool(app.config.server.trusted_proxies),
        forwarded_allow_ips=list(app.config.server.trusted_proxies),
    )  # fmt: skip


def _announce(server: uvicorn.Server, host: str) -> None:
    """Say where serve listens, port included (``--port 0`` picks one), once it does."""
    while not server.started:
        if server.should_exit:
            return
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    print(f"aftercare serve: listening on http://{host}:{port}", flush=True)


def _worker_command(
    config_path: str,
    workers: int,
    sweep_interval: float,
    log_level: str = "info",
    blocked: Sequence[str] = (),
    *,
    nice: int = 0,
) -> list[str]:
    return [
        sys.executable, "-m", "aftercare", "--config", config_path, *(f"-pno:{name}" for name in blocked), "worker",
        "--workers", str(workers), "--sweep-interval", str(sweep_interval), "--parent", str(os.getpid()),
        "--log-level", log_level, *(["--nice", str(nice)] if nice else []),
    ]  # fmt: skip


def _receiver_command(
    config_path: str, host: str, port: int, log_level: str, blocked: Sequence[str], *, with_worker: bool
) -> list[str]:
    """A receiver child: serve on the same port; its worker's health is reported as the parent's."""
    return [
        sys.executable, "-m", "aftercare", "--config", config_path, *(f"-pno:{name}" for name in blocked), "serve",
        "--host", host, "--port", str(port), "--parent", str(os.getpid()), "--log-level", log_level,
        *([] if with_worker else ["--no-worker"]),
    ]  # fmt: skip


class ChildSupervisor:
    """One of serve's children (its worker, a receiver), kept running: restarted with backoff
    whenever it exits.

    A child killed (``kill -9``, the OOM killer) or exiting on an error is
    reaped at once (no zombie), logged, and started again after 1 s, 2 s, 4 s
    ... at most ``WORKER_RESTART_MAX``; the wait starts again from 1 s once a
    child has run ``WORKER_HEALTHY_AFTER`` seconds. Nothing is lost meanwhile:
    a new worker's sweep finds the pending events and due actions, and takes
    back the claims of the killed one when their lease runs out; a receiver
    answers nothing it did not commit, and the platform retries what it did not answer.
    """

    def __init__(
        self,
        name: str,
        command: list[str],
        *,
        first_delay: float = WORKER_RESTART_FIRST,
        max_delay: float = WORKER_RESTART_MAX,
        healthy_after: float = WORKER_HEALTHY_AFTER,
    ) -> None:
        self.name, self.command = name, command
        self.first_delay, self.max_delay, self.healthy_after = first_delay, max_delay, healthy_after
        self.restarts = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._child: subprocess.Popen[bytes] | None = None
        self._watcher: threading.Thread | None = None

    @property
    def pid(self) -> int | None:
        with self._lock:
            return self._child.pid if self._child else None

    def start(self) -> None:
        with self._lock:
            self._child = self._popen()
        self._watcher = threading.Thread(target=self._watch, name=f"aftercare-supervisor-{self.name}", daemon=True)
        self._watcher.start()

    def _watch(self) -> None:
        delay = self.first_delay
        while not self._stopping.is_set():
            with self._lock:
                child = self._child
            assert child is not None
            started = time.monotonic()
            code = child.wait()  # reaps it: a killed child never lingers as a zombie
            if self._stopping.is_set():
                return
            ran = time.monotonic() - started
            if ran >= self.healthy_after:
                delay = self.first_delay
            log.warning("%s (pid %d) %s after %.0fs; restarting it in %.0fs",
                        self.name, child.pid, _exit_description(code), ran, delay)  # fmt: skip
            if self._stopping.wait(delay):
                return
            with self._lock:
                if self._stopping.is_set():
                    return
                self._child = self._popen()
                self.restarts += 1
                log.warning("%s restarted (pid %d)", self.name, self._child.pid)
            delay = min(self.max_delay, delay * 2)

    def _popen(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(self.command)

    def stop(self) -> None:
        """Stop restarting, then stop the child (SIGTERM lets its work in flight finish)."""
        self._stopping.set()
        with self._lock:
            child = self._child
        if child is not None:
            _stop_child(self.name, child)
        if self._watcher is not None:
            self._watcher.join(timeout=5)


def _exit_description(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with status {code}"


def _stop_child(name: str, child: subprocess.Popen[bytes]) -> None:
    """SIGTERM lets the work in flight finish; a child that hangs is killed after a while."""
    if child.poll() is None:
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(timeout=WORKER_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop within %ss; killing it", name, WORKER_STOP_TIMEOUT)
            child.kill()
            child.wait()


def run_worker(
    app: App,
    *,
    workers: int | None = None,
    sweep_interval: float = 5.0,
    parent: int | None = None,
    log_level: str = "info",
    nice: int = 0,
) -> None:
    """``nice``: lower this process's scheduling priority by that much first (serve's worker child)."""
    configure_logging(app, log_level)
    if nice:
        os.nice(nice)
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


def check_worker_here(app: App) -> tuple[bool, str]:
    """A worker's health check (``aftercare worker --check``): did a worker on this host send a
    heartbeat within ``[server] heartbeat_limit_seconds``? In a container that is its own."""
    host = socket.gethostname()
    try:
        beat = app.store.worker_beat(host).beat_at
    except Exception as exc:  # the class only, as /healthz: the text may name the database host
        return False, f"worker: error: {type(exc).__name__}"
    if beat is None:
        return False, f"worker: no heartbeat from {host}"
    age = (wall_clock() - beat).total_seconds()
    if age > app.config.server.heartbeat_limit_seconds:
        return False, f"worker: last heartbeat from {host} {age:.0f}s ago"
    return True, f"worker: ok (heartbeat from {host} {age:.0f}s ago)"


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


def _stop_when_orphaned(parent: int, *, until_stopped: bool = False) -> None:
    """A child started by ``serve`` stops (gracefully) if serve dies without stopping it.

    ``until_stopped`` (a receiver child): the SIGTERM is sent again every few seconds, since
    one that arrives before uvicorn has installed its handlers is swallowed by ours."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        log.warning("serve (pid %d) is gone; stopping", parent)
        os.kill(os.getpid(), signal.SIGTERM)
        while until_stopped:
            time.sleep(3)
            os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="aftercare-parent-watch", daemon=True).start()
