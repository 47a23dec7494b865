"""Request limits on every route of the receiver: header size, body size and body-read time.

Webhook routes keep ``[server] max_body_bytes``; every other route (customer pages, forms,
the console) takes at most ``[server] max_form_bytes``. A body declared larger is answered
413 before it is read; a streamed body is counted and cut off at the cap; a body that does
not arrive within ``[server] body_timeout_seconds`` is answered 408 (slow senders would
otherwise hold a connection and its memory for as long as they like).

A request's head (request line and headers) is capped at :data:`MAX_HEADER_BYTES` and
answered 431. That cannot be middleware: the ASGI app sees headers only once the server has
read them all. uvicorn's h11 parser has a limit (``h11_max_incomplete_event_size``) but its
httptools parser, the one we run, has none, and held 64 MiB of headers on one connection; so
:class:`HeaderLimitedHttpTools` is uvicorn's httptools protocol with the cap added.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

#: The most a request line plus its headers may take. Platforms send 2-4 KiB; browsers with
#: every cookie of the console well under 16 KiB; nginx's default is 8 KiB per line.
MAX_HEADER_BYTES = 32 * 1024


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


class HeadTooLarge(Exception):
    """The request line and headers grew past MAX_HEADER_BYTES (raised inside a parser callback)."""


class HeaderLimitedHttpTools(HttpToolsProtocol):
    """uvicorn's httptools protocol, answering 431 and closing the connection once a request's
    head passes ``max_head_bytes``.

    Two counts, because httptools hands over a header only once it is complete and keeps the
    unfinished one in a buffer of its own: the parsed count (URL, names and values) catches a
    large head that arrives in one read; the raw count (every read that arrives while a head
    begun in an earlier read is still open: all of it is that head) catches one long header
    trickling in, before it is whole. A read in which a head begins is left to the parsed count,
    since part of it may be the previous request of a pipelined connection. Memory per
    connection stays within the cap plus one read (uvicorn reads up to 256 KiB).
    """

    max_head_bytes = MAX_HEADER_BYTES

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_open = False
        self._parsed_head = 0
        self._raw_head = 0
        self._head_began_in_read = False
        self._head_refused = False

    def data_received(self, data: bytes) -> None:
        self._head_began_in_read = False
        super().data_received(data)
        if self._head_open and not self._head_began_in_read and not self._head_refused:
            self._raw_head += len(data)
            if self._raw_head > self.max_head_bytes and not self.transport.is_closing():
                self._refuse_head()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_open, self._head_began_in_read, self._parsed_head, self._raw_head = True, True, 0, 0

    def on_url(self, url: bytes) -> None:
        self._parsed_head += len(url)
        if self._parsed_head > self.max_head_bytes:
            self._head_too_large()
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:  # per header: kept to two additions and a test
        self._parsed_head += len(name) + len(value) + 4  # ": " and CRLF
        if self._parsed_head > self.max_head_bytes:
            self._head_too_large()
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._head_open = False
        super().on_headers_complete()

    def send_400_response(self, msg: str) -> None:
        # A callback's exception reaches uvicorn as a parser error, which it answers 400.
        if self._head_refused:
            self._write_431()
        else:
            super().send_400_response(msg)

    def _head_too_large(self) -> None:
        self._head_refused = True
        raise HeadTooLarge

    def _refuse_head(self) -> None:
        self._head_refused = True
        self._write_431()

    def _write_431(self) -> None:
        self.logger.warning("request head over %d bytes refused (431)", self.max_head_bytes)
        text = f"request line and headers over {self.max_head_bytes} bytes".encode()
        self.transport.write(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: text/plain; charset=utf-8\r\n"
            b"connection: close\r\ncontent-length: " + str(len(text)).encode() + b"\r\n\r\n" + text
        )
        self.transport.close()
