"""The shop keys the Shopify adapter reads from a ``[[shops]]`` block."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator

from aftercare.platform import AdapterSettings

_SHOP_DOMAIN = re.compile(r"^[a-z0-9][a-z0-9-]*\.myshopify\.com$")
_API_VERSION = re.compile(r"^(\d{4}-(01|04|07|10)|unstable)$")
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


class ShopifySettings(AdapterSettings):
    #: The shop's permanent domain, ``acme.myshopify.com`` (not a custom domain).
    shop_domain: str
    #: Admin API access token of the custom/public app (``shpat_...``).
    access_token: SecretStr
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
    #: Re-read the order through the API when a webhook carries only part of it
    #: (fulfillments, refunds, returns). One API call inside the 5 s webhook budget.
    refetch_partial_orders: bool = False
    #: Fire "shipped" for fulfillments without tracking number or URL.
    ship_without_tracking: bool = False

    @field_validator("shop_domain")
    @classmethod
    def _check_domain(cls, value: str) -> str:
        value = value.strip().lower().removeprefix("https://").rstrip("/")
        if not _SHOP_DOMAIN.match(value):
            raise ValueError(
                f"expected the shop's myshopify domain like 'acme.myshopify.com', got {value!r}"
            )
        return value

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

    @property
    def base_url(self) -> str:
        return self.admin_url or f"https://{self.shop_domain}"

    @property
    def graphql_url(self) -> str:
        return f"{self.base_url}/admin/api/{self.api_version}/graphql.json"
