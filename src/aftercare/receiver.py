"""The webhook receiver: ``POST /webhooks/{shop_id}`` and ``GET /healthz``.

DESIGN rule 1, persist before acknowledging: a delivery is answered 200 only
after its events are committed to the inbox. Committing each request on its
own would cap ingest at the disk's fsync rate, so verified deliveries wait
for one committer that writes whatever has gathered in one transaction
(group commit) and then wakes every waiting request. A platform retry of a stored delivery finds its dedupe key taken
and is answered 200 without storing anything.

Answers: 401 bad or missing signature (nothing stored), 413 body too large,
400 malformed body or headers, 404 unknown shop, 422 a signed payload the
adapter cannot read (kept raw in ``rejected_deliveries``), 503 the store is
down (the platform retries), 200 otherwise, including topics no hook needs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from aftercare.app import App
from aftercare.console.web import routes as console_routes
from aftercare.install import routes as install_routes
from aftercare.limits import RequestLimits
from aftercare.mail.web import routes as mail_routes
from aftercare.models import Event
from aftercare.pages import routes as page_routes
from aftercare.platform import PayloadError, WebhookDelivery, WebhookRejected
from aftercare.store import describe_database_error, state_in_transaction
from aftercare.worker import Worker, worker_health

log = logging.getLogger("aftercare.receiver")

MAX_BATCH = 256
#: Event-loop turns a batch waits for more deliveries before it commits (each turn is microseconds
#: when idle, and under load lets every request already read join the batch).
GATHER_ROUNDS = 4


@dataclass
class _Job:
    delivery: WebhookDelivery
    future: asyncio.Future[Any]


@dataclass(frozen=True)
class Stored:
    new_event_ids: list[int] = field(default_factory=list)
    events: int = 0


class Ingest:
    """Group commit: verified deliveries gather while a batch commits, then go in together.

    It runs in the event loop itself, not in a thread: the batch's writes are
    short, and a second thread would spend more time handing the GIL back and
    forth with the loop than it saves.
    """

    def __init__(self, app: App, worker: Worker) -> None:
        self.app = app
        self.worker = worker
        self._jobs: asyncio.Queue[_Job | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="aftercare-ingest")

    async def stop(self) -> None:
        """Commit what was handed in, then stop."""
        if self._task is not None:
            self._jobs.put_nowait(None)
            await self._task
            self._task = None

    async def submit(self, delivery: WebhookDelivery) -> Stored | PayloadError:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._jobs.put_nowait(_Job(delivery, future))
        return await future

    async def _run(self) -> None:
        stopping = False
        while not stopping:
            first = await self._jobs.get()
            if first is None:
                break
            for _ in range(GATHER_ROUNDS):  # let requests already read reach the queue: bigger batches
                await asyncio.sleep(0)
            batch = [first]
            while len(batch) < MAX_BATCH and not self._jobs.empty():
                job = self._jobs.get_nowait()
                if job is None:
                    stopping = True
                    break
                batch.append(job)
            self._commit(batch)

    def _commit(self, batch: list[_Job]) -> None:
        try:
            results = self._store(batch)
        except Exception as exc:
            if len(batch) > 1:  # one bad delivery must not fail its neighbours: retry them one by one
                for job in batch:
                    self._commit([job])
                return
            log.exception("could not store delivery %s", batch[0].delivery.delivery_id)
            if not batch[0].future.done():
                batch[0].future.set_exception(exc)
            return
        new_ids = [i for r in results if isinstance(r, Stored) for i in r.new_event_ids]
        try:
            self.worker.queue.dispatch_events(new_ids)
        except Exception:  # stored is what counts; the worker's sweep finds pending events
            log.exception("could not enqueue %d event(s); the sweep will pick them up", len(new_ids))
        for job, result in zip(batch, results, strict=True):
            if not job.future.done():
                job.future.set_result(result)

    def _store(self, batch: list[_Job]) -> list[Stored | PayloadError]:
        store = self.app.store
        parsed: list[list[Event] | PayloadError] = []
        with store.transaction() as conn, state_in_transaction(conn):
            for job in batch:
                delivery = job.delivery
                try:
                    parsed.append(self.app.adapter(delivery.shop_id).parse_webhook(delivery))
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


def create_receiver(
    app: App, worker: Worker, extra_routes: list[BaseRoute] | None = None, *, expects_worker: bool = False
) -> Starlette:
    """``expects_worker``: a worker process should be running (serve's child): /healthz reports it."""
    ingest = Ingest(app, worker)
    limit = app.config.server.max_body_bytes

    async def webhook(request: Request) -> Response:
        shop_id = request.path_params["shop_id"]
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
            log.warning("webhook shop=%s rejected %d: %s", shop_id, exc.status, exc.reason)
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
            log.warning("webhook shop=%s topic=%s unreadable: %s", shop_id, delivery.topic, result)
            return _answer(422, str(result))
        if result.events == 0:
            log.info("webhook shop=%s topic=%s needs no hook; acknowledged", shop_id, delivery.topic)
        return JSONResponse({"stored": len(result.new_event_ids), "events": result.events})

    async def healthz(request: Request) -> Response:
        checks: dict[str, Any] = {}
        healthy = True
        for name, probe in (("store", app.store.ping), ("queue", worker.queue.ping)):
            try:
                await asyncio.to_thread(probe)
                checks[name] = "ok"
            except Exception as exc:  # a short reason: no host, user or statement on an open endpoint
                checks[name] = f"error: {describe_database_error(exc) if name == 'store' else type(exc).__name__}"
                healthy = False
        if checks["store"] == "ok":  # the workers' heartbeats and the overdue work, from the store
            try:
                health = await asyncio.to_thread(worker_health, app)
            except Exception as exc:
                checks["worker"], healthy = f"error: {describe_database_error(exc)}", False
            else:
                if expects_worker:
                    checks["worker"] = health.worker
                    healthy = healthy and health.ok
                checks["backlog"] = health.backlog
        return JSONResponse(checks, status_code=200 if healthy else 503)

    routes: list[BaseRoute] = [
        Route("/webhooks/{shop_id}", webhook, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        *mail_routes(app),
        *page_routes(app, worker),
        *install_routes(app),
        *console_routes(app, worker),
        *(extra_routes or []),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        ingest.start()
        try:
            yield
        finally:
            await ingest.stop()

    server = app.config.server
    return Starlette(
        routes=routes, lifespan=lifespan,
        middleware=[Middleware(RequestLimits, webhook_bytes=server.max_body_bytes, form_bytes=server.max_form_bytes,
                               timeout_seconds=server.body_timeout_seconds)],
    )  # fmt: skip


def _answer(status: int, message: str) -> Response:
    return JSONResponse({"error" if status >= 400 else "status": message}, status_code=status)
