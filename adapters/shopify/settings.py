"""The shop keys the Shopify adapter reads from a ``[[shops]]`` block.

How the adapter logs in follows from the keys given (docs/adapters/shopify.md):

- ``client_id`` + ``client_secret``: an app from the Dev Dashboard on a store its
  organization owns, tokens from the client credentials grant;
- the same plus ``install = true``: the authorization code grant, for a store the
  app's organization does not own (an agency's client), installed with
  ``aftercare shopify install``;
- ``access_token``: the static token of a legacy custom app made in the store admin.
"""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator

from aftercare.platform import AdapterSettings

SHOP_DOMAIN = re.compile(r"^[a-z0-9][a-z0-9-]*\.myshopify\.com$")
_API_VERSION = re.compile(r"^(\d{4}-(01|04|07|10)|unstable)$")
#: Shopify's metafield namespaces and keys: 2-255 letters, digits, ``-`` and ``_`` (the app
#: namespaces ``$app:...`` and ``shopify--discovery--...`` included).
_METAFIELD_PART = re.compile(r"[$A-Za-z0-9_:-]{2,255}")
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


class ShopifySettings(AdapterSettings):
    #: The shop's permanent domain, ``acme.myshopify.com`` (not a custom domain).
    shop_domain: str
    #: The static Admin API token of a legacy custom app made in the store admin (``shpat_...``).
    access_token: SecretStr | None = None
    #: The Dev Dashboard app's client id and secret (Settings of the app). The secret also
    #: signs the app's webhooks: it is the shop's ``webhook_secret`` too.
    client_id: str | None = None
    client_secret: SecretStr | None = None
    #: Install the app through a link (the authorization code grant), for a store the app's
    #: organization does not own: ``aftercare shopify install --shop ID`` prints the link.
    install: bool = False
    #: Installs ask for offline tokens that expire after an hour and come with a refresh
    #: token (Shopify's recommendation); false asks for tokens that never expire.
    expiring_tokens: bool = True
    #: During a webhook secret rotation: the old secret, still accepted for deliveries
    #: Shopify signed before the change (up to an hour). Remove it afterwards.
    previous_webhook_secret: SecretStr | None = None
    #: The Admin API version every call is pinned to.
    api_version: str = "2026-10"
    #: Replace ``https://{shop_domain}`` as the API base, e.g. a local sandbox shop.
    #: Plain http is allowed only for 127.0.0.1/localhost.
    admin_url: str | None = None
    #: Seconds to wait for the TCP/TLS connection, and for the answer.
    connect_timeout: float = Field(default=5.0, gt=0)
    read_timeout: float = Field(default=30.0, gt=0)
    #: Attempts for one API call on throttling, 5xx and network errors.
    max_attempts: int = Field(default=5, ge=1, le=20)
    #: Orders per poll page (each order brings fulfillments, refunds and returns).
    #: At most 3: one order with its fulfillments, refunds and returns costs about 260
    #: points, and Shopify refuses any single query above 1,000.
    poll_page_size: int = Field(default=3, ge=1, le=3)
    #: The first poll of a shop (no cursor, no ``since``) looks back this many days.
    poll_lookback_days: int = Field(default=7, ge=0)
    #: How long polling keeps re-reading a shipped order for a delivery signal.
    delivery_watch_days: int = Field(default=30, ge=0)
    #: No longer does anything, kept so configs that set it still load: the worker always
    #: re-reads an order a webhook carried only part of, before the hooks run; the receiver
    #: never calls the platform.
    refetch_partial_orders: bool = False
    #: Fire "shipped" for fulfillments without tracking number or URL.
    ship_without_tracking: bool = False
    #: The customer metafield holding the birthday, ``namespace.key`` (``facts.birth_date``),
    #: a ``date`` metafield (``1990-03-15``). Unset: no birthday is read (the greetings
    #: plugin then sends none). Set, each paid order is re-read once through the Admin API
    #: (webhooks carry no customer metafields).
    birthday_metafield: str | None = None

    @field_validator("shop_domain")
    @classmethod
    def _check_domain(cls, value: str) -> str:
        value = value.strip().lower().removeprefix("https://").rstrip("/")
        if not SHOP_DOMAIN.match(value):
            raise ValueError(
                f"expected the shop's myshopify domain like 'acme.myshopify.com', got {value!r}"
            )
        return value

    @field_validator("birthday_metafield")
    @classmethod
    def _check_metafield(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        namespace, dot, key = value.rpartition(".")
        if not (dot and _METAFIELD_PART.fullmatch(namespace) and _METAFIELD_PART.fullmatch(key)):
            raise ValueError(f"expected a metafield as namespace.key like 'facts.birth_date', got {value!r}")
        return value

    @property
    def birthday_variables(self) -> dict[str, object]:
        """The OrderFields fragment's variables: read the birthday metafield (none: the
        operations' defaults read no metafield)."""
        if not self.birthday_metafield:
            return {}
        namespace, _dot, key = self.birthday_metafield.rpartition(".")
        return {"withBirthday": True, "birthdayNamespace": namespace, "birthdayKey": key}

    @field_validator("api_version")
    @classmethod
    def _check_version(cls, value: str) -> str:
        if not _API_VERSION.match(value):
            raise ValueError(f"expected an API version like '2026-10', got {value!r}")
        return value

    @field_validator("admin_url")
    @classmethod
    def _check_admin_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme == "https" and parts.hostname:
            return value.rstrip("/")
        if parts.scheme == "http" and parts.hostname in _LOOPBACK:
            return value.rstrip("/")
        raise ValueError(
            f"admin_url must be https://..., or http:// on 127.0.0.1/localhost; got {value!r}"
        )

    @model_validator(mode="after")
    def _one_way_to_log_in(self) -> ShopifySettings:
        has_id, has_secret = bool(self.client_id), self.client_secret is not None
        if self.access_token is not None and (has_id or has_secret):
            raise ValueError(
                "give either access_token (a legacy custom app) or client_id and client_secret "
                "(an app from the Dev Dashboard), not both"
            )
        if has_id and not has_secret:
            raise ValueError("client_secret is missing (client_id given)")
        if has_secret and not has_id:
            raise ValueError("client_id is missing (client_secret given)")
        if self.install and not has_id:
            raise ValueError("install = true needs client_id and client_secret (the Dev Dashboard app's)")
        if self.access_token is None and not has_id:
            raise ValueError(
                "no credentials: set client_id and client_secret (an app from the Dev Dashboard) "
                "or access_token (a legacy custom app)"
            )
        return self

    @property
    def grant(self) -> Literal["static", "client_credentials", "authorization_code"]:
        """How the adapter obtains its Admin API token."""
        if self.access_token is not None:
            return "static"
        return "authorization_code" if self.install else "client_credentials"

    @property
    def base_url(self) -> str:
        return self.admin_url or f"https://{self.shop_domain}"

    @property
    def graphql_url(self) -> str:
        return f"{self.base_url}/admin/api/{self.api_version}/graphql.json"

    @property
    def token_url(self) -> str:
        """Where both grants get tokens; it moves with ``admin_url``."""
        return f"{self.base_url}/admin/oauth/access_token"

    @property
    def authorize_url(self) -> str:
        return f"{self.base_url}/admin/oauth/authorize"
