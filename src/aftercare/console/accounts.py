"""Console accounts: names, password hashes, and the shops each may see.

Passwords are hashed with scrypt from the standard library (no compiled
dependency to install), with a random 16-byte salt and OWASP's parameters
for scrypt at 32 MiB: N=2**15, r=8, p=3 (about 0.4 s a check here, which also
slows guessing). The parameters are kept in each hash
(``scrypt$N$r$p$salt$hash``), so raising them later leaves old hashes valid.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from aftercare.store import ConsoleUser, Store

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 3
_MAXMEM = 64 * 1024 * 1024
ALL_SHOPS = "all"
USER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")


@dataclass(frozen=True, slots=True)
class User:
    name: str
    password_hash: str
    shops: tuple[str, ...]  # ("all",) for agency staff
    created_at: datetime

    @property
    def sees_all(self) -> bool:
        return ALL_SHOPS in self.shops

    def may_see(self, shop_id: str) -> bool:
        return self.sees_all or shop_id in self.shops

    def visible(self, shop_ids: list[str]) -> list[str]:
        """Of these configured shops, the ones this user may see, in config order."""
        return [s for s in shop_ids if self.may_see(s)]


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def check_password(password: str, stored: str) -> bool:
    """True if ``password`` matches; compared in constant time."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        found = _scrypt(password, base64.b64decode(salt), int(n), int(r), int(p))
    except ValueError:
        return False
    return hmac.compare_digest(found, base64.b64decode(digest))


#: Checked against when the name is unknown, so an unknown name costs as long as a wrong password.
_DUMMY_HASH = f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${'A' * 24}${'A' * 44}"


def authenticate(store: Store, name: str, password: str) -> User | None:
    user = get_user(store, name)
    ok = check_password(password, user.password_hash if user else _DUMMY_HASH)
    return user if user and ok else None


def parse_shops(value: str, known: list[str]) -> tuple[str, ...]:
    """``all`` or ``ID,ID``; every id must be a configured shop."""
    wanted = tuple(dict.fromkeys(part.strip() for part in value.split(",") if part.strip()))
    if not wanted:
        raise ValueError("--shops: give shop ids separated by commas, or all")
    if ALL_SHOPS in wanted:
        if len(wanted) > 1:
            raise ValueError("--shops: 'all' cannot be combined with shop ids")
        return (ALL_SHOPS,)
    unknown = [s for s in wanted if s not in known]
    if unknown:
        raise ValueError(f"--shops: no shop {', '.join(map(repr, unknown))} (known: {', '.join(known) or 'none'})")
    return wanted


def add_user(store: Store, name: str, password: str, shops: tuple[str, ...], now: datetime) -> bool:
    """Create the account, or set its password and shops if it exists; True if it is new."""
    if not USER_NAME.match(name):
        raise ValueError("the name may use letters, digits, '_', '.', '@' and '-' (up to 64)")
    if store.save_console_user(name, hash_password(password), shops, now):
        return True
    store.end_console_sessions(user_name=name)  # a new password signs everyone in again
    return False


def remove_user(store: Store, name: str) -> bool:
    removed = store.remove_console_user(name)
    store.end_console_sessions(user_name=name)
    return removed


def get_user(store: Store, name: str) -> User | None:
    stored = store.console_user(name)
    return _user(stored) if stored else None


def list_users(store: Store) -> list[User]:
    return [_user(stored) for stored in store.list_console_users()]


def _user(stored: ConsoleUser) -> User:
    return User(stored.name, stored.password_hash, stored.shops, stored.created_at)


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=_MAXMEM, dklen=32)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
