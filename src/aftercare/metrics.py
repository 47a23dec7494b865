"""Prometheus metrics: what the receiver and the worker count, and the text ``/metrics`` serves.

Counters and the latency histogram are counted where things happen (one
line each in the receiver, the worker, dispatch and the mail channel); the
backlog, overdue actions and the heartbeat are read from the store when
``/metrics`` is scraped (:func:`exposition`), bounded in time by the
receiver like ``/healthz``.

``aftercare serve`` runs its worker in a child process, so the counts of two
processes make one scrape: serve sets ``PROMETHEUS_MULTIPROC_DIR`` to a fresh
folder of its own before anything is counted (:func:`share_with_children`),
the worker child inherits it, and each process writes its counts to files
there that the scrape adds up (prometheus-client's multiprocess mode).

Labels stay bounded: shop ids from the config, plugin names, action kinds,
event kinds, HTTP status codes and a few outcome words; never an order id,
an address or a message.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from aftercare import platform

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: serve's folders: ``aftercare-metrics-PID-random`` in the temporary directory.
FOLDER_PREFIX = "aftercare-metrics-"
#: From due to done: a mail sent within the second, one that waited out a throttled
#: platform or a retry (minutes, hours), one a stopped worker left overdue (a day).
LATENCY_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 6 * 3600, 24 * 3600)
#: The shop label of a webhook to a shop the config does not name: an unknown id is
#: whatever a stranger typed, so it is never a label of its own.
UNKNOWN_SHOP = "(unknown)"

_lock = threading.Lock()
_families: _Families | None = None


class _Families:
    """The metric objects, made on first use: prometheus-client picks single- or
    multi-process storage when a metric is made, so not before serve set the folder."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram, values

        multiprocess = bool(os.environ.get(MULTIPROC_ENV))
        if multiprocess and not getattr(values.ValueClass, "_multiprocess", False):
            values.ValueClass = values.get_value_class()  # imported before serve set the folder
        self.multiprocess = multiprocess
        # One process: our own registry (no process collectors of the default one, no clashes
        # in tests that build several apps). Several: the scrape reads the files instead.
        self.registry = None if multiprocess else CollectorRegistry()
        r = {"registry": self.registry}
        self.webhooks_received = Counter(
            "aftercare_webhooks_received", "Webhook deliveries received, by shop.", ["shop"], **r
        )
        self.webhooks_answered = Counter(
            "aftercare_webhooks_answered", "Webhook deliveries answered, by shop and HTTP status.",
            ["shop", "status"], **r,
        )  # fmt: skip
        self.events_dispatched = Counter(
            "aftercare_events_dispatched", "Events whose hooks ran, by shop and event kind.", ["shop", "kind"], **r
        )
        self.hook_failures = Counter(
            "aftercare_hook_failures", "Hooks that raised, by shop and plugin.", ["shop", "plugin"], **r
        )
        self.actions = Counter(
            "aftercare_actions",
            "Actions ended (done, dropped, failed) or put back for later (rescheduled), "
            "by shop, plugin, action kind and state.",
            ["shop", "plugin", "kind", "state"], **r,
        )  # fmt: skip
        self.action_latency = Histogram(
            "aftercare_action_latency_seconds", "From an action's due time to its being done, by plugin.",
            ["plugin"], buckets=LATENCY_BUCKETS, **r,
        )  # fmt: skip
        self.platform_calls = Counter(
            "aftercare_platform_calls", "Calls to a platform's API, by platform and HTTP status "
            "(or 'network' when no answer came).", ["platform", "status"], **r,
        )  # fmt: skip
        self.throttle_waits = Counter(
            "aftercare_platform_throttle_waits", "Waits for a platform's rate limit, by platform.", ["platform"], **r
        )
        self.throttle_seconds = Counter(
            "aftercare_platform_throttle_wait_seconds", "Seconds waited for a platform's rate limit, by platform.",
            ["platform"], **r,
        )  # fmt: skip
        self.smtp_results = Counter(
            "aftercare_smtp_results", "Messages handed to an SMTP relay, by shop and result (sent, unconfirmed, "
            "refused: the recipient was refused, deferred: try again later, rejected: a permanent refusal).",
            ["shop", "result"], **r,
        )  # fmt: skip


def _metrics() -> _Families:
    global _families
    if _families is None:
        with _lock:
            if _families is None:
                _families = _Families()
    return _families


# -- serve's folder for several processes --------------------------------------
def share_with_children() -> str | None:
    """Make a fresh folder for the counts of this process and the children it starts, and
    name it in the environment they inherit. None (and nothing done) when the environment
    names one already: the operator's folder, which they clean before a start."""
    if os.environ.get(MULTIPROC_ENV):
        return None
    _remove_folders_of_dead_serves()
    folder = tempfile.mkdtemp(prefix=f"{FOLDER_PREFIX}{os.getpid()}-")
    os.environ[MULTIPROC_ENV] = folder
    return folder


def _remove_folders_of_dead_serves() -> None:
    """A serve that was killed (SIGKILL, a crash) could not remove its folder: the next one does."""
    for folder in Path(tempfile.gettempdir()).glob(f"{FOLDER_PREFIX}*-*"):
        pid = folder.name.removeprefix(FOLDER_PREFIX).split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def remove_folder(folder: str | None) -> None:
    if folder:
        shutil.rmtree(folder, ignore_errors=True)
        if os.environ.get(MULTIPROC_ENV) == folder:
            del os.environ[MULTIPROC_ENV]


# -- what is counted ---------------------------------------------------------------
def webhook_received(shop_id: str) -> None:
    _metrics().webhooks_received.labels(shop_id).inc()


def webhook_answered(shop_id: str, status: int) -> None:
    _metrics().webhooks_answered.labels(shop_id, str(status)).inc()


def event_dispatched(shop_id: str, kind: str, failed_plugins: list[str]) -> None:
    m = _metrics()
    m.events_dispatched.labels(shop_id, kind).inc()
    for plugin in failed_plugins:
        m.hook_failures.labels(shop_id, plugin).inc()


def action_ended(shop_id: str, plugin: str, kind: str, state: str, late_seconds: float | None) -> None:
    """``state``: done, dropped, failed, or due (put back: counted as rescheduled). ``late_seconds``:
    from its due time to now, for a done action."""
    m = _metrics()
    m.actions.labels(shop_id, plugin, kind, "rescheduled" if state == "due" else state).inc()
    if state == "done" and late_seconds is not None:
        m.action_latency.labels(plugin).observe(max(0.0, late_seconds))


def smtp_result(shop_id: str, result: str) -> None:
    _metrics().smtp_results.labels(shop_id, result).inc()


def _platform_call(platform_name: str, status: int | None) -> None:
    _metrics().platform_calls.labels(platform_name, "network" if status is None else str(status)).inc()


def _platform_wait(platform_name: str, seconds: float) -> None:
    m = _metrics()
    m.throttle_waits.labels(platform_name).inc()
    m.throttle_seconds.labels(platform_name).inc(max(0.0, seconds))


# Adapters report their calls through aftercare.platform (the only core module they import).
platform.calls_listener = platform.CallsListener(call=_platform_call, wait=_platform_wait)


# -- the scrape ----------------------------------------------------------------------
@dataclass(frozen=True)
class Readings:
    """What a scrape read from the store and the queue; None where the read failed or timed out."""

    backlog: Mapping[str, int] | None
    oldest_waiting: datetime | None
    beat_at: datetime | None
    worker_ok: bool | None
    queue_messages: int | None
    now: datetime


def exposition(readings: Readings) -> tuple[bytes, str]:
    """The body and content type of ``/metrics``: every process's counters, then the readings."""
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess

    m = _metrics()
    if m.multiprocess:
        counted = CollectorRegistry()
        multiprocess.MultiProcessCollector(counted)
    else:
        assert m.registry is not None
        counted = m.registry
    read = CollectorRegistry()
    read.register(_ReadingsCollector(readings))
    return generate_latest(counted) + generate_latest(read), CONTENT_TYPE_LATEST


class _ReadingsCollector:
    def __init__(self, readings: Readings) -> None:
        self.readings = readings

    def collect(self) -> Any:
        from prometheus_client.core import GaugeMetricFamily

        r = self.readings
        yield GaugeMetricFamily(
            "aftercare_store_up", "1 if the store answered this scrape's reads in time, else 0.",
            value=0 if r.backlog is None else 1,
        )  # fmt: skip
        if r.backlog is not None:
            yield GaugeMetricFamily(
                "aftercare_pending_events", "Events stored and still waiting for dispatch after 30 s.",
                value=r.backlog["pending_events"],
            )  # fmt: skip
            yield GaugeMetricFamily(
                "aftercare_overdue_actions", "Actions due for more than 30 s and not done yet.",
                value=r.backlog["overdue_actions"],
            )  # fmt: skip
            age = (r.now - r.oldest_waiting).total_seconds() if r.oldest_waiting else 0.0
            yield GaugeMetricFamily(
                "aftercare_oldest_waiting_seconds", "How long the oldest pending event or overdue action has waited.",
                value=max(0.0, age),
            )  # fmt: skip
        if r.beat_at is not None:
            yield GaugeMetricFamily(
                "aftercare_worker_heartbeat_timestamp_seconds", "When some worker last said it was alive (Unix time).",
                value=r.beat_at.timestamp(),
            )  # fmt: skip
        if r.worker_ok is not None:
            yield GaugeMetricFamily(
                "aftercare_worker_up", "1 if a worker is alive and getting work done (as /healthz says), else 0.",
                value=1 if r.worker_ok else 0,
            )  # fmt: skip
        if r.queue_messages is not None:
            yield GaugeMetricFamily(
                "aftercare_queue_messages", "Messages waiting in the queue (Huey).", value=r.queue_messages
            )
