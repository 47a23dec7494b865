"""No credential in any message: the key and secret are marker strings, every error
path is forced for real on 127.0.0.1 (a closed port, a server that never answers,
TLS to a plain-HTTP server, and the recorded 401 and a 500 of WooCommerce over
HTTP and HTTPS), in each way the client authenticates, and the markers are looked
for in the error, its chain and traceback, the logs at DEBUG (urllib3 and oauthlib
included), and what the CLI prints and stores: `actions list`, `check --live`,
`sync`, `webhooks list`."""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import logging
import re
import socket
import ssl
import threading
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import SecretStr

from aftercare import serialize
from aftercare.adapters.woocommerce import WooCommerceAdapter, WooCommerceSettings
from aftercare.cli import cli
from aftercare.clock import SystemClock
from aftercare.platform import CouponSpec, MemoryShopState, PlatformError, ShopInfo
from aftercare.testing import make_order

KEY = "ck_MARKERKEY0123456789abcdef0123456789abcd"
SECRET = "cs_MARKERSECRET+/&=0123456789abcdef012345"
#: What must appear nowhere: the markers, and the Basic header's encoding of the pair.
FORBIDDEN = ("MARKERKEY", "MARKERSECRET", base64.b64encode(f"{KEY}:{SECRET}".encode()).decode())
SIGNATURE = re.compile(r'oauth_signature(?:=|%3D|%253D)"?([^&\s",]*)')


def leaks(text: str) -> list[str]:
    found = [marker for marker in FORBIDDEN if marker in text]
    found += [f"oauth_signature={value}" for value in SIGNATURE.findall(text) if value not in ("", "[redacted]")]
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- servers on 127.0.0.1 ------------------------------------------------------------------


def _recorded(name: str) -> dict:
    path = Path(__file__).parents[3].parent / "shared" / "fixtures" / "woocommerce" / "wc-11.0.1" / name
    return json.loads(path.read_text())


class _Answers(BaseHTTPRequestHandler):
    """Every request gets the server's one answer: (status, JSON body)."""

    answer: tuple[int, dict] = (200, {})

    def _reply(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        status, body = self.server.answer  # type: ignore[attr-defined]
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = _reply

    def log_message(self, *args) -> None:  # the test output stays quiet
        pass


@dataclass
class Servers:
    closed: str  # nothing listens
    silent: str  # accepts, never answers
    plain: str  # HTTP, answers ``answer``
    tls: str  # HTTPS (certificate trusted through REQUESTS_CA_BUNDLE), answers ``answer``
    http: ThreadingHTTPServer
    https: ThreadingHTTPServer

    def answer(self, status: int, body: dict) -> None:
        self.http.answer = self.https.answer = (status, body)  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    now = datetime.datetime.now(datetime.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file


@pytest.fixture
def servers(certificate, monkeypatch) -> Iterator[Servers]:
    cert_file, key_file = certificate
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert_file))
    http = ThreadingHTTPServer(("127.0.0.1", 0), _Answers)
    https = ThreadingHTTPServer(("127.0.0.1", 0), _Answers)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    https.socket = context.wrap_socket(https.socket, server_side=True)
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    threads = [threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
               for s in (http, https)]  # fmt: skip
    for thread in threads:
        thread.start()
    try:
        yield Servers(
            closed=f"127.0.0.1:{free_port()}",
            silent=f"127.0.0.1:{silent.getsockname()[1]}",
            plain=f"127.0.0.1:{http.server_address[1]}",
            tls=f"127.0.0.1:{https.server_address[1]}",
            http=http,
            https=https,
        )
    finally:
        for server in (http, https):
            server.shutdown()
            server.server_close()
        silent.close()


#: (name, scheme, query_string_auth): OAuth in the header or the query over HTTP;
#: Basic or consumer_key/consumer_secret in the query over HTTPS.
MODES = [("oauth-header", "http", False), ("oauth-query", "http", True), ("basic", "https", False),
         ("query-keys", "https", True)]  # fmt: skip
READ_ONLY = _recorded("rest_error_401_read_only_key.json")
CRITICAL = {"code": "internal_server_error", "message": "<p>There has been a critical error.</p>", "data": {}}


def failures(servers: Servers, scheme: str) -> list[tuple[str, str]]:
    """(what, url) of each error path that applies to the scheme, with the server primed."""
    answering = servers.plain if scheme == "http" else servers.tls
    paths = [("refused", f"{scheme}://{servers.closed}"), ("timeout", f"{scheme}://{servers.silent}"),
             ("401", f"{scheme}://{answering}"), ("500", f"{scheme}://{answering}")]  # fmt: skip
    if scheme == "https":
        paths.append(("tls", f"https://{servers.plain}"))  # TLS spoken to a plain-HTTP server
    return paths


def prime(servers: Servers, what: str) -> None:
    if what == "401":
        servers.answer(READ_ONLY["status"], READ_ONLY["body"])
    elif what == "500":
        servers.answer(500, CRITICAL)


def adapter_for(url: str, query_string_auth: bool) -> WooCommerceAdapter:
    settings = WooCommerceSettings(
        url=url, consumer_key=KEY, consumer_secret=SecretStr(SECRET), query_string_auth=query_string_auth,
        max_retries=1, backoff_seconds=0, connect_timeout=0.5, read_timeout=0.5,
    )  # fmt: skip
    return WooCommerceAdapter(
        ShopInfo(id="woo", webhook_secret=SecretStr("whsec")), settings, MemoryShopState(), SystemClock().now
    )


def everything_about(error: BaseException) -> str:
    parts = [str(error), repr(error), "".join(traceback.format_exception(error))]
    seen, chained = set(), [error.__cause__, error.__context__]
    while chained:
        link = chained.pop()
        if link is None or id(link) in seen:
            continue
        seen.add(id(link))
        parts += [str(link), repr(link), "".join(traceback.format_exception(link))]
        chained += [link.__cause__, link.__context__]
    return "\n".join(parts)


def log_text(caplog) -> str:
    return caplog.text + "\n".join(record.getMessage() for record in caplog.records)


@pytest.fixture
def debug_logs(caplog):
    """Everything at DEBUG, and the HTTP libraries' loggers explicitly so."""
    caplog.set_level(logging.DEBUG)
    for name in ("urllib3", "urllib3.connectionpool", "oauthlib", "requests"):
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


@pytest.mark.parametrize(("mode", "scheme", "query_string_auth"), MODES, ids=[m[0] for m in MODES])
def test_no_error_path_carries_a_credential(servers, debug_logs, mode, scheme, query_string_auth):
    seen: dict[str, str] = {}
    for what, url in failures(servers, scheme):
        prime(servers, what)
        adapter = adapter_for(url, query_string_auth)
        for call in (
            lambda adapter=adapter: adapter.client.get("orders", {"per_page": 1, "status": "any"}),
            lambda adapter=adapter: adapter.create_coupon(CouponSpec("THANKS-1", "percent", Decimal(10), "EUR")),
        ):
            with pytest.raises(PlatformError) as caught:
                call()
            error = caught.value
            assert error.__cause__ is None and error.__context__ is None, what
            seen[what] = error.message
            assert leaks(everything_about(error)) == [], (what, error.message)
        problems = adapter.check_live()
        assert problems and leaks("\n".join(problems)) == [], (what, problems)
        adapter.client.close()

    assert seen["refused"].startswith("woocommerce network error on GET coupons: ConnectionError (")
    assert "Connection refused" in seen["refused"]
    assert "timed out" in seen["timeout"].lower() and "network error" in seen["timeout"]
    assert seen["401"] == (
        "woocommerce 401 woocommerce_rest_authentication_error: The API key provided does not have write permissions."
    )
    assert seen["500"] == "woocommerce 500 internal_server_error: There has been a critical error."
    if scheme == "https":
        assert seen["tls"].startswith("woocommerce TLS error on ")
    # The logs were written (urllib3's request lines at DEBUG), and hold no credential.
    text = log_text(debug_logs)
    assert "/wp-json/wc/v3/" in text
    assert leaks(text) == []


def test_what_is_sent_carries_the_credentials_where_woocommerce_reads_them(servers, debug_logs):
    """The other side of the coin: the requests do authenticate (checked by the
    sandbox shop for OAuth, here by what arrives for Basic and query keys)."""
    arrived: list[tuple[str, dict[str, str]]] = []

    class Recording(_Answers):
        def _reply(self) -> None:
            arrived.append((self.path, dict(self.headers)))
            super()._reply()

        do_GET = _reply

    servers.https.RequestHandlerClass = Recording
    servers.answer(200, [])  # type: ignore[arg-type]
    adapter_for(f"https://{servers.tls}", False).client.get("orders")
    adapter_for(f"https://{servers.tls}", True).client.get("orders")
    (basic_path, basic_headers), (query_path, query_headers) = arrived
    assert basic_headers["Authorization"] == "Basic " + FORBIDDEN[2] and "consumer" not in basic_path
    assert "Authorization" not in query_headers and "consumer_secret=cs_MARKERSECRET%2B%2F%26%3D" in query_path
    assert basic_headers["User-Agent"].startswith("aftercare/")
    assert leaks(log_text(debug_logs)) == []


# -- through the CLI and the store ----------------------------------------------------------


def write_config(tmp_path: Path, url: str, query_string_auth: bool) -> Path:
    path = tmp_path / "aftercare.toml"
    path.write_text(
        f'database = "sqlite:///{tmp_path / "store.db"}"\nqueue = "sqlite:///{tmp_path / "queue.db"}"\n'
        "[plugins.coupon]\nenabled = true\n\n"
        '[[shops]]\nid = "woo"\nplatform = "woocommerce"\nwebhook_secret = "whsec-woo"\nproduction = true\n'
        f'url = "{url}"\nconsumer_key = "{KEY}"\nconsumer_secret = "{SECRET}"\n'
        f"query_string_auth = {str(query_string_auth).lower()}\n"
        "max_retries = 0\nconnect_timeout = 0.5\nread_timeout = 0.5\n"
    )
    return path


def run(path: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--config", str(path), *args])
    text = result.output
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        text += "".join(traceback.format_exception(result.exception))
    return result.exit_code, text


@pytest.mark.parametrize(("mode", "scheme", "query_string_auth"), MODES, ids=[m[0] for m in MODES])
def test_cli_output_and_stored_reasons_carry_no_credential(
    servers, debug_logs, tmp_path, monkeypatch, mode, scheme, query_string_auth
):
    monkeypatch.chdir(tmp_path)
    order = tmp_path / "order.json"
    order.write_text(serialize.dumps(make_order(shop_id="woo")))
    for what, url in failures(servers, scheme):
        prime(servers, what)
        folder = tmp_path / what
        folder.mkdir()
        path = write_config(folder, url, query_string_auth)
        outputs = [
            run(path, "trigger", "--shop", "woo", "--event", "order_paid", "--order", str(order), "--json"),
            run(path, "actions", "list"),
            run(path, "actions", "list", "--json"),
            run(path, "check", "--live"),
            run(path, "sync", "--shop", "woo"),
            run(path, "webhooks", "list", "--shop", "woo"),
        ]
        for _code, text in outputs:
            assert leaks(text) == [], (what, text)
            assert "Traceback" not in text, (what, text)
        reasons = [row["reason"] for row in json.loads(outputs[2][1]) if row["kind"] == "create_coupon"]
        assert reasons and all(reason.strip() for reason in reasons), (what, outputs[2][1])
        assert outputs[4][0] == 2 and outputs[4][1].strip().startswith("error: woo: woocommerce"), (what, outputs[4][1])
    assert leaks(log_text(debug_logs)) == []
