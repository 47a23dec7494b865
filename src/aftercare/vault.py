"""The deployment's ``secret_key``, and the encryption of secrets kept in the store.

Adapters keep what they obtain from a platform (Shopify's access and refresh
tokens) in their per-shop state in the store. Anyone who can read the database
file must not be able to call the shop's API with it, so those values are
sealed with Fernet (AES-128-CBC plus HMAC-SHA256, from ``cryptography``).

The key is derived from ``secret_key`` per purpose with HKDF-SHA256, so one
deployment key serves several uses (tokens here, later other purposes) without
one use's key ever opening another's data. Any long random text works as
``secret_key``; :func:`new_secret_key` makes one (``aftercare init`` does).
Values sealed with one of ``previous_secret_keys`` still open, so the key can
be rotated; they are sealed with the current key when next written.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pydantic import SecretStr

#: Shorter keys are refused by the config: they could be guessed.
MIN_SECRET_KEY_LENGTH = 32
PLATFORM_TOKENS = "platform tokens"


def new_secret_key() -> str:
    """A fresh ``secret_key``: 32 random bytes, URL-safe base64 (43 characters)."""
    return secrets.token_urlsafe(32)


def derive_key(secret_key: SecretStr, purpose: str) -> bytes:
    """32 bytes for ``purpose`` only, from the deployment's key."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=f"aftercare {purpose} v1".encode())
    return hkdf.derive(secret_key.get_secret_value().encode("utf-8"))


class Vault:
    """A :class:`aftercare.platform.SecretBox` over Fernet with a key derived for ``purpose``."""

    def __init__(
        self, secret_key: SecretStr, purpose: str = PLATFORM_TOKENS, previous: Sequence[SecretStr] = ()
    ) -> None:
        keys = [Fernet(base64.urlsafe_b64encode(derive_key(key, purpose))) for key in (secret_key, *previous)]
        self._fernet = MultiFernet(keys)  # seals with the first; opens with any

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def decrypt(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError, ValueError):
            raise ValueError("not sealed with this deployment's secret_key (was the key changed?)") from None

    def __repr__(self) -> str:
        return "Vault(**********)"
