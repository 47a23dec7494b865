"""WooCommerce REST v3 over the ``woocommerce`` package, made dependable.

The package builds URLs and authentication (HTTP Basic over HTTPS, the keys in
the query string when configured, OAuth 1.0a over plain HTTP on loopback) and
calls ``requests``. This module adds what it lacks: retries with exponential
backoff and jitter on network errors, 5xx and 429 (honouring Retry-After),
pagination through ``X-WP-TotalPages``, and one-line errors in the shape
``woocommerce 401 woocommerce_rest_cannot_view: Sorry, you cannot list resources.``
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

import requests
from woocommerce import API

from aftercare import __version__
from aftercare.platform import PlatformError

from .settings import WooCommerceSettings

_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504, 520, 521, 522, 523, 524})
_TAGS = re.compile(r"<[^>]+>")
#: Failures of the connection rather than of the request: worth another try.
_NETWORK_ERRORS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)


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
        self.api = API(
            url=settings.url,
            consumer_key=settings.consumer_key,
            consumer_secret=settings.consumer_secret.get_secret_value(),
            version="wc/v3",
            timeout=(settings.connect_timeout, settings.read_timeout),
            verify_ssl=settings.verify_tls,
            query_string_auth=settings.query_string_auth,
            user_agent=f"aftercare/{__version__}",
        )

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
        """One call with retries; a 2xx JSON response or a :class:`PlatformError`."""
        retries = self.settings.max_retries if retries is None else retries
        for attempt in range(retries + 1):
            last_try = attempt == retries
            try:
                response = self._send(method, endpoint, params, data)
            except requests.exceptions.SSLError as error:
                raise PlatformError(
                    f"woocommerce TLS error talking to {self.settings.url}: {_first_line(error)}",
                    transient=False,
                ) from error
            except _NETWORK_ERRORS as error:
                if last_try:
                    raise PlatformError(
                        f"woocommerce network error on {method} {endpoint}: {_first_line(error)}",
                        transient=True,
                    ) from error
                self.sleep(self._backoff(attempt))
                continue
            except requests.RequestException as error:  # redirect loops, bad URLs: not passing
                raise PlatformError(
                    f"woocommerce request failed on {method} {endpoint}: {_first_line(error)}",
                    transient=False,
                ) from error
            if response.status_code not in _RETRY_STATUSES:
                return _checked(response, method, endpoint)
            retry_after = self._retry_after(response)
            wait = self._backoff(attempt) if retry_after is None else retry_after
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
        # The package mutates the params dict it is given (query-string auth): pass a copy.
        query = dict(params or {})
        if method in ("POST", "PUT"):
            return (
                self.api.post(endpoint, data, params=query)
                if method == "POST"
                else self.api.put(endpoint, data, params=query)
            )
        if method == "DELETE":
            return self.api.delete(endpoint, params=query)
        return self.api.get(endpoint, params=query)

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
        message = _TAGS.sub("", str(body.get("message") or "")).strip()
        return f"woocommerce {response.status_code} {body['code']}: {' '.join(message.split())}"
    hint = response.reason or "error"
    if response.status_code == 404:
        hint = "no WooCommerce REST API here (check url, and that pretty permalinks are on)"
    return f"woocommerce {response.status_code}: {hint}"


def _checked(response: requests.Response, method: str, endpoint: str) -> requests.Response:
    if response.status_code >= 400:
        raise PlatformError(error_line(response), transient=False)
    try:
        response.json()
    except ValueError:
        raise PlatformError(
            f"woocommerce {response.status_code}: {method} {endpoint} did not answer JSON "
            "(check url, and that pretty permalinks are on)",
            transient=False,
        ) from None
    return response


def _first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return text[0][:300] if text else type(error).__name__
