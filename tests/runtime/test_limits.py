"""Body size and body-read time limits, against a real uvicorn server on 127.0.0.1."""

import socket
import threading
import time

import pytest
import uvicorn

from aftercare.asgi import create_asgi_app
from aftercare.queue import Enqueuer


@pytest.fixture
def server(aftercare_app):
    app = aftercare_app()
    limits = app.config.server.model_copy(update={"body_timeout_seconds": 1.0, "max_connections": 1000})
    object.__setattr__(app, "config", app.config.model_copy(update={"server": limits}))
    receiver = create_asgi_app(app, Enqueuer.for_app(app))
    uv = uvicorn.Server(
        uvicorn.Config(receiver, host="127.0.0.1", port=0, http="httptools", log_config=None, log_level="warning")
    )
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not uv.started and time.monotonic() < deadline:
        time.sleep(0.02)
    port = uv.servers[0].sockets[0].getsockname()[1]
    yield port
    uv.should_exit = True
    thread.join(10)


def _exchange(port, request, *, timeout=5.0):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(request)
        return s.recv(65536)


def test_declared_body_over_the_form_cap_is_413_before_reading(server):
    head = b"POST /unsubscribe/abc HTTP/1.1\r\nHost: x\r\nContent-Length: 209715200\r\n\r\n"
    started = time.monotonic()
    answer = _exchange(server, head)
    assert answer.startswith(b"HTTP/1.1 413"), answer
    assert time.monotonic() - started < 2


def test_streamed_body_over_the_cap_is_413(server):
    head = b"POST /webhooks/test HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    chunk = b"%x\r\n%s\r\n" % (32 * 1024, b"a" * 32 * 1024)
    with socket.create_connection(("127.0.0.1", server), timeout=5) as s:
        s.sendall(head + chunk * 40)  # 1.25 MiB over the webhook cap of 1 MiB
        assert s.recv(65536).startswith(b"HTTP/1.1 413")


def test_body_that_does_not_arrive_is_408_and_healthz_still_answers(server):
    stalled = []
    for _ in range(200):
        s = socket.create_connection(("127.0.0.1", server), timeout=5)
        s.sendall(b"POST /webhooks/test HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
        stalled.append(s)
    try:
        assert b" 200 " in _exchange(server, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")[:20]
        time.sleep(1.5)
        answers = [s.recv(4096) for s in stalled[:5]]
        assert all(a.startswith(b"HTTP/1.1 408") for a in answers), answers
    finally:
        for s in stalled:
            s.close()
