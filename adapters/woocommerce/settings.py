"""The shop keys a merchant writes under ``[[shops]]`` for a WooCommerce shop.

WooCommerce core knows orders, refunds and statuses but not parcels, deliveries
or returns: those come from plugins, each storing them its own way. Every rule
that turns an order's state into a post-sale event is therefore a setting with
a default that fits a plain shop plus the common plugins (the official
Shipment Tracking extension, AST/TrackShip, WPML). docs/adapters/woocommerce.md
is the merchant's reference for each key.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator

from aftercare.platform import AdapterSettings

#: Hosts where plain HTTP is allowed, so a local sandbox shop can stand in.
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


class WooCommerceSettings(AdapterSettings):
    # -- connection -------------------------------------------------------
    #: The shop's home URL (what WordPress calls home_url; the REST API lives
    #: at {url}/wp-json/wc/v3). HTTPS is required except on loopback.
    url: str
    #: REST API key pair from WooCommerce > Settings > Advanced > REST API
    #: (Read/Write permissions).
    consumer_key: str = Field(min_length=1)
    consumer_secret: SecretStr
    #: For servers that strip the Authorization header (some CGI/FastCGI setups):
    #: over HTTPS the keys go as query parameters instead of HTTP Basic auth, over
    #: plain HTTP the OAuth 1.0a parameters go in the query instead of the header.
    query_string_auth: bool = False
    verify_tls: bool = True
    connect_timeout: float = Field(default=5.0, gt=0)
    read_timeout: float = Field(default=30.0, gt=0)
    #: Retries after the first attempt on network errors, 5xx and 429.
    max_retries: int = Field(default=4, ge=0, le=10)
    #: First backoff delay in seconds; doubles each retry, with jitter.
    backoff_seconds: float = Field(default=1.0, ge=0)
    #: Longest single wait; a Retry-After above it fails the call as transient
    #: (the queue retries later) instead of blocking a worker.
    max_backoff_seconds: float = Field(default=60.0, ge=0)

    # -- polling ----------------------------------------------------------
    #: How far back the first poll of a shop looks when neither a cursor nor
    #: ``since`` is given (a full history would greet years of old customers).
    poll_first_window_hours: float = Field(default=24.0, ge=0)
    #: Each poll re-reads this many seconds before its cursor: modification
    #: times have one-second resolution and a slow transaction may commit late.
    poll_overlap_seconds: int = Field(default=120, ge=1)

    # -- status transitions -> events ---------------------------------------
    #: Statuses that mean "paid" (besides ``date_paid`` being set).
    paid_statuses: tuple[str, ...] = ("processing", "completed")
    #: Statuses that mean "shipped" when the order has no tracking item. Shops
    #: that mark orders completed when the parcel leaves keep "completed";
    #: AST's "shipped"/"partial-shipped" statuses can be added. Empty = only
    #: tracking items mean shipped.
    shipped_statuses: tuple[str, ...] = ("completed",)
    #: Order meta holding shipment tracking items (Shipment Tracking and AST).
    tracking_meta_key: str = "_wc_shipment_tracking_items"
    #: Order meta with the carrier status per tracking item (TrackShip).
    tracking_status_meta_key: str = "shipment_status"
    #: Statuses that mean "delivered" (AST's "delivered", a custom "wc-delivered").
    delivered_statuses: tuple[str, ...] = ("delivered",)
    cancelled_statuses: tuple[str, ...] = ("cancelled",)
    #: Statuses that a returns plugin sets when a return is asked for.
    return_statuses: tuple[str, ...] = ("return-requested",)
    #: Order meta that marks a return request (its value, if text, is the
    #: reason). Empty disables the meta rule.
    return_meta_key: str = "_aftercare_return_request"

    # -- where aftercare reads and writes its own data --------------------
    #: Order meta with the customer's language (WPML's "wpml_language",
    #: Polylang users may point it elsewhere). Empty: use the shop locale.
    locale_meta_key: str = "wpml_language"
    #: Customer meta (order meta for guests) holding marketing consent. No
    #: leading "_": the customers endpoint drops protected meta keys silently.
    consent_meta_key: str = "aftercare_marketing_consent"
    #: Order meta, and customer meta, holding aftercare's tags (no leading "_" either).
    tags_meta_key: str = "aftercare_tags"
    #: Customer meta holding the birthday as ``YYYY-MM-DD`` (a checkout field plugin's, e.g.
    #: ``billing_birth_date``), read from the customer record (``GET /customers/{id}``) of a
    #: registered customer. Unset: no birthday is read (the greetings plugin sends none).
    birthday_meta_key: str | None = None
    #: Order notes are private unless this is on (a customer note emails them).
    notes_visible_to_customer: bool = False

    @field_validator("url")
    @classmethod
    def _url_is_https(cls, value: str) -> str:
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be the shop's address, like https://shop.example")
        if parts.scheme == "http" and parts.hostname not in LOOPBACK_HOSTS:
            raise ValueError("must use https (plain http is only allowed for 127.0.0.1/localhost)")
        if parts.query or parts.fragment:
            raise ValueError("must not have a query or fragment")
        return value.strip().rstrip("/")

    @field_validator("consent_meta_key", "tags_meta_key", "birthday_meta_key")
    @classmethod
    def _kept_by_the_customers_endpoint(cls, value: str | None) -> str | None:
        """WooCommerce treats meta keys starting with "_" as protected: PUT /customers
        answers 200 and drops them, and GET /customers never shows them."""
        if value is None:
            return None
        key = value.strip()
        if not key:
            raise ValueError("must name a meta key")
        if key.startswith("_"):
            plain = key.lstrip("_")
            kept = " (orders written under the old key are still read)" if LEGACY_META_KEYS.get(plain) == key else ""
            raise ValueError(
                f"{key!r} starts with '_': WooCommerce silently drops protected customer meta; use {plain!r}{kept}"
            )
        return key

    @field_validator(
        "paid_statuses",
        "shipped_statuses",
        "delivered_statuses",
        "cancelled_statuses",
        "return_statuses",
    )
    @classmethod
    def _statuses_without_prefix(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        """The REST API reports statuses without WordPress's ``wc-`` post-status prefix."""
        return tuple(normalise_status(status) for status in value)


#: The keys aftercare used before 0.2 (dropped by the customers endpoint, kept on
#: orders): guests' order meta written under them is still read.
LEGACY_META_KEYS = {
    "aftercare_marketing_consent": "_aftercare_marketing_consent",
    "aftercare_tags": "_aftercare_tags",
}


def normalise_status(status: str) -> str:
    status = status.strip().lower()
    return status[3:] if status.startswith("wc-") else status
