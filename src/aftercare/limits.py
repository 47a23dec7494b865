"""Request limits on every route of the receiver: body size and body-read time.

Webhook routes keep ``[server] max_body_bytes``; every other route (customer pages, forms,
the console) takes at most ``[server] max_form_bytes``. A body declared larger is answered
413 before it is read; a streamed body is counted and cut off at the cap; a body that does
not arrive within ``[server] body_timeout_seconds`` is answered 408 (slow senders would
otherwise hold a connection and its memory for as long as they like).
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyLimitExceeded(Exception):
    """The body grew past the route's cap while it was read."""


class BodyTimedOut(Exception):
    """The next part of the body did not arrive in time."""


async def _refuse(send: Send, status: int, text: str) -> None:
    body = text.encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"connection", b"close"),
                        (b"content-length", str(len(body)).encode())],
        }
    )  # fmt: skip
    await send({"type": "http.response.body", "body": body})


class RequestLimits:
    """ASGI middleware; ``webhook_prefix`` routes get ``webhook_bytes``, the rest ``form_bytes``."""

    def __init__(
        self, app: ASGIApp, *, webhook_bytes: int, form_bytes: int, timeout_seconds: float,
        webhook_prefix: str = "/webhooks/",
    ) -> None:  # fmt: skip
        self.app = app
        self.webhook_bytes = webhook_bytes
        self.form_bytes = form_bytes
        self.timeout_seconds = timeout_seconds
        self.webhook_prefix = webhook_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cap = self.webhook_bytes if scope["path"].startswith(self.webhook_prefix) else self.form_bytes
        declared = _content_length(scope)
        if declared == -1:
            await _refuse(send, 400, "the Content-Length header is not a number")
            return
        if declared is not None and declared > cap:
            await _refuse(send, 413, f"request body over {cap} bytes")
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            try:
                message = await asyncio.wait_for(receive(), self.timeout_seconds)
            except TimeoutError:
                raise BodyTimedOut from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > cap:
                    raise BodyLimitExceeded
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracked_send)
        except BodyLimitExceeded:
            if not started:
                await _refuse(send, 413, f"request body over {cap} bytes")
        except BodyTimedOut:
            if not started:
                await _refuse(send, 408, f"request body not received within {self.timeout_seconds:g} s")


def _content_length(scope: dict[str, Any]) -> int | None:
    """The declared length, None without one, -1 for one that is not a number."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            return int(value) if value.isdigit() else -1
    return None
