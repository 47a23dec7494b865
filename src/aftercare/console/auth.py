"""Sessions, CSRF tokens and the login rate limit of the console.

The session is a cookie signed with HMAC-SHA256 (no extra dependency): the
user's name, when it was issued, a per-session CSRF token, a fingerprint of
the password hash (so changing a password or removing the user ends their
sessions), and a random session id. A signed-in session also has a row in
the store (by a hash of that id), which logging out deletes: a copied cookie
stops working then, not when it expires. Every request re-reads the user, so
their shops are always current.

Every POST carries the session's CSRF token in a hidden ``csrf`` field,
compared in constant time; the login form gets one from an anonymous session
cookie set when the form is shown.

Login attempts are counted in the store, shared by every serve process, and
counted *before* the password is checked, by one atomic statement per key
that returns the new count: parallel requests cannot all find the count
below the limit, so at most the allowed number of passwords is ever checked.
Per user name the window is short (``login_name_lock_minutes``): a stranger
guessing a name locks its owner out only briefly. Per client address it is
four times as many in the longer ``login_window_minutes``, and a login that
succeeds gives its address attempt back (an office shares one address and
signs in all day); a name's attempts all count, so however many guesses
arrive at once, at most ``login_attempts`` of them are checked.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aftercare.store import Store

COOKIE = "aftercare_console"


@dataclass(frozen=True, slots=True)
class Session:
    user: str  # "" before login: the login form's CSRF token still needs a home
    csrf: str
    issued: float
    fingerprint: str = ""
    sid: str = ""  # signed in: the id whose hash names the session's row in the store


def session_hash(session: Session) -> str:
    """What the store keeps of a session id: enough to look it up, not enough to forge a cookie with."""
    return hashlib.sha256(session.sid.encode()).hexdigest()


def fingerprint(password_hash: str) -> str:
    return hashlib.sha256(password_hash.encode()).hexdigest()[:16]


class SessionSigner:
    def __init__(self, key: bytes, max_age_seconds: float) -> None:
        self._key = hashlib.sha256(b"aftercare console session\n" + key).digest()
        self.max_age = max_age_seconds

    def new(self, user: str = "", password_hash: str = "") -> Session:
        if not user:
            return Session("", secrets.token_urlsafe(24), time.time())
        csrf, sid = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        return Session(user, csrf, time.time(), fingerprint(password_hash), sid)

    def dumps(self, session: Session) -> str:
        body = json.dumps([session.user, session.csrf, session.issued, session.fingerprint, session.sid]).encode()
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
            user, csrf, issued, print_, sid = json.loads(body)
            session = Session(str(user), str(csrf), float(issued), str(print_), str(sid))
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
    """At most ``attempts`` logins per user name in ``name_window``, and ``attempts_per_address``
    per client address in ``address_window``, counted in the store before any password is checked."""

    def __init__(
        self, store: Store, attempts: int, name_window: timedelta, attempts_per_address: int, address_window: timedelta
    ) -> None:
        self.store = store
        self.by_name = (attempts, name_window)
        self.by_address = (attempts_per_address, address_window)

    def attempt(self, name: str, address: str) -> list[str]:
        """Count an attempt; the keys (``name:...``, ``address:...``) now over their limit, if any."""
        return self.store.count_login_attempt({_name_key(name): self.by_name, _address_key(address): self.by_address})

    def succeeded(self, address: str) -> None:
        longest = max(self.by_name[1], self.by_address[1])
        self.store.refund_login_attempt([_address_key(address)], longest)


def _name_key(name: str) -> str:
    return f"name:{name}"


def _address_key(address: str) -> str:
    return f"address:{address}"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
