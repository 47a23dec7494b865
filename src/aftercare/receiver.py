"""The webhook receiver: ``POST /webhooks/{shop_id}``, ``GET /healthz`` and ``GET /metrics``.

DESIGN rule 1, persist before acknowledging: a delivery is answered 200 only
after its events are committed to the inbox. Committing each request on its
own would cap ingest at the disk's fsync rate, so verified deliveries wait
for one committer thread that writes whatever has gathered in one transaction
(group commit) and then wakes every waiting request. A platform retry of a
stored delivery finds its dedupe key taken and is answered 200 without
storing anything.

The event loop itself never waits for the store or a platform: it reads,
verifies and hands over. Shopify counts a webhook not answered within 5 s as
failed, so each delivery is answered within ``ANSWER_WITHIN``: 503 when the
store did not commit it by then (a table lock, a database that hangs). On
PostgreSQL the committer's waits for a lock or a statement end after
``STORE_WAIT``. A delivery answered 503 that commits after all is stored
once: the platform's retry finds it stored. Partial orders (Shopify's
fulfillment, refund and return bodies) are stored as they came; the worker
re-reads the whole order before the hooks run.

Answers: 401 bad or missing signature (nothing stored), 413 body too large,
400 malformed body or headers, 404 unknown shop, 422 a signed payload the
adapter cannot read (kept raw in ``rejected_deliveries``), 503 the store is
down or too slow (the platform retries), 200 otherwise, including topics no
hook needs.

These are the receiver's routes only: :mod:`aftercare.asgi` mounts them beside
the customer pages and the console, and enters :attr:`WebhookRoutes.lifespan`
so the committer runs while the application does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from aftercare import metrics
from aftercare.app import App
from aftercare.models import Event
from aftercare.platform import PayloadError, WebhookDelivery, WebhookRejected
from aftercare.queue import Enqueuer
from aftercare.store import DATABASE_UNAVAILABLE, describe_database_error
from aftercare.worker import worker_health

log = logging.getLogger("aftercare.receiver")

MAX_BATCH = 256
#: Seconds from handing a delivery to the committer to answering it; Shopify's deadline is 5.
ANSWER_WITHIN = 4.0
#: Seconds a batch's statements may wait for a lock or run, on PostgreSQL, before the batch fails.
STORE_WAIT = 3.0
#: Seconds /healthz waits for each of its checks, and the store's own bound on their statements:
#: under a second, so the whole answer (the HTTP round trip included) comes within one.
HEALTH_WAIT = 0.8
HEALTH_STORE_WAIT = 0.6


@dataclass
class _Job:
    delivery: WebhookDelivery
    future: asyncio.Future[Any]
    #: time.monotonic() after which its request has been answered 503: no use storing it first.
    answer_by: float


@dataclass(frozen=True)
class Stored:
    new_event_ids: list[int] = field(default_factory=list)
    events: int = 0


class Ingest:
    """Group commit in one thread: deliveries gather while a batch commits, then go in together.

    Each request awaits its own future; the committer settles a whole batch's
    futures with one call into the event loop (one wake-up a batch, not one a
    delivery). Mapping, storing and enqueueing all happen in the thread: the
    adapters' state (WooCommerce's remembered orders) is read and written in the
    batch's transaction, and nothing that waits for the store runs in the loop.
    """

    def __init__(self, app: App, enqueuer: Enqueuer) -> None:
        self.app = app
        self.enqueuer = enqueuer
        self._jobs: queue.SimpleQueue[list[_Job] | None] = queue.SimpleQueue()
        #: Deliveries of this turn of the event loop, handed to the committer together at its end.
        self._gathered: list[_Job] = []
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._run, name="aftercare-ingest", daemon=True)
        self._thread.start()

    async def stop(self) -> None:
        """Commit what was handed in, then stop."""
        if self._thread is not None:
            if self._gathered:  # read in this very turn: stored before the committer stops
                self._hand_over()
            self._jobs.put(None)
            await asyncio.to_thread(self._thread.join)
            self._thread = None

    async def submit(self, delivery: WebhookDelivery) -> Stored | PayloadError:
        """Stored (or found stored), or the adapter's reason it cannot read the payload.
        Raises if the store failed or did not commit within ``ANSWER_WITHIN``."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        # One timer rather than asyncio.wait_for, which wraps every request's wait in more futures.
        timer = loop.call_later(ANSWER_WITHIN, _settle_future, future, None, TimeoutError())
        self._gathered.append(_Job(delivery, future, time.monotonic() + ANSWER_WITHIN))
        if len(self._gathered) == 1:  # the first of this turn: hand them all over once the turn is done
            loop.call_soon(self._hand_over)
        try:
            return await future
        finally:
            timer.cancel()

    def _hand_over(self) -> None:
        """One wake-up of the committer for all the deliveries one turn of the loop read."""
        jobs, self._gathered = self._gathered, []
        self._jobs.put(jobs)

    # -- the committer thread -------------------------------------------------
    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._jobs.get()
            if first is None:
                break
            batch = list(first)
            while len(batch) < MAX_BATCH:  # whatever arrived while the last batch committed
                try:
                    jobs = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if jobs is None:
                    stopping = True
                    break
                batch.extend(jobs)
            now = time.monotonic()
            late = [job for job in batch if job.answer_by <= now]
            if late:
                log.warning("%d delivery(s) waited %.0fs for the store and were answered 503", len(late),
                            ANSWER_WITHIN)  # fmt: skip
                self._settle([(job, None, TimeoutError()) for job in late])
            batch = [job for job in batch if job.answer_by > now]
            try:
                outcomes = self._commit(batch) if batch else []
            except Exception as exc:  # a bug here must not end the thread: every later webhook would wait
                log.exception("the committer failed on %d delivery(s)", len(batch))
                outcomes = [(job, None, exc) for job in batch]
            self._settle(outcomes)

    def _commit(self, batch: list[_Job]) -> list[tuple[_Job, Any, BaseException | None]]:
        try:
            results = self._store(batch)
        except DATABASE_UNAVAILABLE as exc:  # the store, not a delivery
            log.warning("could not store %d delivery(s): %s", len(batch), describe_database_error(exc))
            return [(job, None, exc) for job in batch]
        except Exception as exc:
            if len(batch) > 1:  # one bad delivery must not fail its neighbours: retry them one by one
                return [outcome for job in batch for outcome in self._commit([job])]
            log.exception("could not store delivery %s", batch[0].delivery.delivery_id)
            return [(batch[0], None, exc)]
        new_ids = [i for r in results if isinstance(r, Stored) for i in r.new_event_ids]
        try:
            self.enqueuer.dispatch_events(new_ids)
        except Exception:  # stored is what counts; the worker's sweep finds pending events
            log.exception("could not enqueue %d event(s); the sweep will pick them up", len(new_ids))
        return [(job, result, None) for job, result in zip(batch, results, strict=True)]

    def _store(self, batch: list[_Job]) -> list[Stored | PayloadError]:
        store = self.app.store
        parsed: list[list[Event] | PayloadError] = []
        with store.bounded_transaction(STORE_WAIT) as conn:  # the adapters' state joins it
            for job in batch:
                delivery = job.delivery
                adapter = self.app.adapter(delivery.shop_id)
                try:
                    request = adapter.privacy_request(delivery)  # a compliance topic: kept for the worker
                    if request is not None:
                        store.add_privacy_request(conn, shop_id=delivery.shop_id, delivery_id=delivery.delivery_id,
                                                  request=request)  # fmt: skip
                    parsed.append([] if request is not None else adapter.parse_webhook(delivery))
                except PayloadError as exc:
                    store.keep_rejected_delivery(
                        conn, shop_id=delivery.shop_id, delivery_id=delivery.delivery_id,
                        topic=delivery.topic, error=str(exc), body=delivery.body,
                    )  # fmt: skip
                    parsed.append(exc)
            ids = iter(store.add_events(conn, [e for p in parsed if isinstance(p, list) for e in p]))
        results: list[Stored | PayloadError] = []
        for outcome in parsed:
            if isinstance(outcome, PayloadError):
                results.append(outcome)
                continue
            mine = [next(ids) for _ in outcome]
            results.append(Stored([i for i, new in mine if new], len(outcome)))
        return results

    def _settle(self, outcomes: list[tuple[_Job, Any, BaseException | None]]) -> None:
        assert self._loop is not None
        if not outcomes:
            return
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody is waiting any more
            self._loop.call_soon_threadsafe(_settle_futures, outcomes)


def _settle_futures(outcomes: list[tuple[_Job, Any, BaseException | None]]) -> None:
    for job, result, error in outcomes:  # a future already done: its request gave up waiting (503)
        _settle_future(job.future, result, error)


class _Check:
    """One check of /healthz, run in a thread of its own and waited for at most ``HEALTH_WAIT``.

    A check still running from an earlier request (a lock no timeout breaks,
    a queue that does not answer) is waited for again rather than started a
    second time beside itself, so a hung store holds one thread per check
    however often /healthz is asked; the thread is a daemon, so it does not
    hold up the process's exit either.
    """

    def __init__(self, name: str, run: Callable[[], Any]) -> None:
        self._name, self._run = name, run
        self._running: asyncio.Future[Any] | None = None

    async def __call__(self) -> tuple[bool, Any]:
        """(True, what the check returned) or (False, why in a few words: the exception's class,
        never its text, which may name the database host or user)."""
        if self._running is None or self._running.done():
            self._running = self._start()
        try:
            return True, await asyncio.wait_for(asyncio.shield(self._running), HEALTH_WAIT)
        except TimeoutError:
            return False, f"no answer within {HEALTH_WAIT:g} s"
        except Exception as exc:
            return False, type(exc).__name__

    def _start(self) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()

        def run() -> None:
            try:
                outcome: tuple[Any, BaseException | None] = (self._run(), None)
            except Exception as exc:
                outcome = (None, exc)
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(_settle_future, future, *outcome)

        threading.Thread(target=run, name=f"aftercare-healthz-{self._name}", daemon=True).start()
        return future


def _settle_future(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


@dataclass(frozen=True)
class WebhookRoutes:
    """The receiver's routes, and the lifespan the application enters so their committer runs."""

    routes: list[BaseRoute]
    lifespan: Callable[[Any], AbstractAsyncContextManager[None]]


def webhook_routes(app: App, enqueuer: Enqueuer, *, expects_worker: bool = False) -> WebhookRoutes:
    """``POST /webhooks/{shop_id}``, ``GET /healthz`` and ``GET /metrics``.

    ``enqueuer``: the producer stored events are enqueued on (a Worker's own ``worker.queue`` will
    do). ``expects_worker``: a worker process should be running (serve's child): /healthz reports
    it. The workers' health is read from their heartbeats in the store
    (:func:`aftercare.worker.worker_health`), not from a Worker object."""
    ingest = Ingest(app, enqueuer)
    limit = app.config.server.max_body_bytes
    read_check = _Check("read", lambda: app.store.probe_read(HEALTH_STORE_WAIT))
    write_check = _Check("write", lambda: app.store.probe_write(HEALTH_STORE_WAIT))
    queue_check = _Check("queue", enqueuer.ping)
    queue_messages_check = _Check("queue-messages", enqueuer.backlog)
    worker_check = _Check("worker", lambda: worker_health(app))

    async def webhook(request: Request) -> Response:
        shop_id = request.path_params["shop_id"]
        shop_label = shop_id if shop_id in app.shops else metrics.UNKNOWN_SHOP
        metrics.webhook_received(shop_label)
        response = await answer_webhook(request, shop_id)
        metrics.webhook_answered(shop_label, response.status_code)
        return response

    async def answer_webhook(request: Request, shop_id: str) -> Response:
        if shop_id not in app.shops:
            return _answer(404, f"unknown shop {shop_id!r}")
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            too_big = declared.isdigit()
            return _answer(413, f"body over {limit} bytes") if too_big else _answer(400, "bad Content-Length")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                return _answer(413, f"body over {limit} bytes")
        try:
            delivery = app.adapter(shop_id).verify_webhook(request.headers, bytes(body))
        except WebhookRejected as exc:
            log.warning("webhook shop=%s rejected %d: %s", shop_id, exc.status, exc.reason,
                        extra={"shop": shop_id, "status": exc.status, "outcome": "rejected"})  # fmt: skip
            return _answer(exc.status, exc.reason)
        if delivery.is_ping:
            return _answer(200, "pong")
        try:
            delivery.payload  # noqa: B018 - parsed here, once, so malformed JSON is a 400 (the adapter reuses it)
        except PayloadError as exc:
            return _answer(400, f"body {exc.problem}")
        try:
            result = await ingest.submit(delivery)
        except Exception:
            return _answer(503, "the store is unavailable; retry later")
        if isinstance(result, PayloadError):
            log.warning("webhook shop=%s topic=%s unreadable: %s", shop_id, delivery.topic, result,
                        extra={"shop": shop_id, "status": 422, "outcome": "unreadable"})  # fmt: skip
            return _answer(422, str(result))
        if result.events == 0:
            log.info("webhook shop=%s topic=%s needs no hook; acknowledged", shop_id, delivery.topic,
                     extra={"shop": shop_id, "status": 200, "outcome": "no hook"})  # fmt: skip
        return JSONResponse({"stored": len(result.new_event_ids), "events": result.events})

    async def healthz(request: Request) -> Response:
        """Every check at once, each bounded: the answer comes within about HEALTH_WAIT."""
        (read_ok, read), (write_ok, wrote), (queue_ok, queued), (worker_ok, health) = await asyncio.gather(
            read_check(), write_check(), queue_check(), worker_check()
        )
        checks: dict[str, Any] = {}
        if not read_ok:
            checks["store"] = f"error: read: {read}"
        elif not write_ok:
            checks["store"] = f"error: write: {wrote}"
        else:
            checks["store"] = "ok"
        checks["queue"] = "ok" if queue_ok else f"error: {queued}"
        healthy = read_ok and write_ok and queue_ok
        if not worker_ok:  # the workers' heartbeats and the backlog are read from the store
            checks["worker"], healthy = f"error: {health}", False
        else:
            if expects_worker:
                checks["worker"] = health.worker
                healthy = healthy and health.ok
            checks["backlog"] = health.backlog
            # Reported with or without a worker of its own: a receiver beside `worker` processes
            # shows their heartbeat too, but does not turn 503 for them (their own checks do).
            checks["heartbeat"] = _utc_text(health.beat_at)
        return JSONResponse(checks, status_code=200 if healthy else 503)

    async def metrics_page(request: Request) -> Response:
        """Counters of this process and its worker child; the store's readings bounded as /healthz's."""
        (worker_ok, health), (queue_ok, queued) = await asyncio.gather(worker_check(), queue_messages_check())
        readings = metrics.Readings(
            backlog=health.backlog if worker_ok else None,
            oldest_waiting=health.oldest if worker_ok else None,
            beat_at=health.beat_at if worker_ok else None,
            worker_ok=health.ok if worker_ok else None,
            queue_messages=queued if queue_ok else None,
            now=app.now(),
        )
        body, content_type = await asyncio.to_thread(metrics.exposition, readings)
        return Response(body, media_type=content_type)

    routes: list[BaseRoute] = [
        Route("/webhooks/{shop_id}", webhook, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", metrics_page, methods=["GET"]),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[None]:
        ingest.start()
        try:
            yield
        finally:
            await ingest.stop()

    return WebhookRoutes(routes, lifespan)


def _utc_text(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _answer(status: int, message: str) -> Response:
    return JSONResponse({"error" if status >= 400 else "status": message}, status_code=status)
