"""A small Shopify Admin GraphQL client over ``requests``, aware of query costs.

Shopify limits GraphQL calls by a leaky bucket of cost points per app and
shop. Each answer reports ``extensions.cost`` (requested/actual cost and the
bucket's ``throttleStatus``); the client remembers it, waits before a query
that would not fit, and retries ``THROTTLED`` answers (HTTP 200 or 429),
5xx answers and network errors with exponential backoff and jitter. Every
failure becomes a :class:`~aftercare.platform.PlatformError` whose
``transient`` flag tells the queue whether a retry can help. The token comes
from a :class:`~.auth.TokenSource` at each call; a 401 gets one more try with a
renewed token where the source can renew it.
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import requests

from aftercare.platform import PlatformError, report_call, report_wait

from .auth import TokenSource

log = logging.getLogger(__name__)

_IMPORT = re.compile(r'^#import\s+"([\w.-]+\.graphql)"\s*$', re.MULTILINE)
_OPERATION_NAME = re.compile(r"^\s*(?:query|mutation)\s+(\w+)", re.MULTILINE)

#: Cost assumed for a query never seen before (Shopify reports the real one after).
DEFAULT_EXPECTED_COST = 50
#: Longest wait slept inside a call; a longer one (Retry-After, backoff, bucket refill) is raised
#: as a transient PlatformError with ``retry_after``, so the worker puts the action back on the
#: schedule and its thread moves on to other orders.
MAX_WAIT_IN_CALL = 1.0


@cache
def load_query(filename: str) -> str:
    """The text of ``queries/<filename>``, with its ``#import "x.graphql"`` fragments appended."""
    text = resources.files(__package__).joinpath("queries", filename).read_text(encoding="utf-8")
    fragments = [load_query(name) for name in _IMPORT.findall(text)]
    return "\n".join([_IMPORT.sub("", text).strip(), *fragments]) + "\n"


@dataclass
class _Bucket:
    maximum: float
    available: float
    restore_rate: float
    measured_at: float

    def available_at(self, moment: float) -> float:
        return min(
            self.maximum, self.available + self.restore_rate * max(0.0, moment - self.measured_at)
        )


class GraphQLClient:
    """POSTs operations to ``{base}/admin/api/{version}/graphql.json``."""

    def __init__(
        self,
        url: str,
        access_token: str | TokenSource,
        api_version: str,
        *,
        timeout: tuple[float, float] = (5.0, 30.0),
        max_attempts: int = 5,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] = random.random,
        session: requests.Session | None = None,
        max_wait: float = MAX_WAIT_IN_CALL,
    ) -> None:
        self.url = url
        self.api_version = api_version
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.sleep = sleep
        self.monotonic = monotonic
        self.jitter = jitter
        self.tokens = TokenSource(access_token) if isinstance(access_token, str) else access_token
        self.max_wait = max_wait
        self.session = session or requests.Session()
        self.session.headers.update({"Accept": "application/json"})
        self._bucket: _Bucket | None = None
        self._cost_of: dict[str, float] = {}
        self._warned_versions: set[str] = set()
        #: The fields the last answer left out (a partial answer), empty after a whole one.
        self.field_errors: list[FieldError] = []

    # -- public ----------------------------------------------------------
    def execute(
        self,
        filename: str,
        variables: Mapping[str, Any] | None = None,
        *,
        attempts: int | None = None,
    ) -> dict[str, Any]:
        """Run ``queries/<filename>`` and return its ``data``; raise PlatformError on failure."""
        query = load_query(filename)
        match = _OPERATION_NAME.search(query)
        operation = match.group(1) if match else filename
        body = {"query": query, "variables": dict(variables or {}), "operationName": operation}
        attempts = attempts or self.max_attempts
        last_error = ""
        retry_after: float | None = None
        for attempt in range(attempts):
            if attempt:
                # A throttled answer's wait already covers the bucket refill.
                self._pause(retry_after if retry_after is not None else self._backoff(attempt), last_error)
            else:
                self._wait_for(self._cost_of.get(operation, DEFAULT_EXPECTED_COST))
            try:
                response = self._send(body)
            except requests.exceptions.SSLError as exc:
                raise PlatformError(
                    f"TLS failure talking to {self.url}: {exc}", transient=False
                ) from exc
            except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
                last_error, retry_after = f"network error talking to {self.url}: {exc}", None
                log.warning("Shopify %s attempt %d: %s", operation, attempt + 1, last_error)
                continue
            outcome = self._read(response, operation)
            if isinstance(outcome, dict):
                return outcome
            last_error, retry_after = outcome
            log.warning("Shopify %s attempt %d: %s", operation, attempt + 1, last_error)
        raise PlatformError(
            f"{last_error} (gave up after {attempts} attempts)",
            transient=True,
            retry_after=retry_after,
        )

    def _send(self, body: Mapping[str, Any]) -> requests.Response:
        """POST with the current token; once more with a new one when Shopify answers 401."""
        token = self.tokens.token()
        response = self._post(body, token)
        if response.status_code == 401 and self.tokens.renew(token):
            response = self._post(body, self.tokens.token())
        return response

    def _post(self, body: Mapping[str, Any], token: str) -> requests.Response:
        try:
            response = self.session.post(self.url, json=body, headers=_auth(token), timeout=self.timeout)
        except requests.exceptions.RequestException:
            report_call("shopify", None)
            raise
        report_call("shopify", response.status_code)
        return response

    # -- one answer --------------------------------------------------------
    def _read(
        self, response: requests.Response, operation: str
    ) -> dict[str, Any] | tuple[str, float | None]:
        """The ``data`` of a good answer, a (reason, wait) pair to retry, or a PlatformError."""
        self._check_version(response)
        status = response.status_code
        if status == 401:
            raise PlatformError(self.tokens.rejection(), transient=False)
        if status == 403:
            raise PlatformError(
                f"the access token lacks a required API scope (HTTP 403): {_error_text(response)}",
                transient=False,
            )
        if status == 404:
            raise PlatformError(
                f"no Shopify Admin API at {self.url} (HTTP 404): "
                "check shop_domain, admin_url and api_version",
                transient=False,
            )
        payload = _json(response)
        if status == 429 or _is_throttled(payload):
            self._remember_cost(payload, operation)
            wait = _retry_after(response)
            if wait is None:
                wait = self._throttle_wait(operation)
            report_wait("shopify", wait)
            return f"throttled by Shopify (HTTP {status})", wait
        if status >= 500:
            return f"Shopify answered HTTP {status}", _retry_after(response)
        if status >= 400 or payload is None:
            raise PlatformError(
                f"Shopify answered HTTP {status} to {operation}: {_error_text(response)}",
                transient=False,
            )
        self._remember_cost(payload, operation)
        errors = payload.get("errors")
        data = payload.get("data")
        self.field_errors = []
        if errors:
            if not isinstance(data, dict) or not _all_located(errors):
                raise PlatformError(f"{operation} failed: {_messages(errors)}", transient=False)
            # A partial answer (protected customer data withheld, say): Shopify nulls the
            # fields it names; the rest of the answer is good and is used.
            for error in errors:
                _blank(data, error["path"])
                self.field_errors.append(FieldError(_path_text(error["path"]), str(error.get("message", ""))))
            log.warning(
                "Shopify %s answered without %s", operation, ", ".join(sorted({e.path for e in self.field_errors}))
            )
        if not isinstance(data, dict):
            raise PlatformError(f"{operation}: the answer has no data", transient=False)
        return data

    def _check_version(self, response: requests.Response) -> None:
        served = response.headers.get("X-Shopify-API-Version")
        if served and served != self.api_version and served not in self._warned_versions:
            self._warned_versions.add(served)
            log.warning(
                "Shopify served API version %s instead of the pinned %s (the pinned one may be "
                "unsupported now): update api_version",
                served,
                self.api_version,
            )

    # -- cost bookkeeping ----------------------------------------------------
    def _remember_cost(self, payload: dict[str, Any] | None, operation: str) -> None:
        cost = ((payload or {}).get("extensions") or {}).get("cost") or {}
        if not isinstance(cost, dict):
            return
        requested = cost.get("requestedQueryCost")
        if isinstance(requested, int | float):
            self._cost_of[operation] = float(requested)
        status = cost.get("throttleStatus")
        if isinstance(status, dict):
            try:
                self._bucket = _Bucket(
                    maximum=float(status["maximumAvailable"]),
                    available=float(status["currentlyAvailable"]),
                    restore_rate=float(status["restoreRate"]),
                    measured_at=self.monotonic(),
                )
            except (KeyError, TypeError, ValueError):
                log.debug("unreadable throttleStatus: %r", status)

    def _throttle_wait(self, operation: str) -> float:
        """Seconds until the bucket holds the operation's cost, or a backoff if unknown."""
        bucket = self._bucket
        if bucket is None or bucket.restore_rate <= 0:
            return self._backoff(1)
        need = min(self._cost_of.get(operation, DEFAULT_EXPECTED_COST), bucket.maximum)
        missing = need - bucket.available_at(self.monotonic())
        return max(missing / bucket.restore_rate, 0.1)

    def _wait_for(self, expected_cost: float) -> None:
        """Sleep before a query whose expected cost exceeds what the bucket holds now."""
        bucket = self._bucket
        if bucket is None or bucket.restore_rate <= 0:
            return
        need = min(expected_cost, bucket.maximum)
        missing = need - bucket.available_at(self.monotonic())
        if missing > 0:
            wait = missing / bucket.restore_rate
            report_wait("shopify", wait)
            log.info("waiting %.2fs for %s query cost points to restore", wait, need)
            self._pause(wait, f"the query cost bucket needs {wait:.1f}s to restore {need:.0f} points")

    def _pause(self, wait: float, reason: str) -> None:
        """Sleep a short wait; give a long one back to the caller's schedule."""
        if wait > self.max_wait:
            raise PlatformError(f"{reason}; retry in {wait:.1f}s", transient=True, retry_after=wait)
        self.sleep(wait)

    def _backoff(self, attempt: int) -> float:
        delay = min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1))
        return delay * (0.5 + self.jitter())


def _auth(token: str) -> dict[str, str]:
    return {"X-Shopify-Access-Token": token}


@dataclass(frozen=True)
class FieldError:
    """A field a partial answer left out: its path with list indexes as ``[]`` and Shopify's message."""

    path: str
    message: str


def _all_located(errors: Any) -> bool:
    return isinstance(errors, list) and all(
        isinstance(error, dict) and isinstance(error.get("path"), list) and error["path"] for error in errors
    )


def _blank(data: Any, path: list[Any]) -> None:
    """Set the field at ``path`` to null (Shopify does already; this makes sure)."""
    node = data
    for step in path[:-1]:
        try:
            node = node[step]
        except (KeyError, IndexError, TypeError):
            return
    last = path[-1]
    in_object = isinstance(node, dict) and isinstance(last, str)
    in_list = isinstance(node, list) and isinstance(last, int) and 0 <= last < len(node)
    if in_object or in_list:
        node[last] = None


def _path_text(path: list[Any]) -> str:
    return ".".join("[]" if isinstance(step, int) else str(step) for step in path).replace(".[]", "[]")


def user_errors(payload: Mapping[str, Any], operation: str) -> None:
    """Raise the mutation's ``userErrors`` as a permanent PlatformError with Shopify's messages."""
    errors = payload.get("userErrors") or []
    if errors:
        raise PlatformError(f"{operation}: {_messages(errors)}", transient=False)


def _messages(errors: Any) -> str:
    if not isinstance(errors, list):
        return str(errors)
    texts = []
    for error in errors:
        if isinstance(error, dict):
            field = error.get("field")
            where = ".".join(str(part) for part in field) if isinstance(field, list) else ""
            message = str(error.get("message", error))
            texts.append(f"{where}: {message}" if where else message)
        else:
            texts.append(str(error))
    return "; ".join(texts)


def _json(response: requests.Response) -> dict[str, Any] | None:
    try:
        payload = response.json()
    except ValueError:
        return None
    return payload if isinstance(payload, dict) else None


def _is_throttled(payload: dict[str, Any] | None) -> bool:
    errors = (payload or {}).get("errors")
    return isinstance(errors, list) and any(
        isinstance(error, dict) and (error.get("extensions") or {}).get("code") == "THROTTLED"
        for error in errors
    )


def _retry_after(response: requests.Response) -> float | None:
    try:
        return max(0.0, float(response.headers["Retry-After"]))
    except (KeyError, ValueError):
        return None


def _error_text(response: requests.Response) -> str:
    payload = _json(response)
    if payload and "errors" in payload:
        return _messages(payload["errors"])
    return response.text[:200].strip() or response.reason or ""
