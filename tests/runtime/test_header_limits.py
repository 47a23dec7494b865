"""The request-head cap of aftercare.limits against the real server (serve's uvicorn config) on
127.0.0.1: heads over 32 KiB are answered 431 and the connection closed, whether they come as
one endless header or thousands of small ones; memory does not follow what is sent."""

import contextlib
import http.client
import socket
import threading
import time

import pytest
import uvicorn

from aftercare.asgi import create_asgi_app
from aftercare.limits import MAX_HEADER_BYTES
from aftercare.queue import Enqueuer
from aftercare.serve import server_config


@pytest.fixture
def port(aftercare_app):
    app = aftercare_app()
    server = uvicorn.Server(server_config(app, create_asgi_app(app, Enqueuer.for_app(app)), "127.0.0.1", 0))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    yield server.servers[0].sockets[0].getsockname()[1]
    server.should_exit = True
    thread.join(10)


def rss_bytes():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def answer_to(port, *parts, pause=0.0):
    """Send ``parts`` in turn, then read until the server closes; b"" if it reset first."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        try:
            for part in parts:
                s.sendall(part)
                time.sleep(pause)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused while we were still sending: the answer may still be there to read
        received = b""
        try:
            while chunk := s.recv(65536):
                received += chunk
        except ConnectionResetError:
            pass
        return received


def test_a_head_within_the_cap_is_served_twice_on_one_connection(port):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        for _ in range(2):  # the count starts again for the next request of a keep-alive connection
            connection.request("GET", "/healthz", headers={"X-Padding": "a" * (MAX_HEADER_BYTES - 2048)})
            answer = connection.getresponse()
            assert answer.status == 200, "a head under the cap was refused"
            answer.read()
    finally:
        connection.close()


def test_one_endless_header_is_431_and_memory_does_not_follow(port):
    before = rss_bytes()
    megabyte = b"a" * (1024 * 1024)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Endless: ")
        sent = 0
        try:
            while sent < 64:  # the 64 MiB
                s.sendall(megabyte)
                sent += 1
        except (BrokenPipeError, ConnectionResetError):
            pass
        else:
            pytest.fail("64 MiB of one header were all accepted")
        answer = b""
        with contextlib.suppress(ConnectionResetError):
            answer = s.recv(65536)
    assert sent < 8, f"the server read {sent} MiB of headers before closing"
    assert answer == b"" or answer.startswith(b"HTTP/1.1 431"), answer[:100]
    assert rss_bytes() - before < 48 * 1024 * 1024  # generous: the cap is 32 KiB per connection


def test_thousands_of_small_headers_are_431(port):
    many = b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 20) for i in range(3000))  # about 90 KiB
    answer = answer_to(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n", many, pause=0.05)
    assert answer.startswith(b"HTTP/1.1 431"), answer[:100]
    assert b"connection: close" in answer.lower()


def test_a_long_request_line_is_431(port):
    answer = answer_to(port, b"GET /healthz?" + b"q" * (MAX_HEADER_BYTES + 1024))
    assert answer.startswith(b"HTTP/1.1 431"), answer[:100]


def test_a_big_body_after_a_small_head_is_not_counted_as_head(port):
    body = b"x" * (200 * 1024)  # one read may carry head and body together: only the head counts
    head = b"POST /webhooks/test HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: %d\r\n\r\n" % len(body)
    answer = answer_to(port, head + body)
    assert answer.startswith(b"HTTP/1.1 401"), answer[:100]  # unsigned: refused by the receiver, not by the cap


def test_pipelined_requests_in_one_read_are_each_counted_alone(port):
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 100) for i in range(12))
    requests = (head + b"\r\n") * 49 + head + b"Connection: close\r\n\r\n"  # 80 KiB in one send
    answer = answer_to(port, requests)
    assert answer.count(b"HTTP/1.1 200") == 50 and b" 431 " not in answer
