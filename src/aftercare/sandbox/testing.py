"""Pytest fixtures: a running sandbox shop per test, and a webhook receiver.

Use them from a conftest.py (``from aftercare.sandbox.testing import *`` or
``pytest_plugins = ["aftercare.sandbox.testing"]``):

``sandbox_shopify`` / ``sandbox_woocommerce``
    a started :class:`ShopifySandbox` / :class:`WooCommerceSandbox` on a free
    port, with webhook retries in milliseconds; stopped at teardown.
``webhook_receiver``
    a :class:`WebhookReceiver` on 127.0.0.1 recording every POST it gets and
    answering the status codes you queue (200 otherwise).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from .http import LocalServer, Request, Response
from .shopify import ShopifySandbox
from .woocommerce import WooCommerceSandbox

#: Webhook retry delays for tests: Shopify's schedule, in hundredths of a second.
FAST_RETRIES = (0.01, 0.02, 0.04)


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int


class WebhookReceiver:
    """An HTTP endpoint that records deliveries; ``answer(500, 500)`` makes the next two fail."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self._statuses: list[int] = []
        self._cond = threading.Condition()
        self._server = LocalServer(self._handle)

    @property
    def url(self) -> str:
        return f"{self._server.url}/webhooks"

    def answer(self, *statuses: int) -> None:
        with self._cond:
            self._statuses.extend(statuses)

    def _handle(self, request: Request) -> Response:
        with self._cond:
            status = self._statuses.pop(0) if self._statuses else 200
            self.received.append(Received(request.path, request.headers, request.body, status))
            self._cond.notify_all()
        return Response(status, b"")

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Received]:
        """Block until ``count`` requests arrived; return them all."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.received) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"expected {count} webhook requests, got {len(self.received)}")
                self._cond.wait(left)
            return list(self.received)

    def start(self) -> None:
        self._server.start()

    def stop(self) -> None:
        self._server.stop()


@pytest.fixture
def sandbox_shopify() -> Iterator[ShopifySandbox]:
    shop = ShopifySandbox(retry_delays=FAST_RETRIES, seed=8)
    shop.start()
    try:
        yield shop
    finally:
        shop.stop()


@pytest.fixture
def sandbox_woocommerce() -> Iterator[WooCommerceSandbox]:
    shop = WooCommerceSandbox(seed=8)
    shop.start()
    try:
        yield shop
    finally:
        shop.stop()


@pytest.fixture
def webhook_receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    receiver.start()
    try:
        yield receiver
    finally:
        receiver.stop()
