"""WooCommerce REST v3 over one ``requests.Session`` per shop, made dependable.

Authentication is what WooCommerce's ``WC_REST_Authentication`` accepts:

- plain HTTP (loopback only): OAuth 1.0a one-legged, HMAC-SHA256 keyed with
  ``consumer_secret&``, signed by ``oauthlib``; the OAuth parameters go in the
  ``Authorization`` header, or in the query string when ``query_string_auth``
  says the server strips that header;
- HTTPS: HTTP Basic with the key pair, or the pair as ``consumer_key`` /
  ``consumer_secret`` query parameters when ``query_string_auth`` is on.

On top: keep-alive (one session), timeouts on every call, retries with
exponential backoff and jitter on network errors, 5xx and 429 (honouring
Retry-After), pagination through ``X-WP-TotalPages``, and one-line errors in
the shape ``woocommerce 401 woocommerce_rest_cannot_view: Sorry, you cannot list resources.``

No credential reaches an error, a reason or a log line: messages are built from
the method, the endpoint and a scrubbed description of the failure, never from
``str()`` of a ``requests`` exception (those carry the whole URL, query and all),
and they are raised without the original exception chained to them.
"""

from __future__ import annotations

import html
import logging
import random
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, urlsplit

import requests
import urllib3.exceptions
from oauthlib.oauth1 import SIGNATURE_HMAC_SHA256, SIGNATURE_TYPE_AUTH_HEADER, SIGNATURE_TYPE_QUERY
from oauthlib.oauth1 import Client as OAuth1Signer

from aftercare import __version__
from aftercare.platform import PlatformError, report_call, report_wait

from .settings import WooCommerceSettings

API_PATH = "/wp-json/wc/v3"
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504, 520, 521, 522, 523, 524})
_TAGS = re.compile(r"<[^>]+>")
#: Failures of the connection rather than of the request: worth another try.
_NETWORK_ERRORS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)
#: Query parameters that carry credentials, plain or percent-encoded (as in an
#: OAuth base string), and urllib3's ``Pool(host=..., port=...): `` prefix.
_CREDENTIAL_PARAMS = re.compile(
    r"(?i)\b(consumer_key|consumer_secret|oauth_[a-z_]+)(=|%3D|%253D)[^&\s'\",)]*"
)
_POOL_PREFIX = re.compile(r"^\s*<?[\w.]+(?:\([^)]*\)| object at 0x[0-9a-f]+>):\s*")
REDACTED = "[redacted]"


class WooClient:
    """One shop's REST API. ``sleep`` and ``jitter`` are injectable so tests never wait."""

    def __init__(
        self,
        settings: WooCommerceSettings,
        *,
        clock: Callable[[], datetime],
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.sleep = sleep
        self.jitter = jitter
        self.base_url = f"{settings.url}{API_PATH}/"
        secret = settings.consumer_secret.get_secret_value()
        self._secrets = _secret_forms(settings.consumer_key, secret)
        _CREDENTIAL_LOGS.remember(self._secrets)
        self.session = requests.Session()
        self.session.headers.update({"User-Agent": f"aftercare/{__version__}", "Accept": "application/json"})
        self.session.verify = settings.verify_tls
        self.session.auth = _auth_for(settings, secret)

    def close(self) -> None:
        self.session.close()

    # -- calls ------------------------------------------------------------
    def get(self, endpoint: str, params: Mapping[str, Any] | None = None) -> Any:
        return self.request("GET", endpoint, params=params).json()

    def post(self, endpoint: str, data: Mapping[str, Any], *, retries: int | None = None) -> Any:
        return self.request("POST", endpoint, data=data, retries=retries).json()

    def put(self, endpoint: str, data: Mapping[str, Any]) -> Any:
        return self.request("PUT", endpoint, data=data).json()

    def delete(self, endpoint: str, params: Mapping[str, Any] | None = None) -> Any:
        return self.request("DELETE", endpoint, params=params).json()

    def pages(self, endpoint: str, params: Mapping[str, Any] | None = None) -> Iterator[list]:
        """Each page of a collection, following ``X-WP-TotalPages``."""
        page = 1
        while True:
            response = self.request("GET", endpoint, params={**(params or {}), "page": page})
            items = response.json()
            if not isinstance(items, list):
                raise PlatformError(
                    f"woocommerce {response.status_code}: GET {endpoint} did not return a list",
                    transient=False,
                )
            yield items
            if not items or page >= total_pages(response):
                return
            page += 1

    def request(
        self,
        method: str,
        endpoint: str,
        *,
        params: Mapping[str, Any] | None = None,
        data: Mapping[str, Any] | None = None,
        retries: int | None = None,
    ) -> requests.Response:
        """One call with retries; a 2xx JSON response or a :class:`PlatformError`.

        Errors are raised outside the ``except`` blocks, so neither ``__cause__``
        nor ``__context__`` holds the ``requests`` exception and its URL.
        """
        retries = self.settings.max_retries if retries is None else retries
        endpoint = endpoint.strip("/")
        for attempt in range(retries + 1):
            last_try = attempt == retries
            failure: PlatformError | None = None
            try:
                response = self._send(method, endpoint, params, data)
                report_call("woocommerce", response.status_code)
            except requests.exceptions.SSLError as error:
                failure = PlatformError(
                    f"woocommerce TLS error on {method} {endpoint}: {self._describe(error)}",
                    transient=False,
                )
            except _NETWORK_ERRORS as error:
                failure = PlatformError(
                    f"woocommerce network error on {method} {endpoint}: {self._describe(error)}",
                    transient=True,
                )
            except (requests.RequestException, ValueError) as error:  # bad URLs, unsignable requests
                failure = PlatformError(
                    f"woocommerce request failed on {method} {endpoint}: {self._describe(error)}",
                    transient=False,
                )
            if failure is not None:
                report_call("woocommerce", None)
                if last_try or not failure.transient:
                    raise failure
                self.sleep(self._backoff(attempt))
                continue
            if response.status_code not in _RETRY_STATUSES:
                return _checked(response, method, endpoint)
            retry_after = self._retry_after(response)
            wait = self._backoff(attempt) if retry_after is None else retry_after
            if response.status_code == 429:
                report_wait("woocommerce", wait)
            if last_try or wait > self.settings.max_backoff_seconds:
                raise PlatformError(error_line(response), transient=True, retry_after=retry_after)
            self.sleep(wait)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _send(
        self,
        method: str,
        endpoint: str,
        params: Mapping[str, Any] | None,
        data: Mapping[str, Any] | None,
    ) -> requests.Response:
        # Redirects are not followed: a POST would come back as a GET, and the
        # credentials would travel to wherever the Location points.
        return self.session.request(
            method,
            self.base_url + endpoint,
            params=dict(params or {}),
            json=dict(data) if data is not None and method in ("POST", "PUT") else None,
            timeout=(self.settings.connect_timeout, self.settings.read_timeout),
            allow_redirects=False,
        )

    def _describe(self, error: BaseException) -> str:
        """What went wrong, in the words of the innermost cause, without URL or credentials.

        ``requests`` wraps urllib3's ``MaxRetryError``, whose text repeats the
        request's URL; its ``reason`` (connection refused, timed out, the TLS
        alert) says the same without it.
        """
        inner: BaseException = error
        for _ in range(10):
            if isinstance(inner, urllib3.exceptions.MaxRetryError) and inner.reason is not None:
                inner = inner.reason
            elif inner.args and isinstance(inner.args[0], BaseException):
                inner = inner.args[0]
            else:
                break
        lines = str(inner).strip().splitlines()
        text = _POOL_PREFIX.sub("", lines[0]) if lines else ""
        text = scrub(text, self._secrets)[:300]
        return f"{type(error).__name__} ({text})" if text else type(error).__name__

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with "equal jitter": half fixed, half random, so
        workers retrying together spread out but never retry at once."""
        ceiling = min(self.settings.max_backoff_seconds, self.settings.backoff_seconds * 2**attempt)
        return ceiling / 2 + self.jitter() * ceiling / 2

    def _retry_after(self, response: requests.Response) -> float | None:
        value = response.headers.get("Retry-After", "").strip()
        if not value:
            return None
        if value.isdigit():
            return float(value)
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            return None
        return max(0.0, (when - self.clock()).total_seconds())


# -- authentication -----------------------------------------------------------------


class OAuth1Auth(requests.auth.AuthBase):
    """OAuth 1.0a one-legged as WooCommerce checks it over plain HTTP: no token,
    HMAC keyed with ``consumer_secret&``, the base string over method, URL and
    query parameters. JSON bodies are not signed: WooCommerce reads the
    parameters from ``$_GET``, ``$_POST`` and the header only."""

    def __init__(self, key: str, secret: str, *, in_query: bool) -> None:
        self.signer = OAuth1Signer(
            key,
            client_secret=secret,
            signature_method=SIGNATURE_HMAC_SHA256,
            signature_type=SIGNATURE_TYPE_QUERY if in_query else SIGNATURE_TYPE_AUTH_HEADER,
        )

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        url, headers, _ = self.signer.sign(str(request.url), str(request.method), None, {})
        request.url = url
        request.headers.update(headers)
        return request

    def __repr__(self) -> str:
        return "OAuth1Auth()"


class QueryKeyAuth(requests.auth.AuthBase):
    """``consumer_key``/``consumer_secret`` in the query (HTTPS only), for servers
    that strip the Authorization header: added to the URL as it is sent, never
    to the parameters our messages and logs are built from."""

    def __init__(self, key: str, secret: str) -> None:
        self._pair = {"consumer_key": key, "consumer_secret": secret}

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.prepare_url(request.url, self._pair)
        return request

    def __repr__(self) -> str:
        return "QueryKeyAuth()"


class BasicAuth(requests.auth.HTTPBasicAuth):
    def __repr__(self) -> str:
        return "BasicAuth()"


def _auth_for(settings: WooCommerceSettings, secret: str) -> requests.auth.AuthBase:
    key = settings.consumer_key
    if urlsplit(settings.url).scheme == "http":
        return OAuth1Auth(key, secret, in_query=settings.query_string_auth)
    if settings.query_string_auth:
        return QueryKeyAuth(key, secret)
    return BasicAuth(key, secret)


# -- keeping credentials out of text ----------------------------------------------------


def _secret_forms(*values: str) -> frozenset[str]:
    """Each credential as written and as a URL would carry it."""
    forms = set()
    for value in values:
        if len(value) >= 4:  # a one-letter "secret" would redact half of every message
            forms.update({value, quote(value, safe=""), quote(quote(value, safe=""), safe="")})
    return frozenset(forms)


def scrub(text: str, secrets: frozenset[str] | set[str] = frozenset()) -> str:
    """``text`` with credential query parameters and the given secrets redacted."""
    text = _CREDENTIAL_PARAMS.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


class _CredentialLogFilter(logging.Filter):
    """Scrubs the HTTP libraries' log records: urllib3 logs each request line
    (path and query) at DEBUG, and oauthlib logs the parameters, the base string
    and the signature at DEBUG while signing: those are dropped whole."""

    #: Loggers that may see a URL with its query, and oauthlib's signer.
    SCRUBBED = ("urllib3.connectionpool", "urllib3.connection", "urllib3.util.retry", "requests")
    DROPPED_DEBUG = ("oauthlib.oauth1.rfc5849", "oauthlib")

    def __init__(self) -> None:
        super().__init__()
        self._secrets: set[str] = set()
        self._lock = threading.Lock()
        self._installed = False

    def remember(self, secrets: frozenset[str]) -> None:
        with self._lock:
            self._secrets.update(secrets)
            if not self._installed:
                for name in (*self.SCRUBBED, *self.DROPPED_DEBUG):
                    logging.getLogger(name).addFilter(self)
                self._installed = True

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name in self.DROPPED_DEBUG and record.levelno <= logging.DEBUG:
            return False
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is the logging module's to report
            return True
        clean = scrub(message, self._secrets)
        if clean != message:
            record.msg, record.args = clean, ()
        return True


_CREDENTIAL_LOGS = _CredentialLogFilter()


# -- answers ------------------------------------------------------------------------------


def total_pages(response: requests.Response) -> int:
    value = response.headers.get("X-WP-TotalPages", "").strip()
    return int(value) if value.isdigit() else 1


def total_items(response: requests.Response) -> int | None:
    value = response.headers.get("X-WP-Total", "").strip()
    return int(value) if value.isdigit() else None


def error_code(error: PlatformError) -> str:
    """The WooCommerce error code in a message made by :func:`error_line`."""
    match = re.match(r"woocommerce \d+ (\S+):", error.message)
    return match.group(1) if match else ""


def error_line(response: requests.Response) -> str:
    """``woocommerce <status> <code>: <message>`` from a WooCommerce error body,
    or a hint when the answer is not WooCommerce's JSON at all."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("code"), str):
        # WooCommerce escapes its messages for HTML: tags and entities (&quot;) go.
        message = html.unescape(_TAGS.sub("", str(body.get("message") or ""))).strip()
        return f"woocommerce {response.status_code} {body['code']}: {' '.join(message.split())}"
    hint = response.reason or "error"
    if response.status_code == 404:
        hint = "no WooCommerce REST API here (check url, and that pretty permalinks are on)"
    return f"woocommerce {response.status_code}: {hint}"


def _checked(response: requests.Response, method: str, endpoint: str) -> requests.Response:
    if response.status_code >= 400:
        raise PlatformError(error_line(response), transient=False)
    if 300 <= response.status_code < 400:
        target = urlsplit(response.headers.get("Location", ""))
        where = f"{target.scheme}://{target.netloc}{target.path}" if target.netloc else "elsewhere"
        raise PlatformError(
            f"woocommerce {response.status_code}: {method} {endpoint} was redirected to {where} "
            "(set url to the shop's address as WordPress has it)",
            transient=False,
        )
    try:
        response.json()
    except ValueError:
        raise PlatformError(
            f"woocommerce {response.status_code}: {method} {endpoint} did not answer JSON "
            "(check url, and that pretty permalinks are on)",
            transient=False,
        ) from None
    return response
