"""Sending webhooks from a background thread, with each platform's retry rules.

A platform delivers webhooks after the change that caused them, not inside
the API call, and a slow or failing receiver must not block the shop. So
deliveries go into a queue served by one thread, in order; a failed attempt
is rescheduled after the delivery's next delay (Shopify) or given up at once
(WooCommerce, which never retries). Every attempt is logged, so tests and
the demo can say exactly what was sent and how it was answered.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import requests

log = logging.getLogger(__name__)


@dataclass
class Delivery:
    """One webhook to one subscription; ``build`` gives (body, headers) at send time."""

    id: str
    subscription_id: int
    topic: str
    url: str
    build: Callable[[], tuple[bytes, dict[str, str]]]
    retry_delays: Sequence[float] = ()
    attempts: int = 0
    #: Fixed on the first attempt: retries carry the original payload (Shopify).
    frozen: tuple[bytes, dict[str, str]] | None = None


@dataclass(frozen=True)
class Attempt:
    delivery_id: str
    subscription_id: int
    topic: str
    url: str
    attempt: int
    status: int | None  # None: no HTTP answer (connection refused, timeout)
    ok: bool
    error: str
    at: datetime
    body: bytes = field(repr=False)
    headers: dict[str, str] = field(repr=False)

    def as_json(self) -> dict:
        return {
            "delivery_id": self.delivery_id,
            "subscription_id": self.subscription_id,
            "topic": self.topic,
            "url": self.url,
            "attempt": self.attempt,
            "status": self.status,
            "ok": self.ok,
            "error": self.error,
            "at": self.at.isoformat(),
        }


class WebhookSender:
    """The delivery queue of one sandbox shop.

    ``success`` says which HTTP statuses count as delivered (Shopify: 2xx;
    WooCommerce: 200-302). ``on_outcome(delivery, attempt, final)`` lets the
    shop keep its bookkeeping (failure counts, disabling or deleting a
    subscription) after each attempt.
    """

    def __init__(
        self,
        *,
        success: Callable[[int], bool],
        on_outcome: Callable[[Delivery, Attempt, bool], None],
        timeout: tuple[float, float] = (1.0, 5.0),
        user_agent: str = "",
    ) -> None:
        self.success = success
        self.on_outcome = on_outcome
        self.timeout = timeout
        self.user_agent = user_agent
        self.attempts: list[Attempt] = []
        self._queue: list[tuple[float, int, Delivery]] = []
        self._seq = itertools.count()
        self._busy = 0
        self._cond = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._session = requests.Session()

    def start(self) -> None:
        if self._thread is None:
            self._stopping = False
            self._thread = threading.Thread(target=self._run, name="sandbox-webhooks", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self._session.close()

    def submit(self, delivery: Delivery, delay: float = 0.0) -> None:
        with self._cond:
            heapq.heappush(self._queue, (time.monotonic() + delay, next(self._seq), delivery))
            self._cond.notify_all()

    def pending(self, match: Callable[[Delivery], bool]) -> bool:
        """Whether a delivery matching ``match`` waits for its first attempt."""
        with self._cond:
            return any(match(d) and d.attempts == 0 for _, _, d in self._queue)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued delivery and retry is done; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._queue or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    # -- the thread ----------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopping and (not self._queue or self._queue[0][0] > time.monotonic()):
                    wait = self._queue[0][0] - time.monotonic() if self._queue else None
                    self._cond.wait(wait)
                if self._stopping:
                    return
                _, _, delivery = heapq.heappop(self._queue)
                self._busy += 1
            try:
                self._attempt(delivery)
            except Exception:  # a bug in a payload builder must not kill the sender
                log.exception("sandbox webhook %s to %s failed to build", delivery.topic, delivery.url)
            finally:
                with self._cond:
                    self._busy -= 1
                    self._cond.notify_all()

    def _attempt(self, delivery: Delivery) -> None:
        if delivery.frozen is None:
            delivery.frozen = delivery.build()
        body, headers = delivery.frozen
        if self.user_agent:
            headers = {"User-Agent": self.user_agent, **headers}
        delivery.attempts += 1
        status, error = None, ""
        try:
            answer = self._session.post(
                delivery.url, data=body, headers=headers, timeout=self.timeout, allow_redirects=False
            )
            status = answer.status_code
            answer.close()
        except requests.RequestException as exc:
            error = f"{type(exc).__name__}: {exc}"
        ok = status is not None and self.success(status)
        if not ok and not error:
            error = f"HTTP {status}"
        attempt = Attempt(
            delivery.id,
            delivery.subscription_id,
            delivery.topic,
            delivery.url,
            delivery.attempts,
            status,
            ok,
            error,
            datetime.now(UTC),
            body,
            headers,
        )
        with self._cond:
            self.attempts.append(attempt)
        retries_left = len(delivery.retry_delays) - (delivery.attempts - 1)
        final = ok or retries_left <= 0
        log.info(
            "sandbox webhook %s -> %s attempt %d: %s", delivery.topic, delivery.url, delivery.attempts, error or status
        )
        self.on_outcome(delivery, attempt, final)
        if not final:
            self.submit(delivery, delivery.retry_delays[delivery.attempts - 1])
