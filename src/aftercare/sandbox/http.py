"""A small threaded HTTP server on 127.0.0.1 for the sandbox shops.

The standard library's ThreadingHTTPServer is enough for a loopback test
double: no event loop to share with the caller's, start-up in milliseconds,
and a clean ``shutdown()`` for test teardown. Handlers see a plain
:class:`Request` and return a :class:`Response`; routing is a list of
(method, regex) pairs.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qsl, urlsplit

log = logging.getLogger(__name__)


@dataclass
class Request:
    method: str
    path: str
    #: Query parameters in order, repeats kept (the OAuth 1.0a check needs them all).
    query_pairs: list[tuple[str, str]]
    headers: dict[str, str]  # lower-case names
    body: bytes
    host: str
    params: dict[str, str] = field(default_factory=dict)  # regex groups of the route

    @property
    def query(self) -> dict[str, str]:
        """The query as PHP reads it: with repeated names, the last one wins."""
        return dict(self.query_pairs)

    def json(self) -> Any:
        if not self.body:
            return {}
        return json.loads(self.body)


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(data, ensure_ascii=False, default=str).encode("utf-8")
    return Response(status, body, {"Content-Type": "application/json; charset=UTF-8", **(headers or {})})


Handler = Callable[[Request], Response]


class Router:
    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        self._routes.append((method, re.compile(f"^{pattern}$"), handler))

    def __call__(self, request: Request) -> Response:
        allowed = False
        for method, pattern, handler in self._routes:
            match = pattern.match(request.path)
            if match is None:
                continue
            allowed = True
            if method == request.method:
                request.params = match.groupdict()
                return handler(request)
        if allowed:
            return json_response({"message": "method not allowed"}, 405)
        return json_response({"code": "rest_no_route", "message": "No route was found matching the URL."}, 404)


class LocalServer:
    """Serves ``app`` on 127.0.0.1:``port`` (0 = any free port) from a background thread."""

    def __init__(self, app: Handler, port: int = 0) -> None:
        self.app = app
        handler = type("SandboxHandler", (_Handler,), {"app": staticmethod(app)})
        self._server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="sandbox-http", daemon=True
        )
        self._thread.start()

    def serve_forever(self) -> None:
        """Serve on the calling thread until interrupted (the CLI's foreground mode)."""
        self._server.serve_forever(poll_interval=0.2)

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()


class LocalService:
    """A sandbox that serves its :attr:`router` on 127.0.0.1 while started: ``start()``/``stop()``
    or a with-block. Subclasses set ``router`` (and ``what``, for the error of an unstarted one)."""

    router: Router
    what = "the sandbox"
    _server: LocalServer | None = None

    def start(self, port: int = 0) -> str:
        """Listen on 127.0.0.1 (``port`` 0 picks a free one) and return the base URL."""
        if self._server is None:
            self._server = LocalServer(self.router, port)
            self._server.start()
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    @property
    def running(self) -> bool:
        return self._server is not None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError(f"{self.what} is not running: call start() first")
        return self._server.url


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as requests' sessions expect
    server_version = "aftercare-sandbox"
    app: Handler

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        request = Request(
            method=self.command,
            path=parts.path,
            query_pairs=parse_qsl(parts.query, keep_blank_values=True),
            headers={key.lower(): value for key, value in self.headers.items()},
            body=body,
            host=self.headers.get("Host") or f"127.0.0.1:{self.server.server_address[1]}",
        )
        try:
            response = self.app(request)
        except Exception as exc:  # a sandbox bug answers 500 like a broken shop would
            log.exception("sandbox error on %s %s", self.command, self.path)
            response = json_response({"errors": f"sandbox internal error: {exc}"}, 500)
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _handle

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        log.debug("%s " + format, self.address_string(), *args)
