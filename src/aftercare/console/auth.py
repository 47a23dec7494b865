"""Sessions, CSRF tokens and the login rate limit of the console.

The session is a cookie signed with HMAC-SHA256 (no server-side session
table, no extra dependency): the user's name, when it was issued, a
per-session CSRF token, and a fingerprint of the password hash, so changing a
password (``console add-user`` again) or removing the user ends their
sessions. Every request re-reads the user, so their shops are always current.

Every POST carries the session's CSRF token in a hidden ``csrf`` field,
compared in constant time; the login form gets one from an anonymous session
cookie set when the form is shown.

Failed logins are counted in memory, per user name (``login_attempts`` in
the window) and per client address (four times as many: an office shares
one address):
the console runs in the one ``aftercare serve`` process, a restart clearing
the counts costs an attacker a restart, and counting there keeps failed
guesses from writing to the store. (Several serve processes behind a load
balancer each count on their own; docs/console.md says so.)
"""

from __future__ import annotations

import base64
import binascii
import collections
import hashlib
import hmac
import json
import secrets
import threading
import time
from dataclasses import dataclass

COOKIE = "aftercare_console"


@dataclass(frozen=True, slots=True)
class Session:
    user: str  # "" before login: the login form's CSRF token still needs a home
    csrf: str
    issued: float
    fingerprint: str = ""


def fingerprint(password_hash: str) -> str:
    return hashlib.sha256(password_hash.encode()).hexdigest()[:16]


class SessionSigner:
    def __init__(self, key: bytes, max_age_seconds: float) -> None:
        self._key = hashlib.sha256(b"aftercare console session\n" + key).digest()
        self.max_age = max_age_seconds

    def new(self, user: str = "", password_hash: str = "") -> Session:
        return Session(user, secrets.token_urlsafe(24), time.time(), fingerprint(password_hash) if user else "")

    def dumps(self, session: Session) -> str:
        body = json.dumps([session.user, session.csrf, session.issued, session.fingerprint]).encode()
        return f"{_b64(body)}.{_b64(self._mac(body))}"

    def loads(self, value: str | None) -> Session | None:
        """The session in a cookie, or None if it is missing, altered or expired."""
        if not value:
            return None
        try:
            body_part, mac_part = value.split(".")
            body = _unb64(body_part)
            if not hmac.compare_digest(_unb64(mac_part), self._mac(body)):
                return None
            user, csrf, issued, print_ = json.loads(body)
            session = Session(str(user), str(csrf), float(issued), str(print_))
        except (ValueError, TypeError, binascii.Error):
            return None
        if time.time() - session.issued > self.max_age:
            return None
        return session

    def _mac(self, body: bytes) -> bytes:
        return hmac.new(self._key, body, hashlib.sha256).digest()


def csrf_ok(session: Session | None, given: str | None) -> bool:
    return bool(session and given) and hmac.compare_digest(session.csrf.encode(), str(given).encode())


class LoginLimiter:
    """At most ``attempts`` failed logins per key (a name, an address) within ``window`` seconds."""

    def __init__(self, attempts: int, window_seconds: float) -> None:
        self.attempts = attempts
        self.window = window_seconds
        self._failures: dict[str, collections.deque[float]] = {}
        self._lock = threading.Lock()

    def blocked(self, key: str) -> bool:
        now = time.monotonic()
        with self._lock:
            return len(self._recent(key, now)) >= self.attempts

    def failed(self, key: str) -> None:
        now = time.monotonic()
        with self._lock:
            self._recent(key, now).append(now)

    def succeeded(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)

    def _recent(self, key: str, now: float) -> collections.deque[float]:
        failures = self._failures.setdefault(key, collections.deque())
        while failures and now - failures[0] > self.window:
            failures.popleft()
        if not failures and len(self._failures) > 10_000:  # never grow without bound under a spray
            self._failures = {k: v for k, v in self._failures.items() if v}
            self._failures[key] = failures
        return failures


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
